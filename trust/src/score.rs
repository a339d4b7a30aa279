//! The trust score's state and maths: [`AgentTrust`] folds one observation at a time into
//! exponentially decayed sums (O(1) per event, O(log n) per decision for its action and data
//! classes) and [`AgentTrust::score`] turns them into a [`TrustScore`]. Pure: no clock, no I/O;
//! callers pass every timestamp. The definitions and their reasons are in the crate doc and
//! `docs/trust.md`.

use std::collections::BTreeMap;
use std::sync::Arc;

use meshos_types::{Outcome, Verdict};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use statrs::distribution::{Beta, ContinuousCDF};

/// One policy decision about the agent.
#[derive(Debug, Clone)]
pub struct DecisionSample {
    pub at_ms: i64,
    pub verdict: Verdict,
    /// Entity kinds found in the content of the request.
    pub finding_kinds: Vec<String>,
    /// The action the agent asked to perform (e.g. `payments.refund`); empty if unknown.
    pub action: String,
}

/// One event the agent reported (or that was observed about it).
#[derive(Debug, Clone)]
pub struct EventSample {
    pub at_ms: i64,
    pub kind: String,
    pub outcome: Outcome,
    pub latency_ms: Option<f64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Clone, Default)]
pub struct TrustInputs {
    pub decisions: Vec<DecisionSample>,
    pub events: Vec<EventSample>,
    pub open_incidents: u32,
    pub now_ms: i64,
}

/// Tuning of the score. The same parameters must be passed to every call on one [`AgentTrust`]:
/// its sums are kept in units of the half-life they were decayed with.
#[derive(Debug, Clone)]
pub struct TrustParams {
    /// Age at which an observation counts half.
    pub half_life_hours: f64,
    /// Scores below this breach the SLA.
    pub sla_threshold: f64,
    /// AR is this lower quantile of Beta(r+1, s+1) (0 < q < 1; 0.1 by default).
    pub reputation_quantile: f64,
    /// Normal quantile of the Wilson bound on the integrity pass rate (1.96: 97.5 % one-sided).
    pub integrity_z: f64,
    /// Pseudo-passes that stand for the neutral prior of response integrity.
    pub integrity_prior_passes: f64,
    /// Actions allowed and data classes seen within this many hours count toward risk exposure.
    pub exposure_window_hours: f64,
    /// Actions starting with one of these are privileged and weigh more in risk exposure.
    pub privileged_action_prefixes: Vec<String>,
}

impl Default for TrustParams {
    fn default() -> Self {
        TrustParams {
            half_life_hours: 24.0,
            sla_threshold: 70.0,
            reputation_quantile: 0.1,
            integrity_z: 1.96,
            integrity_prior_passes: 4.0,
            exposure_window_hours: 168.0,
            privileged_action_prefixes: [
                "payments.",
                "db.write",
                "db.delete",
                "iam.",
                "shell.",
                "deploy.",
                "secrets.",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        }
    }
}

/// A [`TrustParams`] value outside its meaningful range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid trust parameter {field} = {value}: expected {expected}")]
pub struct TrustParamsError {
    pub field: &'static str,
    pub value: f64,
    pub expected: &'static str,
}

impl TrustParams {
    /// Checks every field; the maths never panics on bad values, but it cannot mean anything
    /// with them either, so configuration should be rejected up front.
    pub fn validate(&self) -> Result<(), TrustParamsError> {
        let check = |field, value: f64, ok: bool, expected| {
            if ok {
                Ok(())
            } else {
                Err(TrustParamsError {
                    field,
                    value,
                    expected,
                })
            }
        };
        let positive = |v: f64| v.is_finite() && v > 0.0;
        check(
            "half_life_hours",
            self.half_life_hours,
            positive(self.half_life_hours),
            "a finite number of hours > 0",
        )?;
        check(
            "sla_threshold",
            self.sla_threshold,
            (0.0..=100.0).contains(&self.sla_threshold),
            "a score between 0 and 100",
        )?;
        check(
            "reputation_quantile",
            self.reputation_quantile,
            self.reputation_quantile > 0.0 && self.reputation_quantile < 1.0,
            "a probability strictly between 0 and 1",
        )?;
        check(
            "integrity_z",
            self.integrity_z,
            positive(self.integrity_z),
            "a normal quantile > 0, e.g. 1.96",
        )?;
        check(
            "integrity_prior_passes",
            self.integrity_prior_passes,
            self.integrity_prior_passes.is_finite() && self.integrity_prior_passes >= 0.0,
            "a pseudo-count >= 0",
        )?;
        check(
            "exposure_window_hours",
            self.exposure_window_hours,
            positive(self.exposure_window_hours),
            "a finite number of hours > 0",
        )
    }

