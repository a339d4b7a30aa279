//! What evals must not lose: runs (finished once, with their ledger leaf), per-item results,
//! cron schedules (claimed by one replica per fire, never overlapping), and the baseline each
//! suite is compared with.

use sqlx::Row;
use sqlx::any::AnyRow;

use meshos_types::{EvalRunRecord, LedgerRecord};

use crate::{Store, StoreError, corrupt, insert_leaf, map_duplicate, next_ledger_index};

/// One item's result in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvalResult {
    pub item_id: String,
    /// Every scorer passed (and the target answered).
    pub passed: bool,
    /// Why the target gave no answer, after retries.
    pub error: Option<String>,
    pub latency_ms: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    /// Each scorer's score: `[{scorer, passed, value, detail}]`.
    pub scores: serde_json::Value,
    /// `{input, output}`, only when the suite opts in.
    pub raw: Option<serde_json::Value>,
}

/// A run as stored: its record (final once `ledger_index` is set) and where it sits.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvalRun {
    pub record: EvalRunRecord,
    /// Set when the run finished and its record was appended to the ledger.
    pub ledger_index: Option<u64>,
}

impl StoredEvalRun {
    pub fn is_finished(&self) -> bool {
        self.ledger_index.is_some()
    }
}

/// A cron schedule of a suite.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvalSchedule {
    pub id: String,
    pub tenant: String,
    pub suite_id: String,
    /// A `cron` crate expression (seconds first).
    pub cron: String,
    /// An IANA time zone name the expression is read in.
    pub timezone: String,
    /// `skip` (missed fires are dropped) or `once` (the latest missed fire runs once).
    pub catch_up: String,
    pub created_at_ms: i64,
    /// The scheduled time last fired or skipped.
    pub last_fire_ms: Option<i64>,
    /// A run of this schedule still going: no other starts until it ends.
    pub running_run_id: Option<String>,
    pub version: i64,
}

macro_rules! run_columns {
    () => {
        "id, tenant, suite_id, suite_digest, dataset_digest, target, model, agent_id, \
         triggered_by, status, items, items_passed, items_failed, scores, input_tokens, \
         output_tokens, cost_usd, started_at_ms, finished_at_ms, ledger_index"
    };
}

macro_rules! schedule_columns {
    () => {
        "id, tenant, suite_id, cron, timezone, catch_up, created_at_ms, last_fire_ms, \
         running_run_id, version"
    };
}

fn json_column(r: &AnyRow, column: &str) -> Result<serde_json::Value, StoreError> {
    let text: String = r.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| corrupt(format!("eval {column}"), e))
}

fn count(r: &AnyRow, column: &str) -> Result<u64, StoreError> {
    let n: i64 = r.try_get(column)?;
    u64::try_from(n).map_err(|e| corrupt(format!("eval {column}"), e))
}

fn run_from_row(r: &AnyRow) -> Result<StoredEvalRun, StoreError> {
    let finished: Option<i64> = r.try_get("finished_at_ms")?;
    let index: Option<i64> = r.try_get("ledger_index")?;
    Ok(StoredEvalRun {
        record: EvalRunRecord {
            id: r.try_get("id")?,
            tenant: r.try_get("tenant")?,
            suite_id: r.try_get("suite_id")?,
            suite_digest: r.try_get("suite_digest")?,
            dataset_digest: r.try_get("dataset_digest")?,
            target: r.try_get("target")?,
            model: r.try_get("model")?,
            agent_id: r.try_get("agent_id")?,
            trigger: r.try_get("triggered_by")?,
            status: r.try_get("status")?,
            items: count(r, "items")?,
            items_passed: count(r, "items_passed")?,
            items_failed: count(r, "items_failed")?,
            scores: json_column(r, "scores")?,
            input_tokens: count(r, "input_tokens")?,
            output_tokens: count(r, "output_tokens")?,
            cost_usd: r.try_get("cost_usd")?,
            started_at_ms: r.try_get("started_at_ms")?,
            finished_at_ms: finished.unwrap_or(0),
        },
        ledger_index: index
            .map(|i| u64::try_from(i).map_err(|e| corrupt("eval_runs.ledger_index", e)))
            .transpose()?,
    })
}

fn result_from_row(r: &AnyRow) -> Result<StoredEvalResult, StoreError> {
    let raw: Option<String> = r.try_get("raw")?;
    let passed: i64 = r.try_get("passed")?;
    Ok(StoredEvalResult {
        item_id: r.try_get("item_id")?,
        passed: passed != 0,
        error: r.try_get("error")?,
        latency_ms: r.try_get("latency_ms")?,
        input_tokens: count(r, "input_tokens")?,
        output_tokens: count(r, "output_tokens")?,
        cost_usd: r.try_get("cost_usd")?,
        scores: json_column(r, "scores")?,
        raw: raw
            .map(|t| serde_json::from_str(&t).map_err(|e| corrupt("eval_results.raw", e)))
            .transpose()?,
    })
}

