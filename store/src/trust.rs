//! Trust telemetry state that must outlive the process: score history (for trends), drift
//! signals (for the healer) and SLA alerts (with their webhook delivery outcomes). The maths
//! lives in `meshos-trust`; this module stores and reads plain rows, tenant-scoped.

use sqlx::Row;
use sqlx::any::AnyRow;

use meshos_types::{DriftSignal, SlaAlert};

use crate::{Store, StoreError, corrupt};

/// One stored trust score of an agent at an instant, with the components behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustPoint {
    pub tenant: String,
    pub agent_id: String,
    pub at_ms: i64,
    pub score: f64,
    pub policy_adherence: f64,
    pub agent_reputation: f64,
    pub response_integrity: f64,
    pub risk_exposure: f64,
}

/// A stored drift signal: the one [`DriftSignal`] type (the name stays for callers).
pub type StoredSignal = DriftSignal;

/// A stored SLA alert: the one [`SlaAlert`] type (the name stays for callers).
pub type StoredAlert = SlaAlert;

fn signal_from_row(row: &AnyRow) -> Result<StoredSignal, StoreError> {
    let samples: i64 = row.try_get("samples")?;
    Ok(StoredSignal {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        agent_id: row.try_get("agent_id")?,
        metric: row.try_get("metric")?,
        detector: row.try_get("detector")?,
        direction: row.try_get("direction")?,
        baseline_mean: row.try_get("baseline_mean")?,
        baseline_sd: row.try_get("baseline_sd")?,
        observed_mean: row.try_get("observed_mean")?,
        shift_sigmas: row.try_get("shift_sigmas")?,
        samples: u64::try_from(samples).map_err(|e| corrupt("drift signal samples", e))?,
        explanation: row.try_get("explanation")?,
        at_ms: row.try_get("at_ms")?,
        consumed_at_ms: row.try_get("consumed_at_ms")?,
    })
}

fn alert_from_row(row: &AnyRow) -> Result<StoredAlert, StoreError> {
    let deliveries: String = row.try_get("deliveries")?;
    Ok(StoredAlert {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        agent_id: row.try_get("agent_id")?,
        kind: row.try_get("kind")?,
        score: row.try_get("score")?,
        threshold: row.try_get("threshold")?,
        scope: row.try_get("scope")?,
        at_ms: row.try_get("at_ms")?,
        deliveries: serde_json::from_str(&deliveries)
            .map_err(|e| corrupt("alert deliveries", e))?,
    })
}

const SIGNAL_COLUMNS: &str = "id, tenant, agent_id, metric, detector, direction, baseline_mean, \
     baseline_sd, observed_mean, shift_sigmas, samples, explanation, at_ms, consumed_at_ms";

