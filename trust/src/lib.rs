//! Mesh OS trust score: a live, explainable number per agent.
//!
//! TS = (Policy Adherence × Agent Reputation × Response Integrity) / Risk Exposure, on 0–100.
//! This crate owns the maths only: it takes an agent's recent decisions and events as plain
//! data and returns the score with each component and a sentence on why it has its value.
//! It must not read storage or clocks; callers pass `now_ms`.
//!
//! Every observation is weighted by `2^(-age / half_life)`, so old behaviour fades and an agent
//! can recover. Components:
//! - **Policy adherence (PA)**, 0–1: weighted share of the agent's policy decisions that let the
//!   action proceed (allow, redact, require_approval), with one compliant pseudo-observation so a
//!   single deny does not zero the score. 1 with no decisions.
//! - **Agent reputation (AR)**, 0–1: Jøsang's Beta reputation E = (r+1)/(r+s+2) over event
//!   outcomes; `ok` adds to r, `error` adds 1 to s and `violation` adds 3 (severity). A new agent
//!   starts at 0.5 and earns trust with good outcomes.
//! - **Response integrity (RI)**, 0–1: weighted pass rate of output-validation and eval events
//!   (kinds `output_validation`, `eval`), Laplace-smoothed; 1 (neutral) until any exist.
//! - **Risk exposure (RE)**, ≥ 1: 1 + 0.1 per personal-data class and 0.2 per credential class
//!   seen in the agent's content (capped at +1), + 0.25 per open incident.

mod event;
pub mod otlp;

use std::collections::BTreeSet;

pub use event::EventInput;

use meshos_types::{Outcome, Verdict};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One policy decision about the agent.
#[derive(Debug, Clone)]
pub struct DecisionSample {
    pub at_ms: i64,
    pub verdict: Verdict,
    /// Entity kinds found in the content of the request.
    pub finding_kinds: Vec<String>,
}

/// One event the agent reported (or that was observed about it).
#[derive(Debug, Clone)]
pub struct EventSample {
    pub at_ms: i64,
    pub kind: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Default)]