    /// How many good outcomes (at the time of scoring, no bad ones) a new agent needs before
    /// its score can reach the SLA threshold when every other component is perfect. `None`
    /// when no number of outcomes suffices (threshold 100).
    pub fn good_outcomes_to_clear_sla(&self) -> Option<u32> {
        let target = self.sla_threshold / 100.0;
        if target <= 0.0 {
            return Some(0);
        }
        if target >= 1.0 {
            return None;
        }
        // With s = 0, Beta(n+1, 1) has CDF x^(n+1), so its q-quantile is q^(1/(n+1)).
        let needed = self.reputation_quantile.ln() / target.ln() - 1.0;
        let mut n = needed.ceil().max(0.0) as u32;
        // Guard the float edge where `needed` is an integer computed slightly off.
        while n > 0 && self.reputation_quantile.powf(1.0 / f64::from(n)) >= target {
            n -= 1;
        }
        Some(n)
    }

    fn half_life_ms(&self) -> f64 {
        let h = self.half_life_hours * 3_600_000.0;
        if h > 0.0 { h } else { 1e-9 }
    }

    fn is_privileged(&self, action: &str) -> bool {
        self.privileged_action_prefixes
            .iter()
            .any(|p| !p.is_empty() && action.starts_with(p.as_str()))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Components {
    /// Share of compliant policy decisions, recency-weighted (0–1).
    pub policy_adherence: f64,
    /// Lower quantile of the Beta reputation over event outcomes, recency-weighted (0–1).
    pub agent_reputation: f64,
    /// Wilson lower bound of the integrity pass rate against a flawless record (0–1; 1 until
    /// any exist).
    pub response_integrity: f64,
    /// Risk multiplier from privileges, sensitive data touched and open incidents (≥ 1).
    pub risk_exposure: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Sla {
    pub threshold: f64,
    pub breached: bool,
    /// The reputation rests on less (decayed) evidence than a flawless new agent needs to clear
    /// the threshold: a breach now says "not yet trusted", not "misbehaving". Alerting should
    /// wait until this is false.
    pub provisional: bool,
}

/// How much evidence the score rests on. Counts are of everything folded in (not decayed).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Basis {
    pub decisions: usize,
    pub denied_decisions: usize,
    pub events: usize,
    pub error_events: usize,
    pub violation_events: usize,
    pub integrity_checks: usize,
    /// Data classes seen in the agent's content within the exposure window.
    pub sensitive_data_classes: Vec<String>,
    pub open_incidents: u32,
}

/// The numbers behind each component, for explanations and dashboards.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ScoreDetails {
    /// Decayed weight of all decisions (without the compliant pseudo-observation).
    pub decision_weight: f64,
    /// Decayed weight of compliant decisions.
    pub compliant_weight: f64,
    /// r: decayed count of good outcomes.
    pub good_outcome_weight: f64,
    /// s: decayed, severity-weighted count of bad outcomes (error 1, violation 3).
    pub bad_outcome_weight: f64,
    /// Mean of Beta(r+1, s+1), Jøsang's reputation expectation.
    pub reputation_mean: f64,
    /// The q used for AR.
    pub reputation_quantile: f64,
    /// Decayed weight of output validations and evals.
    pub integrity_check_weight: f64,
    /// Decayed weight of those that passed.
    pub integrity_pass_weight: f64,
    /// Raw decayed pass rate; absent until any check exists.
    pub integrity_pass_rate: Option<f64>,
    /// Wilson lower bound of the pass rate including the prior pseudo-passes; absent until
    /// any check exists.
    pub integrity_wilson_lower: Option<f64>,
    /// RE's privilege part (capped at 0.3).
    pub risk_privileges: f64,
    /// RE's data part (capped at 1.0).
    pub risk_data: f64,
    /// RE's incident part (capped at 1.0).
    pub risk_incidents: f64,
    /// Actions allowed within the exposure window.
    pub allowed_actions: Vec<String>,
    /// The privileged ones among them.
    pub privileged_actions: Vec<String>,
    /// Good outcomes a new agent needs to clear the SLA with all else perfect.
    pub good_outcomes_to_clear_sla: Option<u32>,
}

/// The numbers of a score without its explanation (unrounded).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ScoreSummary {
    pub score: f64,
    pub components: Components,
    pub sla: Sla,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct TrustScore {
    /// 0–100.
    pub score: f64,
    pub components: Components,
    pub sla: Sla,
    pub basis: Basis,
    pub details: ScoreDetails,
    /// One sentence per component saying why it has its value.
    pub explanation: Vec<String>,
}

const INTEGRITY_KINDS: &[&str] = &["output_validation", "eval"];
const ERROR_SEVERITY: f64 = 1.0;
const VIOLATION_SEVERITY: f64 = 3.0;
const ACTION_RISK: f64 = 0.01;
const PRIVILEGED_ACTION_RISK: f64 = 0.05;
const PRIVILEGE_RISK_CAP: f64 = 0.3;
const PII_CLASS_RISK: f64 = 0.1;
const CREDENTIAL_CLASS_RISK: f64 = 0.2;
const DATA_RISK_CAP: f64 = 1.0;
const INCIDENT_RISK: f64 = 0.25;
const INCIDENT_RISK_CAP: f64 = 1.0;
/// Distinct actions / data classes remembered per agent. Past 30 actions the privilege part is
/// at its cap whatever they are, so forgetting the oldest beyond this costs nothing real.
const MAX_TRACKED_NAMES: usize = 64;

/// When a name (action or data class) was last seen, and how much it weighs.
#[derive(Debug, Clone, Copy)]
struct Seen {
    last_ms: i64,
    risk: f64,
}

/// The live trust state of one agent: decayed sums valued at `reference_ms`, plus the recent
/// actions and data classes. Cheap to clone (a few numbers and two small maps of shared names).
#[derive(Clone, Debug, Default)]
pub struct AgentTrust {
    /// Time every decayed sum below refers to; `None` before the first observation.
    reference_ms: Option<i64>,
    compliant_w: f64,
    decision_w: f64,
    good_w: f64,
    bad_w: f64,
    check_w: f64,
    pass_w: f64,
    decisions: usize,
    denied: usize,
    events: usize,
    errors: usize,
    violations: usize,
    checks: usize,
    actions: BTreeMap<Arc<str>, Seen>,
    data_classes: BTreeMap<Arc<str>, Seen>,
}

/// Raw (unrounded) values of a score; the public [`TrustScore`] is built from these.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RawScore {
    pub score: f64,
    pub pa: f64,
    pub ar: f64,
    pub ar_mean: f64,
    pub ri: f64,
    pub re: f64,
}

impl AgentTrust {
    pub fn new() -> AgentTrust {
        AgentTrust::default()
    }

