//! Group commit: one writer task per `Store` turns concurrent ledger appends (events,
//! decisions, approvals) and the sealed pseudonyms of policy checks into shared transactions.
//!
//! Why: every append used to be its own transaction, and with `synchronous = FULL` (SQLite) or
//! a flushed WAL (PostgreSQL) each commit waits for the disk. Appends were therefore capped at
//! one fsync each. Here callers hand their rows to a queue; a single writer takes everything
//! that queued up while the previous commit was on disk and writes it as one transaction, so
//! one fsync covers many appends. There is no timer: under light load a batch is one append and
//! costs what it did before; under heavy load batches grow by themselves.
//!
//! Guarantees, each the same as with one transaction per append:
//! * A caller is answered only after the transaction holding its rows has committed, so an
//!   acknowledged append is durable. A caller that gets an error was not acknowledged; its
//!   rows may or may not be stored only when the commit itself failed ambiguously (as before).
//! * Ledger indexes per tenant stay gap-free and in queue order: the writer reserves a block of
//!   indexes per tenant with one upsert of `ledger_heads … RETURNING` inside the batch's
//!   transaction (the head row still serialises writers in other processes and the
//!   single-record appends that do not come through here), and a batch that rolls back
//!   returns its whole block.
//! * Each append is all-or-nothing: a batch commits all of its appends or none.
//!
//! Failure handling: if a row is refused by the database (a duplicate id, a constraint), the
//! batch is rolled back and each append in it is retried alone in its own transaction, so only
//! the append with the bad row fails and it gets exactly the error it would have got alone
//! (`Duplicate { id }` for a reused id). If the transaction fails as a whole (no connection,
//! the lock cannot be had, the commit fails), retrying one by one would only multiply the
//! wait, so every append in the batch gets that error (`StoreError::Batch`).
//!
//! The writer runs on a thread of its own (see `GroupCommit::start`); should it ever stop,
//! appends fail with `StoreError::WriterStopped` rather than hang.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use meshos_evidence::{hash_to_hex, leaf_hash};
use meshos_types::{ApprovalRecord, DecisionRecord, EventRecord, LedgerRecord};
use sqlx::AnyPool;
use sqlx::any::AnyArguments;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AssertSqlSafe, Row as _};
use tokio::sync::{mpsc, oneshot};

use crate::budget::{self, Reservation, ReservationOutcome, SpendChange};
use crate::facts_cache::FactsCache;
use crate::{Backend, SealedPseudonym, StoreError, corrupt, map_duplicate};

/// Upper bound on the rows of one batch: keeps a transaction (and the time its callers wait
/// behind it) bounded when a burst arrives. An append larger than this is never split; it
/// simply forms a batch of its own.
const MAX_BATCH_ROWS: usize = 1024;

/// Largest multi-row INSERT. Chunks are powers of two up to this, so each table has at most
/// seven distinct statement texts and they all stay in sqlx's per-connection statement cache.
const MAX_CHUNK_ROWS: usize = 64;

/// One ledger record to append, prepared by the caller: its JSON columns serialised and its
/// leaf hash computed, so the writer task does nothing but I/O.
pub(crate) struct PreparedRow {
    record: LedgerRecord,
    /// The record's JSON columns in column order (events: attributes; decisions: reasons,
    /// findings, obligations; approvals: none).
    json: Vec<String>,
    leaf_hex: String,
}

impl PreparedRow {
    fn new(record: LedgerRecord, json: Vec<String>) -> PreparedRow {
        let leaf_hex = hash_to_hex(&leaf_hash(&record.canonical_bytes()));
        PreparedRow {
            record,
            json,
            leaf_hex,
        }
    }

    pub(crate) fn event(ev: &EventRecord) -> Result<PreparedRow, StoreError> {
        let attributes =
            serde_json::to_string(&ev.attributes).map_err(|e| corrupt("event attributes", e))?;
        Ok(PreparedRow::new(
            LedgerRecord::Event(ev.clone()),
            vec![attributes],
        ))
    }