fn schedule_from_row(r: &AnyRow) -> Result<StoredEvalSchedule, StoreError> {
    Ok(StoredEvalSchedule {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant")?,
        suite_id: r.try_get("suite_id")?,
        cron: r.try_get("cron")?,
        timezone: r.try_get("timezone")?,
        catch_up: r.try_get("catch_up")?,
        created_at_ms: r.try_get("created_at_ms")?,
        last_fire_ms: r.try_get("last_fire_ms")?,
        running_run_id: r.try_get("running_run_id")?,
        version: r.try_get("version")?,
    })
}

fn signed(n: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|e| corrupt(what.to_string(), e))
}

/// Rows per INSERT when writing results: well under SQLite's 32,766 bind parameters.
const RESULT_ROWS_PER_STATEMENT: usize = 500;

impl Store {
    /// Records a run that has started (status `running`, no ledger leaf yet).
    pub async fn insert_eval_run(&self, run: &EvalRunRecord) -> Result<(), StoreError> {
        let inserted = sqlx::query(concat!(
            "INSERT INTO eval_runs (",
            run_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, NULL, NULL)"
        ))
        .bind(&run.id)
        .bind(&run.tenant)
        .bind(&run.suite_id)
        .bind(&run.suite_digest)
        .bind(&run.dataset_digest)
        .bind(&run.target)
        .bind(&run.model)
        .bind(&run.agent_id)
        .bind(&run.trigger)
        .bind(&run.status)
        .bind(signed(run.items, "items")?)
        .bind(signed(run.items_passed, "items_passed")?)
        .bind(signed(run.items_failed, "items_failed")?)
        .bind(run.scores.to_string())
        .bind(signed(run.input_tokens, "input_tokens")?)
        .bind(signed(run.output_tokens, "output_tokens")?)
        .bind(run.cost_usd)
        .bind(run.started_at_ms)
        .execute(&self.pool)
        .await;
        map_duplicate(inserted, &run.id)?;
        Ok(())
    }

    /// Stores item results of a running run (all of `results` or none).
    pub async fn insert_eval_results(
        &self,
        tenant: &str,
        run_id: &str,
        results: &[StoredEvalResult],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for chunk in results.chunks(RESULT_ROWS_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO eval_results (tenant, run_id, item_id, passed, error, latency_ms, \
                 input_tokens, output_tokens, cost_usd, scores, raw) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 11;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for c in 1..=11 {
                    if c > 1 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("${}", b + c));
                }
                sql.push(')');
            }
            // Built from placeholders only; every value is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(tenant)
                    .bind(run_id)
                    .bind(&r.item_id)
                    .bind(i64::from(r.passed))
                    .bind(&r.error)
                    .bind(r.latency_ms)
                    .bind(signed(r.input_tokens, "input_tokens")?)
                    .bind(signed(r.output_tokens, "output_tokens")?)
                    .bind(r.cost_usd)
                    .bind(r.scores.to_string())
                    .bind(r.raw.as_ref().map(|v| v.to_string()));
            }
            map_duplicate(q.execute(&mut *tx).await, run_id)?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Finishes a running run: its final record replaces the running one and is appended to
    /// the tenant's ledger, in one transaction. Returns the ledger index. A run finishes once:
    /// finishing it again is a conflict.
    pub async fn finish_eval_run(&self, run: &EvalRunRecord) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let index = next_ledger_index(&mut tx, &run.tenant).await?;
        let updated = sqlx::query(
            "UPDATE eval_runs SET status = $1, items = $2, items_passed = $3, items_failed = $4, \
             scores = $5, input_tokens = $6, output_tokens = $7, cost_usd = $8, \
             finished_at_ms = $9, model = $10, ledger_index = $11 \
             WHERE tenant = $12 AND id = $13 AND ledger_index IS NULL",
        )
        .bind(&run.status)
        .bind(signed(run.items, "items")?)
        .bind(signed(run.items_passed, "items_passed")?)
        .bind(signed(run.items_failed, "items_failed")?)
        .bind(run.scores.to_string())
        .bind(signed(run.input_tokens, "input_tokens")?)
        .bind(signed(run.output_tokens, "output_tokens")?)
        .bind(run.cost_usd)
        .bind(run.finished_at_ms)
        .bind(&run.model)
        .bind(signed(index, "ledger_index")?)
        .bind(&run.tenant)
        .bind(&run.id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::NotRunning {
                what: "eval run",
                id: run.id.clone(),
            });
        }
        // The leaf is built from the row as stored, so that audit's re-derivation (which reads
        // the row back) hashes the same bytes.
        let row = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM eval_runs WHERE tenant = $1 AND id = $2"
        ))
        .bind(&run.tenant)
        .bind(&run.id)
        .fetch_one(&mut *tx)
        .await?;
        let stored = run_from_row(&row)?;
        let record = LedgerRecord::EvalRun(stored.record.clone());
        insert_leaf(
            &mut tx,
            &run.tenant,
            index,
            &record,
            stored.record.finished_at_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(index)
    }

    pub async fn eval_run(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<StoredEvalRun>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM eval_runs WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| run_from_row(&r)).transpose()
    }

    /// A tenant's runs, newest first, optionally of one suite.
    pub async fn eval_runs(
        &self,
        tenant: &str,
        suite_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredEvalRun>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM eval_runs WHERE tenant = $1 AND ($2 = '' OR suite_id = $2) \
             ORDER BY started_at_ms DESC, id DESC LIMIT $3"
        ))
        .bind(tenant)
        .bind(suite_id.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// A run's item results, by item id.
    pub async fn eval_results(
        &self,
        tenant: &str,
        run_id: &str,
    ) -> Result<Vec<StoredEvalResult>, StoreError> {
        let rows = sqlx::query(
            "SELECT item_id, passed, error, latency_ms, input_tokens, output_tokens, cost_usd, \
             scores, raw FROM eval_results WHERE tenant = $1 AND run_id = $2 ORDER BY item_id",
        )
        .bind(tenant)
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(result_from_row).collect()
    }

    /// One page of a run's item results, by item id: those after `after` (exclusive), at most
    /// `limit`. A run can have more results than one reply should carry.
    pub async fn eval_results_page(
        &self,
        tenant: &str,
        run_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredEvalResult>, StoreError> {
        let rows = sqlx::query(
            "SELECT item_id, passed, error, latency_ms, input_tokens, output_tokens, cost_usd, \
             scores, raw FROM eval_results WHERE tenant = $1 AND run_id = $2 AND item_id > $3 \
             ORDER BY item_id LIMIT $4",
        )
        .bind(tenant)
        .bind(run_id)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(result_from_row).collect()
    }

    /// The run ledger position `entry` names, for audit re-derivation.
    pub(crate) async fn eval_run_record(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<EvalRunRecord>, StoreError> {
        Ok(self
            .eval_run(tenant, id)
            .await?
            .filter(StoredEvalRun::is_finished)
            .map(|r| r.record))
    }

    // ---- baselines ------------------------------------------------------------------------

    /// Pins `run_id` as the baseline of its suite (replacing any earlier pin).
    pub async fn pin_eval_baseline(
        &self,
        tenant: &str,
        suite_id: &str,
        run_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO eval_baselines (tenant, suite_id, run_id, pinned_at_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, suite_id) \
             DO UPDATE SET run_id = excluded.run_id, pinned_at_ms = excluded.pinned_at_ms",
        )
        .bind(tenant)
        .bind(suite_id)
        .bind(run_id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn eval_baseline(
        &self,
        tenant: &str,
        suite_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT run_id FROM eval_baselines WHERE tenant = $1 AND suite_id = $2")
                .bind(tenant)
                .bind(suite_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.try_get("run_id")).transpose()?)
    }

    // ---- schedules ------------------------------------------------------------------------

    pub async fn insert_eval_schedule(&self, s: &StoredEvalSchedule) -> Result<(), StoreError> {
        let inserted = sqlx::query(concat!(
            "INSERT INTO eval_schedules (",
            schedule_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&s.id)
        .bind(&s.tenant)
        .bind(&s.suite_id)
        .bind(&s.cron)
        .bind(&s.timezone)
        .bind(&s.catch_up)
        .bind(s.created_at_ms)
        .bind(s.last_fire_ms)
        .bind(&s.running_run_id)
        .bind(s.version)
        .execute(&self.pool)
        .await;
        map_duplicate(inserted, &s.id)?;
        Ok(())
    }

    /// Schedules of a tenant, or of every tenant (the scheduler's view).
    pub async fn eval_schedules(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<StoredEvalSchedule>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            schedule_columns!(),
            " FROM eval_schedules WHERE ($1 = '' OR tenant = $1) ORDER BY tenant, id"
        ))
        .bind(tenant.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(schedule_from_row).collect()
    }

    /// Removes a schedule; false when the tenant has none with that id.
    pub async fn remove_eval_schedule(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM eval_schedules WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims the fire at `fire_ms` of the schedule as read at `version`: moves `last_fire_ms`
    /// and, when a run starts, marks it running. False when another replica (or an earlier
    /// tick) already moved the schedule, or it was removed: then nothing is to be done.
    pub async fn claim_eval_schedule_fire(
        &self,
        s: &StoredEvalSchedule,
        fire_ms: i64,
        run_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE eval_schedules SET last_fire_ms = $1, running_run_id = $2, \
             version = version + 1 WHERE tenant = $3 AND id = $4 AND version = $5",
        )
        .bind(fire_ms)
        .bind(run_id)
        .bind(&s.tenant)
        .bind(&s.id)
        .bind(s.version)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks the schedule's run `run_id` as over, so the next fire may start one.
    pub async fn release_eval_schedule(
        &self,
        tenant: &str,
        id: &str,
        run_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE eval_schedules SET running_run_id = NULL, version = version + 1 \
             WHERE tenant = $1 AND id = $2 AND running_run_id = $3",
        )
        .bind(tenant)
        .bind(id)
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