    /// The weight of an observation at `at_ms`, advancing the reference time (and decaying
    /// every sum) when it is newer. Older observations are discounted to the reference time
    /// instead, which is the same weight they would have had in order.
    fn weigh(&mut self, at_ms: i64, p: &TrustParams) -> f64 {
        let hl = p.half_life_ms();
        match self.reference_ms {
            None => {
                self.reference_ms = Some(at_ms);
                1.0
            }
            Some(r) if at_ms > r => {
                let f = (-(at_ms.saturating_sub(r) as f64) / hl).exp2();
                self.compliant_w *= f;
                self.decision_w *= f;
                self.good_w *= f;
                self.bad_w *= f;
                self.check_w *= f;
                self.pass_w *= f;
                self.reference_ms = Some(at_ms);
                1.0
            }
            Some(r) => (-(r.saturating_sub(at_ms) as f64) / hl).exp2(),
        }
    }

    pub fn observe_decision(&mut self, d: &DecisionSample, p: &TrustParams) {
        let w = self.weigh(d.at_ms, p);
        self.decisions += 1;
        self.decision_w += w;
        if d.verdict.is_compliant() {
            self.compliant_w += w;
            if !d.action.is_empty() {
                let risk = if p.is_privileged(&d.action) {
                    PRIVILEGED_ACTION_RISK
                } else {
                    ACTION_RISK
                };
                remember(&mut self.actions, &d.action, d.at_ms, risk);
            }
        } else {
            self.denied += 1;
        }
        for kind in &d.finding_kinds {
            let risk = if meshos_types::CREDENTIAL_ENTITIES.contains(&kind.as_str()) {
                CREDENTIAL_CLASS_RISK
            } else {
                PII_CLASS_RISK
            };
            remember(&mut self.data_classes, kind, d.at_ms, risk);
        }
    }