    pub(crate) fn decision(d: &DecisionRecord) -> Result<PreparedRow, StoreError> {
        let to_json = |what: &str, v: Result<String, serde_json::Error>| {
            v.map_err(|e| corrupt(format!("decision {what}"), e))
        };
        let json = vec![
            to_json("reasons", serde_json::to_string(&d.reasons))?,
            to_json("findings", serde_json::to_string(&d.findings))?,
            to_json("obligations", serde_json::to_string(&d.obligations))?,
        ];
        Ok(PreparedRow::new(LedgerRecord::Decision(d.clone()), json))
    }

    pub(crate) fn approval(a: &ApprovalRecord) -> PreparedRow {
        PreparedRow::new(LedgerRecord::Approval(a.clone()), Vec::new())
    }

    fn table(&self) -> Result<Table, StoreError> {
        match &self.record {
            LedgerRecord::Event(_) => Ok(Table::Events),
            LedgerRecord::Decision(_) => Ok(Table::Decisions),
            LedgerRecord::Approval(_) => Ok(Table::Approvals),
            // Only the three constructors above build rows; other record kinds have their own
            // append paths.
            other => Err(corrupt("group commit row", other.kind())),
        }
    }

    fn tenant(&self) -> &str {
        match &self.record {
            LedgerRecord::Event(e) => &e.tenant,
            LedgerRecord::Decision(d) => &d.tenant,
            LedgerRecord::Approval(a) => &a.tenant,
            LedgerRecord::Reidentification(r) => &r.tenant,
            LedgerRecord::IncidentTransition(t) => &t.tenant,
            LedgerRecord::EvalRun(r) => &r.tenant,
            LedgerRecord::ToolPin(p) => &p.tenant,
        }
    }

    fn created_at_ms(&self) -> i64 {
        match &self.record {
            LedgerRecord::Event(e) => e.created_at_ms,
            LedgerRecord::Decision(d) => d.created_at_ms,
            LedgerRecord::Approval(a) => a.created_at_ms,
            LedgerRecord::Reidentification(r) => r.created_at_ms,
            LedgerRecord::IncidentTransition(t) => t.created_at_ms,
            LedgerRecord::EvalRun(r) => r.finished_at_ms,
            LedgerRecord::ToolPin(p) => p.created_at_ms,
        }
    }

    /// The id a unique violation is reported under: an approval conflicts on its decision
    /// (one answer per decision), everything else on its own id.
    fn duplicate_id(&self) -> &str {
        match &self.record {
            LedgerRecord::Approval(a) => &a.decision_id,
            other => other.id(),
        }
    }

    fn json(&self, i: usize) -> &str {
        self.json.get(i).map_or("", String::as_str)
    }

    /// Binds this record's columns, in the order of `Table::insert_head`.
    fn bind_record<'q>(&self, q: Query<'q>, index: u64) -> Query<'q> {
        let index = index as i64;
        match &self.record {
            LedgerRecord::Event(ev) => q
                .bind(&ev.id)
                .bind(&ev.tenant)
                .bind(&ev.agent_id)
                .bind(&ev.kind)
                .bind(ev.outcome.as_str())
                .bind(ev.latency_ms)
                .bind(ev.input_tokens)
                .bind(ev.output_tokens)
                .bind(ev.cost_usd)
                .bind(&ev.model)
                .bind(&ev.tool)
                .bind(&ev.region)
                .bind(self.json(0))
                .bind(ev.created_at_ms)
                .bind(index),
            LedgerRecord::Decision(d) => q
                .bind(&d.id)
                .bind(&d.tenant)
                .bind(&d.agent_id)
                .bind(&d.action)
                .bind(&d.model)
                .bind(&d.tool)
                .bind(&d.region)
                .bind(&d.content_hmac)
                .bind(d.decision.as_str())
                .bind(self.json(0))
                .bind(self.json(1))
                .bind(self.json(2))
                .bind(&d.bundle_version)
                .bind(d.created_at_ms)
                .bind(index),
            LedgerRecord::Approval(a) => q
                .bind(&a.id)
                .bind(&a.tenant)
                .bind(&a.decision_id)
                .bind(i64::from(a.approved))
                .bind(&a.decided_by)
                .bind(a.decided_by_role.as_str())
                .bind(&a.note)
                .bind(a.created_at_ms)
                .bind(index),
            // `table()` refused this row before any statement was built.
            LedgerRecord::Reidentification(_)
            | LedgerRecord::IncidentTransition(_)
            | LedgerRecord::EvalRun(_)
            | LedgerRecord::ToolPin(_) => q,
        }
    }

    /// Binds this record's ledger leaf, in the order of `Table::Ledger`'s columns.
    fn bind_leaf<'q>(&self, q: Query<'q>, index: u64) -> Query<'q> {
        q.bind(self.tenant())
            .bind(index as i64)
            .bind(self.record.kind())
            .bind(self.record.id())
            .bind(self.leaf_hex.as_str())
            .bind(self.created_at_ms())
    }
}

