//! The fleet at a glance, for the operator console: each agent's newest stored score
//! (`fleet_agents`) and one score per agent and hour (`trust_hourly`), both kept in the
//! transaction that writes the agent's trust history (migration 0011).

use sqlx::Row;

use crate::trust::TrustPoint;
use crate::{Store, StoreError};

const HOUR_MS: i64 = 3_600_000;

/// An agent's newest stored score and when it was first and last scored.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetAgent {
    pub agent_id: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub score: f64,
    pub policy_adherence: f64,
    pub agent_reputation: f64,
    pub response_integrity: f64,
    pub risk_exposure: f64,
}

/// The newest score of one agent in one hour.
#[derive(Debug, Clone, PartialEq)]
pub struct HourlyScore {
    pub agent_id: String,
    /// Start of the hour (unix ms, a multiple of 3,600,000).
    pub hour_ms: i64,
    pub score: f64,
}

/// Keeps `fleet_agents` and `trust_hourly` in step with a trust point being written. A point
/// older than what is stored changes nothing (flushes of two replicas may arrive out of order).
pub(crate) async fn record_fleet_point(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    p: &TrustPoint,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO fleet_agents (tenant, agent_id, first_seen_ms, last_seen_ms, score, \
         policy_adherence, agent_reputation, response_integrity, risk_exposure) \
         VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (tenant, agent_id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms, \
         score = excluded.score, policy_adherence = excluded.policy_adherence, \
         agent_reputation = excluded.agent_reputation, \
         response_integrity = excluded.response_integrity, \
         risk_exposure = excluded.risk_exposure \
         WHERE fleet_agents.last_seen_ms <= excluded.last_seen_ms",
    )
    .bind(&p.tenant)
    .bind(&p.agent_id)
    .bind(p.at_ms)
    .bind(p.score)
    .bind(p.policy_adherence)
    .bind(p.agent_reputation)
    .bind(p.response_integrity)
    .bind(p.risk_exposure)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO trust_hourly (tenant, agent_id, hour_ms, at_ms, score) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant, agent_id, hour_ms) DO UPDATE SET at_ms = excluded.at_ms, \
         score = excluded.score WHERE trust_hourly.at_ms <= excluded.at_ms",
    )
    .bind(&p.tenant)
    .bind(&p.agent_id)
    .bind(p.at_ms.div_euclid(HOUR_MS) * HOUR_MS)
    .bind(p.at_ms)
    .bind(p.score)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// How many agents of the tenant have a stored score.
    pub async fn fleet_size(&self, tenant: &str) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM fleet_agents WHERE tenant = $1")
            .bind(tenant)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")?.max(0) as u64)
    }

    /// Up to `limit` agents of the tenant in id order, after `after` (exclusive) when given.
    pub async fn fleet_agents(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<FleetAgent>, StoreError> {
        let rows = sqlx::query(
            "SELECT agent_id, first_seen_ms, last_seen_ms, score, policy_adherence, \
             agent_reputation, response_integrity, risk_exposure FROM fleet_agents \
             WHERE tenant = $1 AND agent_id > $2 ORDER BY agent_id LIMIT $3",
        )
        .bind(tenant)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FleetAgent {
                    agent_id: r.try_get("agent_id")?,
                    first_seen_ms: r.try_get("first_seen_ms")?,
                    last_seen_ms: r.try_get("last_seen_ms")?,
                    score: r.try_get("score")?,
                    policy_adherence: r.try_get("policy_adherence")?,
                    agent_reputation: r.try_get("agent_reputation")?,
                    response_integrity: r.try_get("response_integrity")?,
                    risk_exposure: r.try_get("risk_exposure")?,
                })
            })
            .collect()
    }

    /// Hourly scores since `since_ms` of the agents whose ids lie in `first..=last`, by agent
    /// and then hour.
    pub async fn hourly_scores(
        &self,
        tenant: &str,
        first: &str,
        last: &str,
        since_ms: i64,
    ) -> Result<Vec<HourlyScore>, StoreError> {
        let rows = sqlx::query(
            "SELECT agent_id, hour_ms, score FROM trust_hourly \
             WHERE tenant = $1 AND agent_id >= $2 AND agent_id <= $3 AND hour_ms >= $4 \
             ORDER BY agent_id, hour_ms",
        )
        .bind(tenant)
        .bind(first)
        .bind(last)
        .bind(since_ms.div_euclid(HOUR_MS) * HOUR_MS)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HourlyScore {
                    agent_id: r.try_get("agent_id")?,
                    hour_ms: r.try_get("hour_ms")?,
                    score: r.try_get("score")?,
                })
            })
            .collect()
    }
}