impl Store {
    /// Stores score points in one transaction; a second point for the same agent and
    /// millisecond replaces the first (the later flush saw more events).
    pub async fn insert_trust_points(&self, points: &[TrustPoint]) -> Result<(), StoreError> {
        if points.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for p in points {
            sqlx::query(
                "INSERT INTO trust_history (tenant, agent_id, at_ms, score, policy_adherence, \
                 agent_reputation, response_integrity, risk_exposure) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (tenant, agent_id, at_ms) DO UPDATE SET score = excluded.score, \
                 policy_adherence = excluded.policy_adherence, \
                 agent_reputation = excluded.agent_reputation, \
                 response_integrity = excluded.response_integrity, \
                 risk_exposure = excluded.risk_exposure",
            )
            .bind(&p.tenant)
            .bind(&p.agent_id)
            .bind(p.at_ms)
            .bind(p.score)
            .bind(p.policy_adherence)
            .bind(p.agent_reputation)
            .bind(p.response_integrity)
            .bind(p.risk_exposure)
            .execute(&mut *tx)
            .await?;
            crate::fleet::record_fleet_point(&mut tx, p).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The agent's score points at or after `since_ms`, oldest first, at most `limit` (the
    /// newest ones when there are more).
    pub async fn trust_history(
        &self,
        tenant: &str,
        agent_id: &str,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<TrustPoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant, agent_id, at_ms, score, policy_adherence, agent_reputation, \
             response_integrity, risk_exposure FROM trust_history \
             WHERE tenant = $1 AND agent_id = $2 AND at_ms >= $3 \
             ORDER BY at_ms DESC LIMIT $4",
        )
        .bind(tenant)
        .bind(agent_id)
        .bind(since_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut points = rows
            .iter()
            .map(|row| {
                Ok(TrustPoint {
                    tenant: row.try_get("tenant")?,
                    agent_id: row.try_get("agent_id")?,
                    at_ms: row.try_get("at_ms")?,
                    score: row.try_get("score")?,
                    policy_adherence: row.try_get("policy_adherence")?,
                    agent_reputation: row.try_get("agent_reputation")?,
                    response_integrity: row.try_get("response_integrity")?,
                    risk_exposure: row.try_get("risk_exposure")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        points.reverse();
        Ok(points)
    }

    pub async fn insert_drift_signals(&self, signals: &[StoredSignal]) -> Result<(), StoreError> {
        if signals.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for s in signals {
            sqlx::query(
                "INSERT INTO drift_signals (id, tenant, agent_id, metric, detector, direction, \
                 baseline_mean, baseline_sd, observed_mean, shift_sigmas, samples, explanation, \
                 at_ms, consumed_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(&s.id)
            .bind(&s.tenant)
            .bind(&s.agent_id)
            .bind(&s.metric)
            .bind(&s.detector)
            .bind(&s.direction)
            .bind(s.baseline_mean)
            .bind(s.baseline_sd)
            .bind(s.observed_mean)
            .bind(s.shift_sigmas)
            .bind(i64::try_from(s.samples).unwrap_or(i64::MAX))
            .bind(&s.explanation)
            .bind(s.at_ms)
            .bind(s.consumed_at_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's drift signals (of one agent, or all), newest first.
    pub async fn drift_signals(
        &self,
        tenant: &str,
        agent_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredSignal>, StoreError> {
        let rows = match agent_id {
            Some(agent) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {SIGNAL_COLUMNS} FROM drift_signals WHERE tenant = $1 AND agent_id = $2 \
                     ORDER BY at_ms DESC, id DESC LIMIT $3"
            )))
            .bind(tenant)
            .bind(agent)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?,
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {SIGNAL_COLUMNS} FROM drift_signals WHERE tenant = $1 \
                     ORDER BY at_ms DESC, id DESC LIMIT $2"
                )))
                .bind(tenant)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(signal_from_row).collect()
    }

    /// Signals of every tenant that no consumer has taken yet, oldest first: the healer's inbox.
    pub async fn unconsumed_drift_signals(
        &self,
        limit: u32,
    ) -> Result<Vec<StoredSignal>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SIGNAL_COLUMNS} FROM drift_signals WHERE consumed_at_ms IS NULL \
             ORDER BY at_ms, id LIMIT $1"
        )))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(signal_from_row).collect()
    }

    /// Marks a signal consumed; returns false if it was already consumed (or does not exist),
    /// so two consumers never both act on it.
    pub async fn consume_drift_signal(&self, id: &str, at_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE drift_signals SET consumed_at_ms = $1 WHERE id = $2 AND consumed_at_ms IS NULL",
        )
        .bind(at_ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_alert(&self, alert: &StoredAlert) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO trust_alerts (id, tenant, agent_id, kind, score, threshold, scope, at_ms, \
             deliveries) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&alert.id)
        .bind(&alert.tenant)
        .bind(&alert.agent_id)
        .bind(&alert.kind)
        .bind(alert.score)
        .bind(alert.threshold)
        .bind(&alert.scope)
        .bind(alert.at_ms)
        .bind(alert.deliveries.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records how the alert's webhook deliveries went.
    pub async fn set_alert_deliveries(
        &self,
        tenant: &str,
        id: &str,
        deliveries: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE trust_alerts SET deliveries = $1 WHERE tenant = $2 AND id = $3")
            .bind(deliveries.to_string())
            .bind(tenant)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The tenant's alerts (of one agent, or all), newest first.
    pub async fn alerts(
        &self,
        tenant: &str,
        agent_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        const COLUMNS: &str =
            "id, tenant, agent_id, kind, score, threshold, scope, at_ms, deliveries";
        let rows = match agent_id {
            Some(agent) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM trust_alerts WHERE tenant = $1 AND agent_id = $2 \
                     ORDER BY at_ms DESC, id DESC LIMIT $3"
                )))
                .bind(tenant)
                .bind(agent)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM trust_alerts WHERE tenant = $1 \
                     ORDER BY at_ms DESC, id DESC LIMIT $2"
                )))
                .bind(tenant)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(alert_from_row).collect()
    }
}
