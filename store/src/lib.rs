//! Persistence for Mesh OS: tokens, events, policy decisions and the per-tenant evidence ledger.
//!
//! One code path over sqlx's `Any` driver serves both backends: SQLite in WAL mode (the embedded
//! default, a file under the data directory) and PostgreSQL (scale-out). Each backend has its own
//! migrations, run at connect. Every query is scoped by tenant: callers pass the tenant of the
//! authenticated principal and nothing here reads across tenants except the auditor's
//! `ledger_tenants` and the deployment-wide tenant log lists. This crate does no policy, trust or
//! signing logic; it stores what it is given and appends ledger leaves in the same transaction as
//! the records they cover, so an acknowledged record is always provable. Checkpoints, their
//! witness cosignatures and tenant log lists are append-only: nothing here updates or deletes
//! them.

mod budget;
mod evals;
mod facts_cache;
mod fleet;
mod gateway;
mod group_commit;
mod healer;
mod privacy;
mod trust;
mod usage;

pub use evals::{StoredEvalResult, StoredEvalRun, StoredEvalSchedule};
pub use gateway::{GatewayClientActivity, StoredGatewayClient, StoredToolPin};
pub use healer::{LeaderLease, StoredControl, StoredHealAction, StoredIncident, readable_controls};
pub use privacy::SealedPseudonym;

/// One distinct (agent, tool, model, region) combination seen in events; see
/// [`Store::call_relations`].
#[derive(Debug, Clone, PartialEq)]
pub struct CallRelation {
    pub agent_id: String,
    pub tool: Option<String>,
    pub model: Option<String>,
    pub region: Option<String>,
    pub events: u64,
    pub last_seen_ms: i64,
}
pub use budget::{CounterState, Reservation, ReservationOutcome, Settle, SpendChange, UsageLimit};
pub use fleet::{FleetAgent, HourlyScore};
pub use trust::{StoredAlert, StoredSignal, TrustPoint};
pub use usage::{UsageIncrement, UsageKey, usage_periods};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use meshos_evidence::{Hash, hash_from_hex, hash_to_hex, leaf_hash};
use meshos_types::{
    ApprovalRecord, DecisionRecord, EventRecord, LedgerRecord, Outcome, Principal, Role, Verdict,
};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a caller waits for a database connection before getting an error instead of a hang.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {url:?} is not supported; expected sqlite://PATH or postgres://…")]
    UnsupportedUrl { url: String },
    #[error("cannot open the database at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored row is corrupt ({what}): {detail}")]
    Corrupt { what: String, detail: String },
    #[error("record {id:?} already exists")]
    Duplicate { id: String },
    /// An optimistic update lost a race: the row changed since it was read.
    #[error(
        "{what} {id:?} was changed by someone else (expected version {expected}); reload and retry"
    )]
    Conflict {
        what: String,
        id: String,
        expected: i64,
    },
    /// A run (or other unit of work) was asked to finish when it was not running.
    #[error("{what} {id:?} is not running (unknown, or already finished)")]
    NotRunning { what: &'static str, id: String },
    /// An append shared its transaction with others (group commit) and that transaction
    /// failed as a whole; every append in it gets the same error and none was stored.
    #[error("{0}")]
    Batch(Arc<StoreError>),
    #[error(
        "the store's writer task has stopped (its runtime shut down); the append was not stored"
    )]
    WriterStopped,
}

fn corrupt(what: impl Into<String>, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        detail: detail.to_string(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One ledger position: which record sits at `index` and the leaf hash recorded for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub index: u64,
    pub record_type: String,
    pub record_id: String,
    pub leaf_hash: Hash,
    pub created_at_ms: i64,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub tenant: String,
    pub size: u64,
    pub root: Hash,
    pub note: String,
    pub created_at_ms: i64,
}

/// A witness's cosignature of a stored checkpoint (see migration 0008): `witness` is the
/// `<key name>+<hex key id>` its signature line names, `signature` the line itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCosignature {
    pub tenant: String,
    pub size: u64,
    pub witness: String,
    pub signature: String,
    pub created_at_ms: i64,
}

