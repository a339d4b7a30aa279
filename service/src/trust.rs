//! `trust_score` and alerts: an agent's live score with its explanation, its trend, drift signals and SLA alerts.

use meshos_types::{DriftSignal, Principal, Role, SlaAlert, now_ms, rfc3339_ms};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::mesh::{Mesh, MeshError, check_id};

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustScoreInput {
    /// The agent whose trust score to compute.
    pub agent_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TrustScoreOutput {
    pub agent_id: String,
    /// TS = 100 × (PA × AR × RI) / RE, clamped to 0–100.
    pub score: f64,
    pub components: meshos_trust::Components,
    pub sla: meshos_trust::Sla,
    /// The observations the score rests on.
    pub basis: meshos_trust::Basis,
    /// Why each component has its value.
    pub explanation: Vec<String>,
    /// How the score moved: stored points of the last 24 h and the change over 1 h and 24 h.
    pub trend: TrustTrend,
    /// The agent's most recent drift signals, newest first.
    pub drift_signals: Vec<DriftSignal>,
    /// Time of the newest observation behind the score (RFC 3339).
    pub updated_at: String,
}

/// One stored score.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct TrendPoint {
    /// RFC 3339.
    pub at: String,
    pub score: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct TrustTrend {
    /// `rising`, `falling` or `steady` (within one point) over the last hour.
    pub direction: String,
    /// Score now minus the score an hour ago (absent without history that old).
    pub change_1h: Option<f64>,
    /// Score now minus the score 24 hours ago (absent without history that old).
    pub change_24h: Option<f64>,
    /// Up to 48 stored points of the last 24 h, oldest first, evenly thinned.
    pub points: Vec<TrendPoint>,
}

const TREND_WINDOW_MS: i64 = 24 * 3_600_000;

const RECENT_SIGNALS: u32 = 5;

const TREND_POINTS: usize = 48;

/// The trend of a score from its stored history (oldest first) and its value now.
pub fn trust_trend(
    history: &[meshos_store::TrustPoint],
    now_score: f64,
    now_ms: i64,
) -> TrustTrend {
    let round = |x: f64| (x * 100.0).round() / 100.0;
    // The newest stored point at or before `ago`: the score as it stood then.
    let change_since = |ago_ms: i64| {
        let cutoff = now_ms - ago_ms;
        history
            .iter()
            .rev()
            .find(|p| p.at_ms <= cutoff)
            .map(|p| round(now_score - p.score))
    };
    let change_1h = change_since(3_600_000);
    let change_24h = change_since(TREND_WINDOW_MS);
    // Without a point an hour old, compare with the oldest point there is.
    let hour_delta = change_1h.or_else(|| history.first().map(|p| round(now_score - p.score)));
    let direction = match hour_delta {
        Some(d) if d > 1.0 => "rising",
        Some(d) if d < -1.0 => "falling",
        _ => "steady",
    };
    let step = history.len().div_ceil(TREND_POINTS).max(1);
    let mut points: Vec<TrendPoint> = history
        .iter()
        .rev()
        .step_by(step)
        .map(|p| TrendPoint {
            at: rfc3339_ms(p.at_ms),
            score: p.score,
        })
        .collect();
    points.reverse();
    TrustTrend {
        direction: direction.to_string(),
        change_1h,
        change_24h,
        points,
    }
}

impl Mesh {
    pub async fn trust_score(
        &self,
        principal: &Principal,
        agent_id: &str,
    ) -> Result<TrustScoreOutput, MeshError> {
        check_id("agent_id", agent_id)?;
        principal
            .may_read_agent(agent_id)
            .map_err(|e| MeshError::Forbidden(e.to_string()))?;
        let unknown = || {
            MeshError::NotFound(format!(
                "unknown agent_id {agent_id:?}: this tenant has no events or decisions for it; \
                 expected an agent that has called record_event or policy_check"
            ))
        };
        if !self.store.agent_known(&principal.tenant, agent_id).await? {
            return Err(unknown());
        }
        let team = self
            .bundle
            .current()
            .placement(agent_id)
            .team
            .map(str::to_string);
        let (t, newest) = self
            .live
            .score_now(&principal.tenant, agent_id, team.as_deref())
            .await?
            .ok_or_else(unknown)?;
        let now = now_ms();
        let history = self
            .store
            .trust_history(&principal.tenant, agent_id, now - TREND_WINDOW_MS, 5_000)
            .await?;
        let signals = self
            .store
            .drift_signals(&principal.tenant, Some(agent_id), RECENT_SIGNALS)
            .await?;
        Ok(TrustScoreOutput {
            agent_id: agent_id.to_string(),
            score: t.score,
            trend: trust_trend(&history, t.score, now),
            components: t.components,
            sla: t.sla,
            basis: t.basis,
            explanation: t.explanation,
            drift_signals: signals,
            updated_at: rfc3339_ms(if newest > 0 { newest } else { now }),
        })
    }

    /// The tenant's most recent SLA alerts with their webhook outcomes (not for agent tokens).
    pub async fn alerts(&self, principal: &Principal) -> Result<Vec<SlaAlert>, MeshError> {
        if principal.role == Role::Agent {
            return Err(MeshError::Forbidden(
                "agent tokens cannot list the tenant's alerts; expected an operator, auditor or admin token"
                    .into(),
            ));
        }
        Ok(self.store.alerts(&principal.tenant, None, 100).await?)
    }
}