/// A sealed pseudonym to keep (see `Store::put_pseudonyms`). It has no ledger leaf, but it
/// must be durable before the answer that shows the pseudonym goes out, which is exactly what
/// an acknowledged group commit gives; sharing the ledger's transactions also spares the
/// check path a second fsync and a second writer fighting for SQLite's lock.
pub(crate) struct PseudonymRow {
    tenant: String,
    pseudonym: String,
    entity: String,
    sealed: String,
    created_at_ms: i64,
}

impl PseudonymRow {
    pub(crate) fn new(tenant: &str, item: &SealedPseudonym, at_ms: i64) -> PseudonymRow {
        PseudonymRow {
            tenant: tenant.to_string(),
            pseudonym: item.pseudonym.clone(),
            entity: item.entity.clone(),
            sealed: item.sealed.clone(),
            created_at_ms: at_ms,
        }
    }

    /// Binds the columns of `Table::Pseudonyms`, in order.
    fn bind<'q>(&self, q: Query<'q>) -> Query<'q> {
        q.bind(self.tenant.as_str())
            .bind(self.pseudonym.as_str())
            .bind(self.entity.as_str())
            .bind(self.sealed.as_str())
            .bind(self.created_at_ms)
    }
}

type Query<'q> = sqlx::query::Query<'q, Any, AnyArguments>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Table {
    Events,
    Decisions,
    Approvals,
    Ledger,
    Pseudonyms,
}

impl Table {
    fn insert_head(self) -> (&'static str, usize) {
        match self {
            Table::Events => (
                "INSERT INTO events (id, tenant, agent_id, kind, outcome, latency_ms, input_tokens, \
                 output_tokens, cost_usd, model, tool, region, attributes, created_at_ms, \
                 ledger_index) VALUES ",
                15,
            ),
            Table::Decisions => (
                "INSERT INTO decisions (id, tenant, agent_id, action, model, tool, region, \
                 content_hmac, decision, reasons, findings, obligations, bundle_version, \
                 created_at_ms, ledger_index) VALUES ",
                15,
            ),
            Table::Approvals => (
                "INSERT INTO approvals (id, tenant, decision_id, approved, decided_by, \
                 decided_by_role, note, created_at_ms, ledger_index) VALUES ",
                9,
            ),
            Table::Ledger => (
                "INSERT INTO ledger (tenant, idx, record_type, record_id, leaf_hash, \
                 created_at_ms) VALUES ",
                6,
            ),
            Table::Pseudonyms => (
                "INSERT INTO pseudonyms (tenant, pseudonym, entity, sealed, created_at_ms) \
                 VALUES ",
                5,
            ),
        }
    }