    pub fn observe_event(&mut self, e: &EventSample, p: &TrustParams) {
        let w = self.weigh(e.at_ms, p);
        self.events += 1;
        match e.outcome {
            Outcome::Ok => self.good_w += w,
            Outcome::Error => {
                self.bad_w += ERROR_SEVERITY * w;
                self.errors += 1;
            }
            Outcome::Violation => {
                self.bad_w += VIOLATION_SEVERITY * w;
                self.violations += 1;
            }
        }
        if INTEGRITY_KINDS.contains(&e.kind.as_str()) {
            self.checks += 1;
            self.check_w += w;
            if e.outcome == Outcome::Ok {
                self.pass_w += w;
            }
        }
    }

    /// The time the score is evaluated at: `now_ms`, or the newest observation when a skewed
    /// clock put that in the future (so nothing ever weighs more than 1).
    fn eval_ms(&self, now_ms: i64) -> i64 {
        self.reference_ms.map_or(now_ms, |r| r.max(now_ms))
    }

    fn decay_to(&self, eval_ms: i64, p: &TrustParams) -> f64 {
        self.reference_ms.map_or(1.0, |r| {
            (-(eval_ms.saturating_sub(r) as f64) / p.half_life_ms()).exp2()
        })
    }

    pub(crate) fn raw(&self, open_incidents: u32, now_ms: i64, p: &TrustParams) -> RawScore {
        let eval_ms = self.eval_ms(now_ms);
        let f = self.decay_to(eval_ms, p);
        let pa = policy_adherence(self.compliant_w * f, self.decision_w * f);
        let (r, s) = (self.good_w * f, self.bad_w * f);
        let ar = reputation_lower_quantile(r, s, p.reputation_quantile);
        let ri = response_integrity(self.pass_w * f, self.check_w * f, p);
        let re = 1.0
            + self.privilege_risk(eval_ms, p).0
            + self.data_risk(eval_ms, p).0
            + incident_risk(open_incidents);
        RawScore {
            score: (100.0 * pa * ar * ri / re).clamp(0.0, 100.0),
            pa,
            ar,
            ar_mean: (r + 1.0) / (r + s + 2.0),
            ri,
            re,
        }
    }

    fn privilege_risk(&self, eval_ms: i64, p: &TrustParams) -> (f64, Vec<&str>) {
        windowed_risk(&self.actions, eval_ms, p, PRIVILEGE_RISK_CAP)
    }

    fn data_risk(&self, eval_ms: i64, p: &TrustParams) -> (f64, Vec<&str>) {
        windowed_risk(&self.data_classes, eval_ms, p, DATA_RISK_CAP)
    }

