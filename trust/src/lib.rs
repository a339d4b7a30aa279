//! Mesh OS trust maths: a live, explainable trust score per agent and drift detectors over
//! its telemetry. This crate owns the maths and the telemetry event model only: it takes plain
//! samples and returns plain values. It must not read storage or clocks; callers pass every
//! timestamp (`at_ms`, `now_ms`, unix milliseconds).
//!
//! # Trust score
//! TS = 100 × PA × AR × RI / RE, clamped to 0–100. [`AgentTrust`] keeps the agent's state as
//! exponentially decayed sums valued at one reference time; each observation costs O(1) (a
//! decision also touches two small maps). An observation at `t` weighs `2^(-(T - t)/H)` at
//! evaluation time `T` (`H` = `half_life_hours`, 24 h by default): newer observations first
//! decay the sums to their own time, older ones (out of order) are discounted on arrival, so
//! the result does not depend on arrival order. `T` is `now_ms`, or the newest observation if
//! a skewed clock put it after `now_ms`. [`compute`] folds a batch the same way.
//!
//! - **Policy adherence (PA)**, 0–1: `(C + 1) / (D + 1)` with `C` the decayed weight of
//!   compliant decisions (`Verdict::is_compliant`: allow, redact, require_approval) and `D`
//!   that of all decisions. The `+1` is one compliant pseudo-decision so that one deny gives
//!   0.5, not 0; with no decisions PA = 1.
//! - **Agent reputation (AR)**, 0–1: Jøsang's Beta reputation with forgetting. `r` = decayed
//!   count of `ok` outcomes, `s` = decayed count of bad ones weighted by severity (`error` 1,
//!   `violation` 3). AR is the lower `q`-quantile (`reputation_quantile`, 0.1) of
//!   Beta(r+1, s+1) rather than its mean `(r+1)/(r+s+2)` (reported too): the mean gives a
//!   stranger 0.5 and one good outcome 0.67, the quantile asks for evidence first. A new agent
//!   starts at AR = q = 0.1; with no bad outcomes AR = q^(1/(r+1)), so with the default SLA
//!   threshold 70 and all else perfect it needs **6** good outcomes (0.1^(1/7) = 0.72). Until
//!   its decayed evidence r+s reaches that number the SLA state is `provisional`.
//! - **Response integrity (RI)**, 0–1: over output validations and evals (event kinds
//!   `output_validation`, `eval`; `ok` = pass), with decayed pass weight `P` of `N` checks and
//!   `m` = `integrity_prior_passes` (4) neutral pseudo-passes:
//!   `RI = W(P+m, N+m) / W(N+m, N+m)`, `W` the Wilson lower bound with `z` = `integrity_z`
//!   (1.96). 1 until any check exists. Dividing by a flawless record's bound cancels the
//!   small-sample penalty alone (a bare Wilson bound would drop RI from 1 to 0.21 on the first
//!   passed eval), so passes never lower RI; failures lower it more the surer the evidence.
//! - **Risk exposure (RE)**, ≥ 1: `1 + privileges + data + incidents`. Privileges: 0.01 per
//!   distinct action allowed in the last `exposure_window_hours` (168), 0.05 if it starts with
//!   one of `privileged_action_prefixes`, capped at 0.3. Data: 0.1 per personal-data class and
//!   0.2 per credential class (`meshos_types::CREDENTIAL_ENTITIES`) found in the agent's
//!   content within the window, capped at 1.0. Incidents: 0.25 per open incident, capped at
//!   1.0. RE therefore lies in [1, 3.3].
//!
//! # Drift
//! [`drift`] holds per-agent, per-metric two-sided CUSUM detectors tuned by an in-control
//! average run length; see its module doc.

pub mod drift;
mod event;
pub mod otlp;
mod otlp_limits;
mod score;
pub mod sla;

pub use event::EventInput;
pub use score::{
    AgentTrust, Basis, Components, DecisionSample, EventSample, ScoreDetails, ScoreSummary, Sla,
    TrustInputs, TrustParams, TrustParamsError, TrustScore, compute,
};