    /// `INSERT … VALUES (…), (…), …` for `rows` rows. Built from constants and counters only;
    /// every value is a bind parameter.
    ///
    /// PostgreSQL gets numbered parameters (`$1, $2, …`). SQLite gets anonymous ones (`?`),
    /// bound by position: for each parameter sqlx asks SQLite its name, and SQLite finds a
    /// name by scanning the statement's list of named parameters, so numbered parameters made
    /// binding quadratic in the statement's size (measured: a quarter of the server's CPU at
    /// 64-row chunks, the largest single cost of durable ingest).
    fn insert_sql(self, rows: usize, backend: Backend) -> String {
        let (head, columns) = self.insert_head();
        let mut sql = String::with_capacity(head.len() + rows * columns * 6);
        sql.push_str(head);
        let mut n = 0;
        for r in 0..rows {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 0..columns {
                n += 1;
                let sep = if c == 0 { "" } else { ", " };
                let _ = match backend {
                    Backend::Sqlite => write!(sql, "{sep}?"),
                    Backend::Postgres => write!(sql, "{sep}${n}"),
                };
            }
            sql.push(')');
        }
        if self == Table::Pseudonyms {
            // A pseudonym is a keyed hash of its value: a stored one already holds this value.
            sql.push_str(" ON CONFLICT (tenant, pseudonym) DO NOTHING");
        }
        sql
    }
}

/// Why a batch did not commit, which decides what its callers get.
enum Failure {
    /// The database refused a row: retrying each append alone isolates it.
    Row(StoreError),
    /// The transaction as a whole failed: every append in it gets the error.
    Batch(StoreError),
}

impl Failure {
    fn into_error(self) -> StoreError {
        match self {
            Failure::Row(e) | Failure::Batch(e) => e,
        }
    }
}

fn batch_failure(e: sqlx::Error) -> Failure {
    Failure::Batch(e.into())
}

/// A refused row is a database error (constraint, type); anything else (I/O, pool, protocol)
/// is a failure of the transaction as a whole.
fn insert_failure(e: sqlx::Error) -> Failure {
    match e {
        sqlx::Error::Database(_) => Failure::Row(e.into()),
        other => Failure::Batch(other.into()),
    }
}

/// What one committed append got back.
#[derive(Debug, Default)]
pub(crate) struct Committed {
    /// The ledger index of each row, in order.
    pub(crate) indexes: Vec<u64>,
    /// Whether its reservation, if it had one, was made.
    pub(crate) reservation: Option<ReservationOutcome>,
}

type Reply = oneshot::Sender<Result<Committed, StoreError>>;

/// What a caller hands the writer: ledger rows, sealed pseudonyms, spend to count or settle,
/// and a budget reservation, all committed together or not at all.
#[derive(Default)]
pub(crate) struct Append {
    pub(crate) rows: Vec<PreparedRow>,
    pub(crate) pseudonyms: Vec<PseudonymRow>,
    pub(crate) spend: Option<SpendChange>,
    pub(crate) reservation: Option<(String, Reservation)>,
}

impl Append {
    fn is_empty(&self) -> bool {
        self.rows.is_empty()
            && self.pseudonyms.is_empty()
            && self.spend.as_ref().is_none_or(SpendChange::is_empty)
            && self.reservation.is_none()
    }
}

/// One call: what it appends (all-or-nothing) and where to send the result.
struct Job {
    append: Append,
    reply: Reply,
}

impl Job {
    fn size(&self) -> usize {
        // A spend change or a reservation costs a few statements, like a row.
        self.append.rows.len()
            + self.append.pseudonyms.len()
            + usize::from(self.append.spend.is_some())
            + usize::from(self.append.reservation.is_some())
    }

    /// Invalidates the cached counters this job changed, before its caller is answered.
    fn forget_changed_facts(&self, facts: &FactsCache) {
        if let Some(change) = &self.append.spend {
            facts.invalidate(&change.tenant);
        }
        if let Some((tenant, _)) = &self.append.reservation {
            facts.invalidate(tenant);
        }
    }

    fn unit(&self) -> Unit<'_> {
        Unit {
            rows: &self.append.rows,
            pseudonyms: &self.append.pseudonyms,
            spend: self.append.spend.as_ref(),
            reservation: self.append.reservation.as_ref(),
        }
    }
}