    /// The score, its components and SLA state without the explanation, details and basis:
    /// no allocation and no string formatting, for per-event gauges and SLA checks.
    pub fn summary(&self, open_incidents: u32, now_ms: i64, p: &TrustParams) -> ScoreSummary {
        let raw = self.raw(open_incidents, now_ms, p);
        let f = self.decay_to(self.eval_ms(now_ms), p);
        ScoreSummary {
            score: raw.score,
            components: Components {
                policy_adherence: raw.pa,
                agent_reputation: raw.ar,
                response_integrity: raw.ri,
                risk_exposure: raw.re,
            },
            sla: Sla {
                threshold: p.sla_threshold,
                breached: raw.score < p.sla_threshold,
                provisional: p
                    .good_outcomes_to_clear_sla()
                    .is_some_and(|n| (self.good_w + self.bad_w) * f < f64::from(n)),
            },
        }
    }

    /// The score at `now_ms`. Costs one Beta inverse CDF (iterative) unless the agent has no
    /// good or no bad outcomes, where the quantile has a closed form.
    pub fn score(&self, open_incidents: u32, now_ms: i64, p: &TrustParams) -> TrustScore {
        let raw = self.raw(open_incidents, now_ms, p);
        let eval_ms = self.eval_ms(now_ms);
        let f = self.decay_to(eval_ms, p);
        let (decision_w, compliant_w) = (self.decision_w * f, self.compliant_w * f);
        let (r, s) = (self.good_w * f, self.bad_w * f);
        let (check_w, pass_w) = (self.check_w * f, self.pass_w * f);
        let (risk_privileges, actions) = self.privilege_risk(eval_ms, p);
        let (risk_data, classes) = self.data_risk(eval_ms, p);
        let risk_incidents = incident_risk(open_incidents);
        let privileged: Vec<String> = actions
            .iter()
            .filter(|a| p.is_privileged(a))
            .map(|a| a.to_string())
            .collect();
        let to_clear = p.good_outcomes_to_clear_sla();
        let provisional = to_clear.is_some_and(|n| r + s < f64::from(n));
        let (pass_rate, wilson) = if check_w > 0.0 {
            (
                Some(pass_w / check_w),
                Some(wilson_lower(
                    pass_w + p.integrity_prior_passes,
                    check_w + p.integrity_prior_passes,
                    p.integrity_z,
                )),
            )
        } else {
            (None, None)
        };

        let explanation = vec![
            format!(
                "policy adherence {:.2}: {} of {} decisions denied; compliant weight {:.2} of {:.2} \
                 (recency-weighted, half-life {} h, plus one compliant pseudo-decision)",
                raw.pa, self.denied, self.decisions, compliant_w, decision_w, p.half_life_hours
            ),
            format!(
                "agent reputation {:.2}: the {:.0}% lower quantile of Beta(r+1, s+1) with r = {:.2} \
                 good outcomes and s = {:.2} bad (from {} errors ×1 and {} violations ×3, \
                 recency-weighted); mean {:.2}{}",
                raw.ar,
                p.reputation_quantile * 100.0,
                r,
                s,
                self.errors,
                self.violations,
                raw.ar_mean,
                match to_clear {
                    Some(n) if provisional => format!(
                        "; provisional: fewer than {n} outcomes of evidence, \
                         not yet trusted"
                    ),
                    _ => String::new(),
                }
            ),
            match (pass_rate, wilson) {
                (Some(rate), Some(w)) => format!(
                    "response integrity {:.2}: pass rate {:.2} over {} output validations/evals \
                     (weight {:.2}); Wilson lower bound (z = {}) with {} neutral pseudo-passes \
                     {:.2}, relative to a flawless record of the same size",
                    raw.ri, rate, self.checks, check_w, p.integrity_z, p.integrity_prior_passes, w
                ),
                _ => "response integrity 1.00: no output validations or evals yet (neutral)"
                    .to_string(),
            },
            format!(
                "risk exposure {:.2}: privileges +{:.2} ({} actions allowed in the last {} h, \
                 privileged: [{}]), data +{:.2} (classes [{}]), incidents +{:.2} ({} open)",
                raw.re,
                risk_privileges,
                actions.len(),
                p.exposure_window_hours,
                privileged.join(", "),
                risk_data,
                classes.join(", "),
                risk_incidents,
                open_incidents
            ),
        ];
        let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
        TrustScore {
            score: (raw.score * 100.0).round() / 100.0,
            components: Components {
                policy_adherence: round(raw.pa),
                agent_reputation: round(raw.ar),
                response_integrity: round(raw.ri),
                risk_exposure: round(raw.re),
            },
            sla: Sla {
                threshold: p.sla_threshold,
                breached: raw.score < p.sla_threshold,
                provisional,
            },
            basis: Basis {
                decisions: self.decisions,
                denied_decisions: self.denied,
                events: self.events,
                error_events: self.errors,
                violation_events: self.violations,
                integrity_checks: self.checks,
                sensitive_data_classes: classes.iter().map(|c| c.to_string()).collect(),
                open_incidents,
            },
            details: ScoreDetails {
                decision_weight: round(decision_w),
                compliant_weight: round(compliant_w),
                good_outcome_weight: round(r),
                bad_outcome_weight: round(s),
                reputation_mean: round(raw.ar_mean),
                reputation_quantile: p.reputation_quantile,
                integrity_check_weight: round(check_w),
                integrity_pass_weight: round(pass_w),
                integrity_pass_rate: pass_rate.map(round),
                integrity_wilson_lower: wilson.map(round),
                risk_privileges: round(risk_privileges),
                risk_data: round(risk_data),
                risk_incidents,
                allowed_actions: actions.iter().map(|a| a.to_string()).collect(),
                privileged_actions: privileged,
                good_outcomes_to_clear_sla: to_clear,
            },
            explanation,
        }
    }
}

/// Records that `name` was seen at `at_ms`; allocates only for a name not yet tracked.
fn remember(map: &mut BTreeMap<Arc<str>, Seen>, name: &str, at_ms: i64, risk: f64) {
    if let Some(seen) = map.get_mut(name) {
        seen.last_ms = seen.last_ms.max(at_ms);
        return;
    }
    if map.len() >= MAX_TRACKED_NAMES {
        let oldest = map
            .iter()
            .min_by_key(|(_, s)| s.last_ms)
            .map(|(k, s)| (k.clone(), s.last_ms));
        match oldest {
            // An even older sighting than everything tracked changes nothing that counts.
            Some((_, oldest_ms)) if oldest_ms >= at_ms => return,
            Some((k, _)) => {
                map.remove(&k);
            }
            None => {}
        }
    }
    map.insert(
        Arc::from(name),
        Seen {
            last_ms: at_ms,
            risk,
        },
    );
}

fn windowed_risk<'a>(
    map: &'a BTreeMap<Arc<str>, Seen>,
    eval_ms: i64,
    p: &TrustParams,
    cap: f64,
) -> (f64, Vec<&'a str>) {
    let window_ms = p.exposure_window_hours * 3_600_000.0;
    let mut risk = 0.0;
    let mut names = Vec::new();
    for (name, seen) in map {
        if (eval_ms.saturating_sub(seen.last_ms) as f64) <= window_ms {
            risk += seen.risk;
            names.push(&**name);
        }
    }
    (risk.min(cap), names)
}