pub struct TrustInputs {
    pub decisions: Vec<DecisionSample>,
    pub events: Vec<EventSample>,
    pub open_incidents: u32,
    pub now_ms: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct TrustParams {
    /// Age at which an observation counts half.
    pub half_life_hours: f64,
    /// Scores below this breach the SLA.
    pub sla_threshold: f64,
}

impl Default for TrustParams {
    fn default() -> Self {
        TrustParams {
            half_life_hours: 24.0,
            sla_threshold: 70.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Components {
    /// Share of compliant policy decisions, recency-weighted (0–1).
    pub policy_adherence: f64,
    /// Beta reputation over event outcomes, recency-weighted (0–1).
    pub agent_reputation: f64,
    /// Pass rate of output validations and evals (0–1; 1 until any exist).
    pub response_integrity: f64,
    /// Risk multiplier from sensitive data touched and open incidents (≥ 1).
    pub risk_exposure: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Sla {
    pub threshold: f64,
    pub breached: bool,
}

/// How much evidence the score rests on.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Basis {
    pub decisions: usize,
    pub denied_decisions: usize,
    pub events: usize,
    pub error_events: usize,
    pub violation_events: usize,
    pub integrity_checks: usize,
    pub sensitive_data_classes: Vec<String>,
    pub open_incidents: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct TrustScore {
    /// 0–100.
    pub score: f64,
    pub components: Components,
    pub sla: Sla,
    pub basis: Basis,
    /// One sentence per component saying why it has its value.
    pub explanation: Vec<String>,
}

const INTEGRITY_KINDS: &[&str] = &["output_validation", "eval"];

fn weight(now_ms: i64, at_ms: i64, half_life_hours: f64) -> f64 {
    let age_hours = ((now_ms - at_ms).max(0) as f64) / 3_600_000.0;
    (-age_hours / half_life_hours.max(1e-9)).exp2()
}

/// Computes the trust score; pure and deterministic.
pub fn compute(inputs: &TrustInputs, params: &TrustParams) -> TrustScore {
    let w = |at| weight(inputs.now_ms, at, params.half_life_hours);

    // Policy adherence.
    let (mut compliant_w, mut total_w, mut denied) = (1.0, 1.0, 0usize);
    for d in &inputs.decisions {
        let wt = w(d.at_ms);
        total_w += wt;
        if d.verdict.is_compliant() {
            compliant_w += wt;
        } else {
            denied += 1;
        }
    }
    let pa = compliant_w / total_w;

    // Reputation and integrity.
    let (mut r, mut s) = (0.0, 0.0);
    let (mut pass_w, mut checks_w, mut checks) = (0.0, 0.0, 0usize);
    let (mut errors, mut violations) = (0usize, 0usize);
    for e in &inputs.events {
        let wt = w(e.at_ms);
        match e.outcome {
            Outcome::Ok => r += wt,
            Outcome::Error => {
                s += wt;
                errors += 1;
            }
            Outcome::Violation => {
                s += 3.0 * wt;
                violations += 1;
            }
        }
        if INTEGRITY_KINDS.contains(&e.kind.as_str()) {
            checks += 1;
            checks_w += wt;
            if e.outcome == Outcome::Ok {
                pass_w += wt;
            }
        }
    }
    let ar = (r + 1.0) / (r + s + 2.0);
    let ri = if checks == 0 {
        1.0
    } else {
        (pass_w + 1.0) / (checks_w + 2.0)
    };

    // Risk exposure.
    let classes: BTreeSet<String> = inputs
        .decisions
        .iter()
        .flat_map(|d| d.finding_kinds.iter().cloned())
        .collect();
    let data_risk: f64 = classes
        .iter()
        .map(|c| {
            if meshos_types::CREDENTIAL_ENTITIES.contains(&c.as_str()) {
                0.2
            } else {
                0.1
            }
        })
        .sum::<f64>()
        .min(1.0);
    let re = 1.0 + data_risk + 0.25 * f64::from(inputs.open_incidents);

    let score = (100.0 * pa * ar * ri / re).clamp(0.0, 100.0);
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    let explanation = vec![
        format!(
            "policy adherence {:.2}: {} of {} decisions denied (recency-weighted, half-life {} h)",
            pa,
            denied,
            inputs.decisions.len(),
            params.half_life_hours
        ),
        format!(
            "agent reputation {:.2}: Beta(r+1, s+1) mean over {} events ({} errors, {} violations weighted ×3)",
            ar,
            inputs.events.len(),
            errors,
            violations
        ),
        if checks == 0 {
            "response integrity 1.00: no output validations or evals yet (neutral)".to_string()
        } else {
            format!("response integrity {ri:.2}: pass rate over {checks} output validations/evals")
        },
        format!(
            "risk exposure {:.2}: sensitive data classes [{}], {} open incidents",
            re,
            classes.iter().cloned().collect::<Vec<_>>().join(", "),
            inputs.open_incidents
        ),
    ];
    TrustScore {
        score: round(score * 100.0) / 100.0,
        components: Components {
            policy_adherence: round(pa),
            agent_reputation: round(ar),
            response_integrity: round(ri),
            risk_exposure: round(re),
        },
        sla: Sla {
            threshold: params.sla_threshold,
            breached: score < params.sla_threshold,
        },
        basis: Basis {
            decisions: inputs.decisions.len(),
            denied_decisions: denied,
            events: inputs.events.len(),
            error_events: errors,
            violation_events: violations,
            integrity_checks: checks,
            sensitive_data_classes: classes.into_iter().collect(),
            open_incidents: inputs.open_incidents,
        },
        explanation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn events(n: usize, outcome: Outcome, at_ms: i64) -> Vec<EventSample> {
        (0..n)
            .map(|_| EventSample {
                at_ms,
                kind: "tool_call".into(),
                outcome,
            })
            .collect()
    }

    fn decisions(n: usize, verdict: Verdict) -> Vec<DecisionSample> {
        (0..n)
            .map(|_| DecisionSample {
                at_ms: NOW,
                verdict,
                finding_kinds: vec![],
            })
            .collect()
    }

    #[test]
    fn new_agent_starts_at_half_trust() {
        let t = compute(
            &TrustInputs {
                now_ms: NOW,
                ..Default::default()
            },
            &TrustParams::default(),
        );
        assert_eq!(t.score, 50.0);
        assert!(t.sla.breached);
    }

    #[test]
    fn good_history_earns_trust_and_violations_cost_more_than_errors() {
        let p = TrustParams::default();
        let good = compute(
            &TrustInputs {
                events: events(40, Outcome::Ok, NOW),
                now_ms: NOW,
                ..Default::default()
            },
            &p,
        );
        assert!(good.score > 90.0, "{good:?}");
        let mut with_errors = events(40, Outcome::Ok, NOW);
        with_errors.extend(events(4, Outcome::Error, NOW));
        let mut with_violations = events(40, Outcome::Ok, NOW);
        with_violations.extend(events(4, Outcome::Violation, NOW));
        let e = compute(
            &TrustInputs {
                events: with_errors,
                now_ms: NOW,
                ..Default::default()
            },
            &p,
        );
        let v = compute(
            &TrustInputs {
                events: with_violations,
                now_ms: NOW,
                ..Default::default()
            },
            &p,
        );
        assert!(
            good.score > e.score && e.score > v.score,
            "{} {} {}",
            good.score,
            e.score,
            v.score
        );
    }

    #[test]
    fn denials_lower_adherence_and_old_denials_fade() {
        let p = TrustParams::default();
        let mut ds = decisions(5, Verdict::Allow);
        ds.extend(decisions(5, Verdict::Deny));
        let fresh = compute(
            &TrustInputs {
                decisions: ds.clone(),
                now_ms: NOW,
                ..Default::default()
            },
            &p,
        );
        assert!((fresh.components.policy_adherence - 6.0 / 11.0).abs() < 1e-4);
        let week = 7 * 24 * 3_600_000;
        for d in ds.iter_mut().filter(|d| d.verdict == Verdict::Deny) {
            d.at_ms = NOW - week;
        }
        let faded = compute(
            &TrustInputs {
                decisions: ds,
                now_ms: NOW,
                ..Default::default()
            },
            &p,
        );
        assert!(faded.components.policy_adherence > 0.95, "{faded:?}");
    }

    #[test]
    fn sensitive_data_and_incidents_raise_risk() {
        let p = TrustParams::default();
        let d = DecisionSample {
            at_ms: NOW,
            verdict: Verdict::Redact,
            finding_kinds: vec!["EMAIL".into(), "AWS_ACCESS_KEY".into()],
        };
        let t = compute(
            &TrustInputs {
                decisions: vec![d],
                open_incidents: 1,
                now_ms: NOW,
                ..Default::default()
            },
            &p,
        );
        assert!((t.components.risk_exposure - 1.55).abs() < 1e-9);
        assert_eq!(
            t.basis.sensitive_data_classes,
            vec!["AWS_ACCESS_KEY", "EMAIL"]
        );
    }

    #[test]
    fn failed_evals_lower_integrity() {
        let mut evs = events(10, Outcome::Ok, NOW);
        evs.extend((0..10).map(|i| EventSample {
            at_ms: NOW,
            kind: "eval".into(),
            outcome: if i < 3 { Outcome::Ok } else { Outcome::Error },
        }));
        let t = compute(
            &TrustInputs {
                events: evs,
                now_ms: NOW,
                ..Default::default()
            },
            &TrustParams::default(),
        );
        assert!((t.components.response_integrity - 4.0 / 12.0).abs() < 1e-4);
    }
}