/// What `write` needs of a job.
#[derive(Clone, Copy)]
struct Unit<'a> {
    rows: &'a [PreparedRow],
    pseudonyms: &'a [PseudonymRow],
    spend: Option<&'a SpendChange>,
    reservation: Option<&'a (String, Reservation)>,
}

/// The handle appenders use; cloning it shares the same writer.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    queue: mpsc::UnboundedSender<Job>,
    /// Transactions the writer has attempted; with the appends they carried it shows how
    /// much batching happens (tests, and `Debug` when diagnosing).
    stats: Arc<Stats>,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) batches: AtomicU64,
    pub(crate) appends: AtomicU64,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("writer_running", &!self.queue.is_closed())
            .field("stats", &self.stats)
            .finish()
    }
}

impl GroupCommit {
    /// Starts the writer. It ends when every handle is gone, after finishing what was queued.
    ///
    /// The writer gets a thread of its own (with a single-threaded runtime) because it is the
    /// one place every append waits on: a batch takes several statements, and each time the
    /// database answers, the writer must run again. On the server's shared runtime that
    /// wake-up queues behind every request task in flight (measured: a 10-row commit took
    /// ~3 ms with 16 clients and ~10 ms with 64), which caps throughput exactly when batching
    /// should help most. If the thread cannot be started, the writer runs as an ordinary task.
    pub(crate) fn start(pool: AnyPool, backend: Backend, facts: Arc<FactsCache>) -> GroupCommit {
        // Unbounded is safe: every queued job has a caller waiting for its answer, so the queue
        // never holds more than the number of appends in flight.
        let (queue, jobs) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        let task = writer(pool, backend, jobs, stats.clone(), facts);
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => {
                let (task_tx, task_rx) = std::sync::mpsc::channel();
                let spawned = std::thread::Builder::new()
                    .name("meshos-store-writer".into())
                    .spawn(move || {
                        if let Ok(task) = task_rx.recv() {
                            runtime.block_on(task);
                        }
                    });
                match spawned {
                    Ok(_) => {
                        let _ = task_tx.send(task);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "no writer thread; group commit runs as a task");
                        tokio::spawn(task);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "no writer runtime; group commit runs as a task");
                tokio::spawn(task);
            }
        }
        GroupCommit { queue, stats }
    }

    #[cfg(test)]
    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Appends the rows in one all-or-nothing unit and returns their ledger indexes, in order,
    /// once they are committed.
    pub(crate) async fn append(&self, rows: Vec<PreparedRow>) -> Result<Vec<u64>, StoreError> {
        self.submit(Append {
            rows,
            ..Append::default()
        })
        .await
        .map(|c| c.indexes)
    }

    /// Commits everything in `append` in one all-or-nothing unit.
    pub(crate) async fn submit(&self, append: Append) -> Result<Committed, StoreError> {
        if append.is_empty() {
            return Ok(Committed::default());
        }
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { append, reply })
            .map_err(|_| StoreError::WriterStopped)?;
        // A dropped reply means the writer went away without answering (its thread or
        // runtime ended): the append was not acknowledged, and its transaction, if any,
        // rolled back.
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn writer(
    pool: AnyPool,
    backend: Backend,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    stats: Arc<Stats>,
    facts: Arc<FactsCache>,
) {
    let mut conn = WriterConnection {
        pool,
        backend,
        conn: None,
    };
    let mut carried: Option<Job> = None;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match jobs.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let mut rows = first.size();
        let mut batch = vec![first];
        // Everything that queued up while the previous batch was committing joins this one.
        while rows < MAX_BATCH_ROWS {
            match jobs.try_recv() {
                Ok(job) if rows + job.size() > MAX_BATCH_ROWS => {
                    carried = Some(job);
                    break;
                }
                Ok(job) => {
                    rows += job.size();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats
            .appends
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let appends = batch.len();
        let started = std::time::Instant::now();
        commit(&mut conn, batch, &facts).await;
        // At debug level: how batches form under load, and what a commit costs.
        tracing::debug!(
            appends,
            rows,
            micros = started.elapsed().as_micros() as u64,
            "group commit"
        );
        if carried.is_none() && jobs.is_empty() {
            conn.release();
        }
    }
}

/// The writer's connection. It is kept from one batch to the next while appends keep coming,
/// which saves a pool acquire and sqlx's release-time ping per batch, and given back as soon
/// as the queue is empty, so an idle writer never holds a connection that `Store::close` or a
/// reader waits for.
struct WriterConnection {
    pool: AnyPool,
    backend: Backend,
    conn: Option<PoolConnection<Any>>,
}

impl WriterConnection {
    async fn get(&mut self) -> Result<&mut PoolConnection<Any>, Failure> {
        if self.conn.is_none() {
            self.conn = Some(self.pool.acquire().await.map_err(batch_failure)?);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| Failure::Batch(sqlx::Error::PoolClosed.into()))
    }

    fn release(&mut self) {
        self.conn = None;
    }

    /// One transaction over `units`; after a failure of the transaction as a whole the
    /// connection is given back rather than trusted with the next batch.
    async fn write(
        &mut self,
        units: &[Unit<'_>],
        one_by_one: bool,
    ) -> Result<Vec<Committed>, Failure> {
        let backend = self.backend;
        let conn = self.get().await?;
        let result = write(conn, backend, units, one_by_one).await;
        if matches!(result, Err(Failure::Batch(_))) {
            self.release();
        }
        result
    }
}

/// Writes one batch and answers its callers; see the module comment for the failure rules.
async fn commit(conn: &mut WriterConnection, batch: Vec<Job>, facts: &FactsCache) {
    let outcome = {
        let units: Vec<Unit<'_>> = batch.iter().map(Job::unit).collect();
        conn.write(&units, false).await
    };
    match outcome {
        Ok(indexes) => {
            for (job, idx) in batch.into_iter().zip(indexes) {
                job.forget_changed_facts(facts);
                // The caller may have given up waiting; its rows are committed regardless.
                let _ = job.reply.send(Ok(idx));
            }
        }
        // Even a batch of one is rewritten row by row: the multi-row statements cannot say
        // which row was refused, and the caller is owed the id (`Duplicate { id }`).
        Err(Failure::Row(_)) => {
            for job in batch {
                let alone = conn.write(&[job.unit()], true).await;
                if alone.is_ok() {
                    job.forget_changed_facts(facts);
                }
                let _ = job.reply.send(match alone {
                    Ok(mut done) => Ok(done.pop().unwrap_or_default()),
                    Err(f) => Err(f.into_error()),
                });
            }
        }
        Err(Failure::Batch(e)) if batch.len() == 1 => {
            if let Some(job) = batch.into_iter().next() {
                let _ = job.reply.send(Err(e));
            }
        }
        Err(Failure::Batch(e)) => {
            let shared = Arc::new(e);
            for job in batch {
                let _ = job.reply.send(Err(StoreError::Batch(shared.clone())));
            }
        }
    }
}

/// Writes `units` (each an all-or-nothing append) in one transaction and returns the ledger
/// indexes of each unit. `one_by_one` uses a statement per row so that a refused row is
/// reported under its own id.
async fn write(
    conn: &mut PoolConnection<Any>,
    backend: Backend,
    units: &[Unit<'_>],
    one_by_one: bool,
) -> Result<Vec<Committed>, Failure> {
    let rows = || units.iter().flat_map(|u| u.rows.iter());
    // Refuse row kinds this path does not write before touching the database.
    let mut tables = Vec::with_capacity(units.iter().map(|u| u.rows.len()).sum());
    for row in rows() {
        tables.push(row.table().map_err(Failure::Row)?);
    }

    let mut per_tenant: BTreeMap<&str, u64> = BTreeMap::new();
    for row in rows() {
        *per_tenant.entry(row.tenant()).or_default() += 1;
    }

    let mut tx = sqlx::Connection::begin(&mut **conn)
        .await
        .map_err(batch_failure)?;
    // Reserve each tenant's block of indexes. Tenants are locked in sorted order so two
    // writers (other processes on the same PostgreSQL) cannot deadlock on head rows.
    let mut next: BTreeMap<&str, u64> = BTreeMap::new();
    for (tenant, count) in &per_tenant {
        let first = reserve(&mut tx, tenant, *count)
            .await
            .map_err(batch_failure)?;
        next.insert(tenant, first);
    }
    // Indexes follow queue order within each tenant.
    let mut indexes: Vec<Vec<u64>> = Vec::with_capacity(units.len());
    let mut placed: Vec<(&PreparedRow, Table, u64)> = Vec::with_capacity(tables.len());
    let mut table_of = tables.into_iter();
    for unit in units {
        let mut idx = Vec::with_capacity(unit.rows.len());
        for row in unit.rows {
            let slot = next.entry(row.tenant()).or_default();
            let index = *slot;
            *slot += 1;
            idx.push(index);
            let table = table_of.next().unwrap_or(Table::Ledger);
            placed.push((row, table, index));
        }
        indexes.push(idx);
    }

    if one_by_one {
        for &(row, table, index) in &placed {
            let inserted = row
                .bind_record(
                    sqlx::query(AssertSqlSafe(table.insert_sql(1, backend))),
                    index,
                )
                .execute(&mut *tx)
                .await;
            if let Err(e) = map_duplicate(inserted, row.duplicate_id()) {
                return Err(match e {
                    StoreError::Database(sqlx::Error::Database(_))
                    | StoreError::Duplicate { .. } => Failure::Row(e),
                    other => Failure::Batch(other),
                });
            }
            let leaf = row.bind_leaf(
                sqlx::query(AssertSqlSafe(Table::Ledger.insert_sql(1, backend))),
                index,
            );
            leaf.execute(&mut *tx).await.map_err(insert_failure)?;
        }
    } else {
        // Same-table rows go in multi-row INSERTs: on PostgreSQL each statement is a round
        // trip, on SQLite a hop to the connection's worker thread.
        placed.sort_by_key(|&(_, table, _)| table);
        for group in placed.chunk_by(|a, b| a.1 == b.1) {
            insert_chunks(&mut tx, backend, group, false).await?;
        }
        insert_chunks(&mut tx, backend, &placed, true).await?;
    }
    let pseudonyms: Vec<&PseudonymRow> = units.iter().flat_map(|u| u.pseudonyms).collect();
    let mut rest = pseudonyms.as_slice();
    while !rest.is_empty() {
        let size = if one_by_one {
            1
        } else {
            chunk_size(rest.len())
        };
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let mut q = sqlx::query(AssertSqlSafe(Table::Pseudonyms.insert_sql(size, backend)));
        for row in chunk {
            q = row.bind(q);
        }
        q.execute(&mut *tx).await.map_err(insert_failure)?;
    }
    // Spend and reservations after the rows, in queue order: a reservation sees every
    // reservation and settlement queued before it, in this batch or an earlier one.
    let mut done: Vec<Committed> = Vec::with_capacity(units.len());
    for (unit, indexes) in units.iter().zip(indexes) {
        if let Some(change) = unit.spend {
            budget::apply_spend(&mut tx, change)
                .await
                .map_err(spend_failure)?;
        }
        let reservation = match unit.reservation {
            Some((tenant, r)) => Some(
                budget::reserve(&mut tx, tenant, r)
                    .await
                    .map_err(spend_failure)?,
            ),
            None => None,
        };
        done.push(Committed {
            indexes,
            reservation,
        });
    }
    tx.commit().await.map_err(batch_failure)?;
    Ok(done)
}

/// A refused spend statement (a constraint) is the unit's own fault; anything else fails the
/// batch.
fn spend_failure(e: StoreError) -> Failure {
    match e {
        StoreError::Database(sqlx::Error::Database(_)) | StoreError::Corrupt { .. } => {
            Failure::Row(e)
        }
        other => Failure::Batch(other),
    }
}

/// Inserts `rows` (all of one record table, or their leaves when `leaves`) in chunks.
async fn insert_chunks(
    tx: &mut sqlx::Transaction<'_, Any>,
    backend: Backend,
    rows: &[(&PreparedRow, Table, u64)],
    leaves: bool,
) -> Result<(), Failure> {
    let mut rest = rows;
    while let Some(&(_, table, _)) = rest.first() {
        let size = chunk_size(rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let table = if leaves { Table::Ledger } else { table };
        let mut q = sqlx::query(AssertSqlSafe(table.insert_sql(size, backend)));
        for &(row, _, index) in chunk {
            q = if leaves {
                row.bind_leaf(q, index)
            } else {
                row.bind_record(q, index)
            };
        }
        q.execute(&mut **tx).await.map_err(insert_failure)?;
    }
    Ok(())
}

/// The largest power of two ≤ `n`, capped at `MAX_CHUNK_ROWS`.
fn chunk_size(n: usize) -> usize {
    let capped = n.clamp(1, MAX_CHUNK_ROWS);
    1 << (usize::BITS - 1 - capped.leading_zeros())
}

/// Reserves `count` consecutive indexes of the tenant's log and returns the first, in one
/// statement (an upsert, so a tenant's first append needs no separate insert). It takes the
/// head row's lock (PostgreSQL) or the database write lock (SQLite) until commit.
async fn reserve(
    tx: &mut sqlx::Transaction<'_, Any>,
    tenant: &str,
    count: u64,
) -> Result<u64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO ledger_heads (tenant, size) VALUES ($1, $2) \
         ON CONFLICT (tenant) DO UPDATE SET size = ledger_heads.size + excluded.size \
         RETURNING size",
    )
    .bind(tenant)
    .bind(count as i64)
    .fetch_one(&mut **tx)
    .await?;
    let size: i64 = row.try_get("size")?;
    Ok((size as u64).saturating_sub(count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_up_to_the_cap() {
        assert_eq!(chunk_size(1), 1);
        assert_eq!(chunk_size(3), 2);
        assert_eq!(chunk_size(64), 64);
        assert_eq!(chunk_size(100), 64);
        assert_eq!(chunk_size(63), 32);
    }

    /// Concurrent appends really share transactions (the other tests check they stay correct).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_share_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::connect(&crate::sqlite_url_for_data_dir(dir.path()))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for n in 0..400 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let d = DecisionRecord {
                    id: format!("dec_{n}"),
                    tenant: "t".into(),
                    agent_id: "a".into(),
                    action: "x".into(),
                    model: None,
                    tool: None,
                    region: None,
                    content_hmac: None,
                    decision: meshos_types::Verdict::Allow,
                    reasons: vec![],
                    findings: vec![],
                    obligations: vec![],
                    bundle_version: "v".into(),
                    created_at_ms: n,
                };
                store.append_decision(&d).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let stats = store.writer.stats();
        assert_eq!(stats.appends.load(Ordering::Relaxed), 400);
        let batches = stats.batches.load(Ordering::Relaxed);
        println!("{batches} transactions for 400 concurrent appends");
        assert!(
            batches < 200,
            "{batches} transactions for 400 concurrent appends"
        );
    }

    #[test]
    fn multi_row_sql_numbers_every_parameter() {
        let sql = Table::Ledger.insert_sql(2, Backend::Postgres);
        assert!(sql.ends_with("VALUES ($1, $2, $3, $4, $5, $6), ($7, $8, $9, $10, $11, $12)"));
    }

    #[test]
    fn multi_row_sql_on_sqlite_binds_by_position() {
        let sql = Table::Ledger.insert_sql(2, Backend::Sqlite);
        assert!(sql.ends_with("VALUES (?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?)"));
    }
}