fn incident_risk(open_incidents: u32) -> f64 {
    (INCIDENT_RISK * f64::from(open_incidents)).min(INCIDENT_RISK_CAP)
}

/// PA with one compliant pseudo-decision, so a single deny gives 0.5, not 0.
pub(crate) fn policy_adherence(compliant_w: f64, decision_w: f64) -> f64 {
    (compliant_w + 1.0) / (decision_w + 1.0)
}

/// The q-quantile of Beta(r+1, s+1). Closed forms when s = 0 (CDF x^(r+1)) or r = 0
/// (CDF 1-(1-x)^(s+1)) cover new and flawless agents without iterating.
pub(crate) fn reputation_lower_quantile(r: f64, s: f64, q: f64) -> f64 {
    let (a, b) = (r.max(0.0) + 1.0, s.max(0.0) + 1.0);
    let q = if q > 0.0 && q < 1.0 { q } else { 0.1 };
    if s <= 0.0 {
        return q.powf(1.0 / a);
    }
    if r <= 0.0 {
        return 1.0 - (1.0 - q).powf(1.0 / b);
    }
    beta_quantile_newton(a, b, q).unwrap_or_else(|| match Beta::new(a, b) {
        Ok(beta) => beta.inverse_cdf(q).clamp(0.0, 1.0),
        Err(_) => a / (a + b),
    })
}