/// A signed list of every tenant log (see migration 0007); `seq` repeats the note's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogList {
    pub seq: u64,
    pub note: String,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// Ledger appends (events, decisions, approvals) go through this writer so that
    /// concurrent appends share a commit; see `group_commit`.
    writer: group_commit::GroupCommit,
    backend: Backend,
    /// Controls and counters policy checks read, kept briefly (see `facts_cache`).
    facts: Arc<facts_cache::FactsCache>,
}

/// The SQLite URL of the embedded database inside a data directory.
pub fn sqlite_url_for_data_dir(data_dir: &Path) -> String {
    // Absolute, so a `host:port`-looking first segment (`data:1/…`) is not read as a host;
    // `%`, `?` and `#` escaped, so they stay part of the path instead of starting the query.
    let file = data_dir.join("meshos.db");
    let file = std::path::absolute(&file).unwrap_or(file);
    let mut path = String::new();
    for c in file.display().to_string().chars() {
        match c {
            '%' => path.push_str("%25"),
            '?' => path.push_str("%3F"),
            '#' => path.push_str("%23"),
            c => path.push(c),
        }
    }
    format!("sqlite://{path}?mode=rwc")
}

/// Redacts the password of a database URL for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Store {
    /// Opens (creating if needed) the database at `url` and runs its migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl {
                url: redact_url(url),
            });
        };
        let mut options = AnyPoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
        if backend == Backend::Sqlite {
            // One writer at a time is SQLite's model; WAL lets readers proceed meanwhile.
            // synchronous=FULL makes every acknowledged commit survive power loss.
            //
            // No ping before each acquire: sqlx runs every SQLite connection on a thread of
            // its own, so that ping is one more round trip to the thread (two context
            // switches) in front of every query, and on the policy-check path the hops cost
            // more CPU than the queries. It guards against connections that a network or a
            // server restart broke, which a connection to a local file does not have; sqlx
            // still pings each connection when it is released, and closes one that fails.
            // PostgreSQL keeps the check (idle connections there can be cut by the server).
            options = options
                .max_connections(8)
                .test_before_acquire(false)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        Ok(())
                    })
                });
        } else {
            options = options.max_connections(16);
        }
        let pool = options
            .connect(url)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact_url(url),
                source,
            })?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        let facts = Arc::new(facts_cache::FactsCache::default());
        let writer = group_commit::GroupCommit::start(pool.clone(), backend, facts.clone());
        Ok(Store {
            pool,
            backend,
            writer,
            facts,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Cheap liveness probe used by `/healthz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- tokens -------------------------------------------------------------------------

    /// Stores a token by the SHA-256 of its secret.
    pub async fn insert_token(
        &self,
        token_id: &str,
        secret_sha256: &str,
        tenant: &str,
        role: Role,
        agent_id: Option<&str>,
        created_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tokens (id, secret_sha256, tenant, role, agent_id, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_id)
        .bind(secret_sha256)
        .bind(tenant)
        .bind(role.as_str())
        .bind(agent_id)
        .bind(created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The principal whose token secret hashes to `secret_sha256`, if any.
    pub async fn principal_by_secret_hash(
        &self,
        secret_sha256: &str,
    ) -> Result<Option<Principal>, StoreError> {
        let row =
            sqlx::query("SELECT id, tenant, role, agent_id FROM tokens WHERE secret_sha256 = $1")
                .bind(secret_sha256)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let role: String = row.try_get("role")?;
        Ok(Some(Principal {
            token_id: row.try_get("id")?,
            tenant: row.try_get("tenant")?,
            role: role.parse().map_err(|e| corrupt("tokens.role", e))?,
            agent_id: row.try_get("agent_id")?,
        }))
    }

    // ---- ledger appends -----------------------------------------------------------------

    /// Stores events and appends one ledger leaf per event, all in one transaction.
    /// Returns the ledger index of each event, in order, once they are committed.
    pub async fn append_events(&self, events: &[EventRecord]) -> Result<Vec<u64>, StoreError> {
        self.append_events_with_spend(events, None).await
    }

    /// [`Store::append_events`] with the spend they report: counted, and the reservations
    /// they settle released, in the same transaction as the events.
    pub async fn append_events_with_spend(
        &self,
        events: &[EventRecord],
        spend: Option<SpendChange>,
    ) -> Result<Vec<u64>, StoreError> {
        let rows = events
            .iter()
            .map(group_commit::PreparedRow::event)
            .collect::<Result<Vec<_>, _>>()?;
        let committed = self
            .writer
            .submit(group_commit::Append {
                rows,
                spend,
                ..Default::default()
            })
            .await?;
        Ok(committed.indexes)
    }

    /// Stores a decision and appends its ledger leaf in one transaction; returns the index
    /// once it is committed.
    pub async fn append_decision(&self, d: &DecisionRecord) -> Result<u64, StoreError> {
        self.append_decision_with(d, &[], None).await
    }

    /// Stores a decision with the sealed pseudonyms its redaction issued and, when it lets
    /// nothing happen, the release of its own budget reservation — one transaction.
    pub async fn append_decision_with(
        &self,
        d: &DecisionRecord,
        pseudonyms: &[SealedPseudonym],
        release: Option<SpendChange>,
    ) -> Result<u64, StoreError> {
        let append = group_commit::Append {
            rows: vec![group_commit::PreparedRow::decision(d)?],
            pseudonyms: pseudonyms
                .iter()
                .map(|p| group_commit::PseudonymRow::new(&d.tenant, p, d.created_at_ms))
                .collect(),
            spend: release,
            reservation: None,
        };
        single_index(self.writer.submit(append).await?.indexes)
    }

    /// Reserves an estimate against budget counters if every limit still holds with it
    /// (see `budget.rs`); committed before it returns.
    pub async fn reserve_usage(
        &self,
        tenant: &str,
        reservation: Reservation,
    ) -> Result<ReservationOutcome, StoreError> {
        let committed = self
            .writer
            .submit(group_commit::Append {
                reservation: Some((tenant.to_string(), reservation)),
                ..Default::default()
            })
            .await?;
        committed
            .reservation
            .ok_or_else(|| corrupt("group commit", "a reservation came back without an outcome"))
    }

    /// Releases the reservations that expired at or before `now_ms`; returns how many.
    pub async fn expire_reservations(&self, now_ms: i64) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        let n = budget::expire(&mut tx, now_ms).await?;
        tx.commit().await?;
        if n > 0 {
            self.facts.invalidate_all();
        }
        Ok(n)
    }

    /// Stores an approval and its ledger leaf. A decision can be answered once: a second
    /// answer is `Duplicate` and changes nothing.
    pub async fn append_approval(&self, a: &ApprovalRecord) -> Result<u64, StoreError> {
        let rows = vec![group_commit::PreparedRow::approval(a)];
        single_index(self.writer.append(rows).await?)
    }

    pub async fn approval(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<(ApprovalRecord, u64)>, StoreError> {
        let row = sqlx::query(APPROVAL_SELECT_BY_ID)
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| approval_from_row(&r)).transpose()
    }

    pub async fn approval_for_decision(
        &self,
        tenant: &str,
        decision_id: &str,
    ) -> Result<Option<(ApprovalRecord, u64)>, StoreError> {
        let row = sqlx::query(APPROVAL_SELECT_BY_DECISION)
            .bind(tenant)
            .bind(decision_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| approval_from_row(&r)).transpose()
    }

    /// `require_approval` decisions nobody has answered yet, oldest first.
    pub async fn pending_approvals(
        &self,
        tenant: &str,
        limit: u32,
    ) -> Result<Vec<(DecisionRecord, u64)>, StoreError> {
        let rows = sqlx::query(DECISION_SELECT_PENDING)
            .bind(tenant)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decision_from_row).collect()
    }

    // ---- reads --------------------------------------------------------------------------

    pub async fn decision(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<(DecisionRecord, u64)>, StoreError> {
        let row = sqlx::query(DECISION_SELECT_BY_ID)
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decision_from_row(&r)).transpose()
    }

    pub async fn event(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<(EventRecord, u64)>, StoreError> {
        let row = sqlx::query(EVENT_SELECT_BY_ID)
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| event_from_row(&r)).transpose()
    }

    /// The tenant's most recent decisions (of one verdict, `allow`, `deny`, … when given),
    /// newest first: the console's decision feed.
    pub async fn latest_decisions(
        &self,
        tenant: &str,
        verdict: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(DecisionRecord, u64)>, StoreError> {
        let rows = match verdict {
            Some(v) => {
                sqlx::query(DECISION_SELECT_LATEST_WITH_VERDICT)
                    .bind(tenant)
                    .bind(v)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(DECISION_SELECT_LATEST)
                    .bind(tenant)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(decision_from_row).collect()
    }

    /// The agent's most recent decisions, newest first.
    pub async fn recent_decisions(
        &self,
        tenant: &str,
        agent_id: &str,
        limit: u32,
    ) -> Result<Vec<(DecisionRecord, u64)>, StoreError> {
        let rows = sqlx::query(DECISION_SELECT_BY_AGENT)
            .bind(tenant)
            .bind(agent_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decision_from_row).collect()
    }

    /// The agent's most recent events, newest first.
    pub async fn recent_events(
        &self,
        tenant: &str,
        agent_id: &str,
        limit: u32,
    ) -> Result<Vec<(EventRecord, u64)>, StoreError> {
        let rows = sqlx::query(EVENT_SELECT_BY_AGENT)
            .bind(tenant)
            .bind(agent_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Which agent called which tool and model in which region, from the tenant's events since
    /// `since_ms`: one row per distinct combination with how many events showed it and when last.
    /// The fleet topology is built from these.
    pub async fn call_relations(
        &self,
        tenant: &str,
        since_ms: i64,
    ) -> Result<Vec<CallRelation>, StoreError> {
        let rows = sqlx::query(
            "SELECT agent_id, tool, model, region, COUNT(*) AS n, MAX(created_at_ms) AS last_ms \
             FROM events WHERE tenant = $1 AND created_at_ms >= $2 \
             GROUP BY agent_id, tool, model, region \
             ORDER BY agent_id, COALESCE(tool, ''), COALESCE(model, ''), COALESCE(region, '')",
        )
        .bind(tenant)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CallRelation {
                    agent_id: r.try_get("agent_id")?,
                    tool: r.try_get("tool")?,
                    model: r.try_get("model")?,
                    region: r.try_get("region")?,
                    events: u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                    last_seen_ms: r.try_get("last_ms")?,
                })
            })
            .collect()
    }

    /// The tenant's events with `from_ms <= created_at_ms < to_ms`, oldest first, at most
    /// `limit`: the window the healer diagnoses and verifies over.
    pub async fn events_between(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(EVENT_SELECT_BETWEEN)
            .bind(tenant)
            .bind(from_ms)
            .bind(to_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| event_from_row(r).map(|(e, _)| e))
            .collect()
    }

    /// Whether the tenant has seen any event or decision for this agent.
    pub async fn agent_known(&self, tenant: &str, agent_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM events WHERE tenant = $1 AND agent_id = $2) \
                  + (SELECT COUNT(*) FROM decisions WHERE tenant = $1 AND agent_id = $2) AS n",
        )
        .bind(tenant)
        .bind(agent_id)
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = row.try_get("n")?;
        Ok(n > 0)
    }

    /// The record stored at a ledger position, re-read from its own table.
    pub async fn ledger_record(
        &self,
        tenant: &str,
        entry: &LedgerEntry,
    ) -> Result<Option<LedgerRecord>, StoreError> {
        Ok(match entry.record_type.as_str() {
            "decision" => self
                .decision(tenant, &entry.record_id)
                .await?
                .map(|(d, _)| LedgerRecord::Decision(d)),
            "event" => self
                .event(tenant, &entry.record_id)
                .await?
                .map(|(e, _)| LedgerRecord::Event(e)),
            "approval" => self
                .approval(tenant, &entry.record_id)
                .await?
                .map(|(a, _)| LedgerRecord::Approval(a)),
            "reidentification" => self
                .reidentification(tenant, &entry.record_id)
                .await?
                .map(|(r, _)| LedgerRecord::Reidentification(r)),
            "incident_transition" => self
                .incident_transition(tenant, &entry.record_id)
                .await?
                .map(|(t, _)| LedgerRecord::IncidentTransition(t)),
            "eval_run" => self
                .eval_run_record(tenant, &entry.record_id)
                .await?
                .map(LedgerRecord::EvalRun),
            "tool_pin" => self
                .tool_pin(tenant, &entry.record_id)
                .await?
                .map(LedgerRecord::ToolPin),
            other => return Err(corrupt("ledger.record_type", other)),
        })
    }

    // ---- ledger reads -------------------------------------------------------------------

    /// Number of leaves in the tenant's log.
    pub async fn ledger_size(&self, tenant: &str) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT size FROM ledger_heads WHERE tenant = $1")
            .bind(tenant)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(r.try_get::<i64, _>("size")? as u64),
            None => Ok(0),
        }
    }

    /// All ledger entries of a tenant with index in `[from, to)`, in order.
    pub async fn ledger_entries(
        &self,
        tenant: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT idx, record_type, record_id, leaf_hash, created_at_ms FROM ledger \
             WHERE tenant = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
        )
        .bind(tenant)
        .bind(from as i64)
        .bind(to as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ledger_entry_from_row).collect()
    }

    /// Up to `limit` ledger entries of one record type with index below `before`, newest
    /// first.
    pub async fn ledger_entries_of_type(
        &self,
        tenant: &str,
        record_type: &str,
        before: u64,
        limit: u32,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT idx, record_type, record_id, leaf_hash, created_at_ms FROM ledger \
             WHERE tenant = $1 AND record_type = $2 AND idx < $3 ORDER BY idx DESC LIMIT $4",
        )
        .bind(tenant)
        .bind(record_type)
        .bind(i64::try_from(before).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ledger_entry_from_row).collect()
    }

    /// The first `size` leaf hashes of a tenant's log, in order.
    pub async fn ledger_leaf_hashes(
        &self,
        tenant: &str,
        size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        self.ledger_leaf_hashes_between(tenant, 0, size).await
    }

    /// Leaf hashes `from..to` of the tenant's log, checked to be gap-free; a checkpoint
    /// writer that keeps the tree's frontier reads only the leaves appended since.
    pub async fn ledger_leaf_hashes_between(
        &self,
        tenant: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        let rows = sqlx::query(
            "SELECT idx, leaf_hash FROM ledger WHERE tenant = $1 AND idx >= $2 AND idx < $3 \
             ORDER BY idx",
        )
        .bind(tenant)
        .bind(from as i64)
        .bind(to as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (offset, r) in rows.iter().enumerate() {
            let expected = from as usize + offset;
            let idx: i64 = r.try_get("idx")?;
            if idx as usize != expected {
                return Err(corrupt(
                    "ledger",
                    format!(
                        "tenant {tenant}: leaf {expected} is missing (next stored index is {idx})"
                    ),
                ));
            }
            let leaf: String = r.try_get("leaf_hash")?;
            out.push(hash_from_hex(&leaf).map_err(|e| corrupt("ledger.leaf_hash", e))?);
        }
        Ok(out)
    }

    /// Every tenant that has a ledger (for whole-deployment verification).
    pub async fn ledger_tenants(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT tenant FROM ledger_heads ORDER BY tenant")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get("tenant").map_err(StoreError::from))
            .collect()
    }

    // ---- checkpoints --------------------------------------------------------------------

    /// Saves a signed checkpoint; saving the same size twice keeps the first.
    pub async fn save_checkpoint(&self, cp: &StoredCheckpoint) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO checkpoints (tenant, size, root_hash, note, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, size) DO NOTHING",
        )
        .bind(&cp.tenant)
        .bind(cp.size as i64)
        .bind(hash_to_hex(&cp.root))
        .bind(&cp.note)
        .bind(cp.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn latest_checkpoint(
        &self,
        tenant: &str,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row = sqlx::query(
            "SELECT tenant, size, root_hash, note, created_at_ms FROM checkpoints \
             WHERE tenant = $1 ORDER BY size DESC LIMIT 1",
        )
        .bind(tenant)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| checkpoint_from_row(&r)).transpose()
    }

    pub async fn checkpoints(&self, tenant: &str) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant, size, root_hash, note, created_at_ms FROM checkpoints \
             WHERE tenant = $1 ORDER BY size",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    // ---- witness cosignatures -----------------------------------------------------------

    /// Saves a witness's cosignature of the stored checkpoint `(tenant, size)`; `false` when
    /// one by this witness is already stored for it (the first is kept). Never updated or
    /// deleted.
    pub async fn save_cosignature(&self, cosig: &StoredCosignature) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO checkpoint_cosignatures (tenant, size, witness, signature, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, size, witness) DO NOTHING",
        )
        .bind(&cosig.tenant)
        .bind(cosig.size as i64)
        .bind(&cosig.witness)
        .bind(&cosig.signature)
        .bind(cosig.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every cosignature of the tenant's checkpoints, by size, then witness.
    pub async fn cosignatures(&self, tenant: &str) -> Result<Vec<StoredCosignature>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant, size, witness, signature, created_at_ms FROM checkpoint_cosignatures \
             WHERE tenant = $1 ORDER BY size, witness",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(cosignature_from_row).collect()
    }

    /// The cosignatures of one checkpoint, by witness.
    pub async fn cosignatures_at(
        &self,
        tenant: &str,
        size: u64,
    ) -> Result<Vec<StoredCosignature>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant, size, witness, signature, created_at_ms FROM checkpoint_cosignatures \
             WHERE tenant = $1 AND size = $2 ORDER BY witness",
        )
        .bind(tenant)
        .bind(size as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(cosignature_from_row).collect()
    }

    /// The witness's cosignature of the tenant's largest checkpoint it cosigned.
    pub async fn latest_cosignature(
        &self,
        tenant: &str,
        witness: &str,
    ) -> Result<Option<StoredCosignature>, StoreError> {
        let row = sqlx::query(
            "SELECT tenant, size, witness, signature, created_at_ms FROM checkpoint_cosignatures \
             WHERE tenant = $1 AND witness = $2 ORDER BY size DESC LIMIT 1",
        )
        .bind(tenant)
        .bind(witness)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| cosignature_from_row(&r)).transpose()
    }

    // ---- tenant log lists ---------------------------------------------------------------

    /// Saves a signed list of the tenant logs; `false` when another writer (a second server on
    /// the same store) already saved one with this sequence number. Lists, like checkpoints,
    /// are never updated or deleted.
    pub async fn save_log_list(&self, list: &StoredLogList) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO tenant_log_lists (seq, note, created_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (seq) DO NOTHING",
        )
        .bind(list.seq as i64)
        .bind(&list.note)
        .bind(list.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn latest_log_list(&self) -> Result<Option<StoredLogList>, StoreError> {
        let row = sqlx::query(
            "SELECT seq, note, created_at_ms FROM tenant_log_lists ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| log_list_from_row(&r)).transpose()
    }

    /// Every stored list, oldest first.
    pub async fn log_lists(&self) -> Result<Vec<StoredLogList>, StoreError> {
        let rows =
            sqlx::query("SELECT seq, note, created_at_ms FROM tenant_log_lists ORDER BY seq")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(log_list_from_row).collect()
    }
}

/// The index of a one-row append.
fn single_index(indexes: Vec<u64>) -> Result<u64, StoreError> {
    match indexes.as_slice() {
        [index] => Ok(*index),
        other => Err(corrupt(
            "ledger append",
            format!("expected one index, got {}", other.len()),
        )),
    }
}

fn map_duplicate(
    result: Result<sqlx::any::AnyQueryResult, sqlx::Error>,
    id: &str,
) -> Result<(), StoreError> {
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            Err(StoreError::Duplicate { id: id.to_string() })
        }
        Err(e) => Err(e.into()),
    }
}

/// Reserves the next index of the tenant's log. The UPDATE takes the head row's write lock
/// (PostgreSQL) or the database write lock (SQLite), so concurrent appenders get distinct,
/// gap-free indexes in commit order.
async fn next_ledger_index(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
) -> Result<u64, StoreError> {
    sqlx::query(
        "INSERT INTO ledger_heads (tenant, size) VALUES ($1, 0) ON CONFLICT (tenant) DO NOTHING",
    )
    .bind(tenant)
    .execute(&mut **tx)
    .await?;
    let row =
        sqlx::query("UPDATE ledger_heads SET size = size + 1 WHERE tenant = $1 RETURNING size")
            .bind(tenant)
            .fetch_one(&mut **tx)
            .await?;
    let size: i64 = row.try_get("size")?;
    Ok((size - 1) as u64)
}

async fn insert_leaf(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
    index: u64,
    record: &LedgerRecord,
    created_at_ms: i64,
) -> Result<(), StoreError> {
    let leaf = leaf_hash(&record.canonical_bytes());
    sqlx::query(
        "INSERT INTO ledger (tenant, idx, record_type, record_id, leaf_hash, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant)
    .bind(index as i64)
    .bind(record.kind())
    .bind(record.id())
    .bind(hash_to_hex(&leaf))
    .bind(created_at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

const DECISION_SELECT_BY_ID: &str = concat!(
    "SELECT id, tenant, agent_id, action, model, tool, region, content_hmac, decision, reasons, ",
    "findings, obligations, bundle_version, created_at_ms, ledger_index FROM decisions ",
    "WHERE tenant = $1 AND id = $2"
);
const DECISION_SELECT_BY_AGENT: &str = concat!(
    "SELECT id, tenant, agent_id, action, model, tool, region, content_hmac, decision, reasons, ",
    "findings, obligations, bundle_version, created_at_ms, ledger_index FROM decisions ",
    "WHERE tenant = $1 AND agent_id = $2 ORDER BY created_at_ms DESC, ledger_index DESC LIMIT $3"
);
const DECISION_SELECT_LATEST: &str = concat!(
    "SELECT id, tenant, agent_id, action, model, tool, region, content_hmac, decision, reasons, ",
    "findings, obligations, bundle_version, created_at_ms, ledger_index FROM decisions ",
    "WHERE tenant = $1 ORDER BY created_at_ms DESC, ledger_index DESC LIMIT $2"
);
const DECISION_SELECT_LATEST_WITH_VERDICT: &str = concat!(
    "SELECT id, tenant, agent_id, action, model, tool, region, content_hmac, decision, reasons, ",
    "findings, obligations, bundle_version, created_at_ms, ledger_index FROM decisions ",
    "WHERE tenant = $1 AND decision = $2 ORDER BY created_at_ms DESC, ledger_index DESC LIMIT $3"
);
const DECISION_SELECT_PENDING: &str = concat!(
    "SELECT d.id, d.tenant, d.agent_id, d.action, d.model, d.tool, d.region, d.content_hmac, d.decision, ",
    "d.reasons, d.findings, d.obligations, d.bundle_version, d.created_at_ms, d.ledger_index ",
    "FROM decisions d LEFT JOIN approvals a ON a.tenant = d.tenant AND a.decision_id = d.id ",
    "WHERE d.tenant = $1 AND d.decision = 'require_approval' AND a.id IS NULL ",
    "ORDER BY d.created_at_ms, d.ledger_index LIMIT $2"
);
const APPROVAL_SELECT_BY_ID: &str = concat!(
    "SELECT id, tenant, decision_id, approved, decided_by, decided_by_role, note, created_at_ms, ",
    "ledger_index FROM approvals WHERE tenant = $1 AND id = $2"
);
const APPROVAL_SELECT_BY_DECISION: &str = concat!(
    "SELECT id, tenant, decision_id, approved, decided_by, decided_by_role, note, created_at_ms, ",
    "ledger_index FROM approvals WHERE tenant = $1 AND decision_id = $2"
);
const EVENT_SELECT_BY_ID: &str = concat!(
    "SELECT id, tenant, agent_id, kind, outcome, latency_ms, input_tokens, output_tokens, cost_usd, ",
    "model, tool, region, attributes, created_at_ms, ledger_index FROM events ",
    "WHERE tenant = $1 AND id = $2"
);
const EVENT_SELECT_BETWEEN: &str = concat!(
    "SELECT id, tenant, agent_id, kind, outcome, latency_ms, input_tokens, output_tokens, cost_usd, ",
    "model, tool, region, attributes, created_at_ms, ledger_index FROM events ",
    "WHERE tenant = $1 AND created_at_ms >= $2 AND created_at_ms < $3 ",
    "ORDER BY created_at_ms, ledger_index LIMIT $4"
);
const EVENT_SELECT_BY_AGENT: &str = concat!(
    "SELECT id, tenant, agent_id, kind, outcome, latency_ms, input_tokens, output_tokens, cost_usd, ",
    "model, tool, region, attributes, created_at_ms, ledger_index FROM events ",
    "WHERE tenant = $1 AND agent_id = $2 ORDER BY created_at_ms DESC, ledger_index DESC LIMIT $3"
);

fn ledger_entry_from_row(r: &AnyRow) -> Result<LedgerEntry, StoreError> {
    let leaf: String = r.try_get("leaf_hash")?;
    Ok(LedgerEntry {
        index: r.try_get::<i64, _>("idx")? as u64,
        record_type: r.try_get("record_type")?,
        record_id: r.try_get("record_id")?,
        leaf_hash: hash_from_hex(&leaf).map_err(|e| corrupt("ledger.leaf_hash", e))?,
        created_at_ms: r.try_get("created_at_ms")?,
    })
}

fn decision_from_row(r: &AnyRow) -> Result<(DecisionRecord, u64), StoreError> {
    let verdict: String = r.try_get("decision")?;
    let reasons: String = r.try_get("reasons")?;
    let findings: String = r.try_get("findings")?;
    let obligations: String = r.try_get("obligations")?;
    let record = DecisionRecord {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant")?,
        agent_id: r.try_get("agent_id")?,
        action: r.try_get("action")?,
        model: r.try_get("model")?,
        tool: r.try_get("tool")?,
        region: r.try_get("region")?,
        content_hmac: r.try_get("content_hmac")?,
        decision: verdict
            .parse::<Verdict>()
            .map_err(|e| corrupt("decisions.decision", e))?,
        reasons: serde_json::from_str(&reasons).map_err(|e| corrupt("decisions.reasons", e))?,
        findings: serde_json::from_str(&findings).map_err(|e| corrupt("decisions.findings", e))?,
        obligations: serde_json::from_str(&obligations)
            .map_err(|e| corrupt("decisions.obligations", e))?,
        bundle_version: r.try_get("bundle_version")?,
        created_at_ms: r.try_get("created_at_ms")?,
    };
    let index: i64 = r.try_get("ledger_index")?;
    Ok((record, index as u64))
}

fn event_from_row(r: &AnyRow) -> Result<(EventRecord, u64), StoreError> {
    let outcome: String = r.try_get("outcome")?;
    let attributes: String = r.try_get("attributes")?;
    let record = EventRecord {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant")?,
        agent_id: r.try_get("agent_id")?,
        kind: r.try_get("kind")?,
        outcome: outcome
            .parse::<Outcome>()
            .map_err(|e| corrupt("events.outcome", e))?,
        latency_ms: r.try_get("latency_ms")?,
        input_tokens: r.try_get("input_tokens")?,
        output_tokens: r.try_get("output_tokens")?,
        cost_usd: r.try_get("cost_usd")?,
        model: r.try_get("model")?,
        tool: r.try_get("tool")?,
        region: r.try_get("region")?,
        attributes: serde_json::from_str(&attributes)
            .map_err(|e| corrupt("events.attributes", e))?,
        created_at_ms: r.try_get("created_at_ms")?,
    };
    let index: i64 = r.try_get("ledger_index")?;
    Ok((record, index as u64))
}

fn approval_from_row(r: &AnyRow) -> Result<(ApprovalRecord, u64), StoreError> {
    let role: String = r.try_get("decided_by_role")?;
    let approved: i64 = r.try_get("approved")?;
    let record = ApprovalRecord {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant")?,
        decision_id: r.try_get("decision_id")?,
        approved: approved != 0,
        decided_by: r.try_get("decided_by")?,
        decided_by_role: role
            .parse::<Role>()
            .map_err(|e| corrupt("approvals.decided_by_role", e))?,
        note: r.try_get("note")?,
        created_at_ms: r.try_get("created_at_ms")?,
    };
    let index: i64 = r.try_get("ledger_index")?;
    Ok((record, index as u64))
}

fn checkpoint_from_row(r: &AnyRow) -> Result<StoredCheckpoint, StoreError> {
    let root: String = r.try_get("root_hash")?;
    Ok(StoredCheckpoint {
        tenant: r.try_get("tenant")?,
        size: r.try_get::<i64, _>("size")? as u64,
        root: hash_from_hex(&root).map_err(|e| corrupt("checkpoints.root_hash", e))?,
        note: r.try_get("note")?,
        created_at_ms: r.try_get("created_at_ms")?,
    })
}

fn cosignature_from_row(r: &AnyRow) -> Result<StoredCosignature, StoreError> {
    Ok(StoredCosignature {
        tenant: r.try_get("tenant")?,
        size: r.try_get::<i64, _>("size")? as u64,
        witness: r.try_get("witness")?,
        signature: r.try_get("signature")?,
        created_at_ms: r.try_get("created_at_ms")?,
    })
}

fn log_list_from_row(r: &AnyRow) -> Result<StoredLogList, StoreError> {
    Ok(StoredLogList {
        seq: r.try_get::<i64, _>("seq")? as u64,
        note: r.try_get("note")?,
        created_at_ms: r.try_get("created_at_ms")?,
    })
}