/// The q-quantile of Beta(a, b) by safeguarded Newton steps on the regularised incomplete
/// beta function from a normal-approximation start: a few evaluations instead of statrs'
/// general inverse (about 7 µs), which stays the fallback when this does not converge.
fn beta_quantile_newton(a: f64, b: f64, q: f64) -> Option<f64> {
    let mean = a / (a + b);
    let sd = (a * b / ((a + b) * (a + b) * (a + b + 1.0))).sqrt();
    let z = -std::f64::consts::SQRT_2 * statrs::function::erf::erfc_inv(2.0 * q);
    let ln_b = statrs::function::beta::ln_beta(a, b);
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    let mut x = (mean + z * sd).clamp(1e-12, 1.0 - 1e-12);
    for _ in 0..60 {
        let cdf = statrs::function::beta::checked_beta_reg(a, b, x).ok()?;
        let error = cdf - q;
        if error > 0.0 {
            hi = x;
        } else {
            lo = x;
        }
        let ln_pdf = (a - 1.0) * x.ln() + (b - 1.0) * (1.0 - x).ln() - ln_b;
        let mut next = x - error / ln_pdf.exp();
        if !(next > lo && next < hi) {
            next = 0.5 * (lo + hi);
        }
        if (next - x).abs() <= 1e-12 * x || hi - lo < 1e-15 {
            return Some(next);
        }
        x = next;
    }
    None
}

/// Wilson score lower bound of a pass rate over `n` (possibly fractional) trials.
pub(crate) fn wilson_lower(passes: f64, n: f64, z: f64) -> f64 {
    if n <= 0.0 {
        return 0.0;
    }
    let phat = (passes / n).clamp(0.0, 1.0);
    let z2 = z * z;
    let centre = phat + z2 / (2.0 * n);
    let spread = z * (phat * (1.0 - phat) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - spread) / (1.0 + z2 / n)).max(0.0)
}

/// RI: the Wilson lower bound of the pass rate (with the prior's pseudo-passes), divided by
/// the bound a flawless record of the same size gets. The division cancels the penalty a lower
/// bound puts on small samples as such, so passes never lower RI and only failures do; the
/// prior keeps one failure from zeroing it.
pub(crate) fn response_integrity(pass_w: f64, check_w: f64, p: &TrustParams) -> f64 {
    if check_w <= 0.0 {
        return 1.0;
    }
    let m = p.integrity_prior_passes.max(0.0);
    let n = check_w + m;
    let flawless = wilson_lower(n, n, p.integrity_z);
    if flawless <= 0.0 {
        return 1.0;
    }
    (wilson_lower(pass_w + m, n, p.integrity_z) / flawless).clamp(0.0, 1.0)
}

/// Computes the trust score of a batch of samples: folds them, in the order given, into a
/// fresh [`AgentTrust`] and scores it. Pure and deterministic.
pub fn compute(inputs: &TrustInputs, p: &TrustParams) -> TrustScore {
    fold(inputs, p).score(inputs.open_incidents, inputs.now_ms, p)
}

fn fold(inputs: &TrustInputs, p: &TrustParams) -> AgentTrust {
    let mut t = AgentTrust::new();
    for d in &inputs.decisions {
        t.observe_decision(d, p);
    }
    for e in &inputs.events {
        t.observe_event(e, p);
    }
    t
}

#[cfg(test)]
#[path = "score_tests.rs"]
mod tests;
