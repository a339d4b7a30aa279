//! SLA thresholds on the trust score: which threshold applies to an agent, and when its score
//! has breached it or recovered. Pure: no I/O, no clock; the caller feeds scores in order and
//! turns the transitions into alerts, notifications and webhooks.
//!
//! **Resolution.** Rules are set per tenant, per team of a tenant, or per agent of a tenant.
//! For an agent the most specific rule wins: agent rule, else its team's rule, else its
//! tenant's rule, else the fleet default (70 unless configured). A rule names either a team or
//! an agent, never both, so each rule has exactly one scope and no two rules may share one.
//!
//! **Hysteresis.** A score hovering at the threshold must not page someone on every sample, so
//! an agent enters breach when its score is below the threshold for `min_breach_samples`
//! consecutive scores (default 1: the first low score, including a new agent's very first
//! score), and leaves breach only when a score reaches `threshold + recovery_margin` (default
//! margin 2 points; capped at 100 so a threshold of 100 can still recover). Between the two
//! levels the state holds. Each update is judged against the rule passed in at that moment,
//! so a changed threshold takes effect on the next score: lowering it below a breached agent's
//! score (plus margin) recovers the agent, raising it above a healthy agent's score breaches it.

use std::collections::HashMap;
use std::fmt;

use meshos_types::{InvalidValue, validate_id};
use serde::{Deserialize, Serialize};

/// The fleet-wide threshold when none is configured.
pub const DEFAULT_SLA_THRESHOLD: f64 = 70.0;
/// Points above the threshold a breached agent must reach to recover, unless a rule says otherwise.
pub const DEFAULT_RECOVERY_MARGIN: f64 = 2.0;
/// Consecutive low scores needed to declare a breach, unless configured otherwise.
pub const DEFAULT_MIN_BREACH_SAMPLES: u32 = 1;

/// Event name of a breach, as used in alert records and webhook filters.
pub const BREACH_EVENT: &str = "sla.breach";
/// Event name of a recovery, as used in alert records and webhook filters.
pub const RECOVERY_EVENT: &str = "sla.recovery";

/// One configured threshold. Exactly one scope: the tenant alone, a team of it, or an agent of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaRule {
    pub tenant: String,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    /// Scores below this (0–100) breach.
    pub threshold: f64,
    /// Overrides the policy's default recovery margin for this scope.
    #[serde(default)]
    pub recovery_margin: Option<f64>,
}

/// What a rule (or the default) covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "level", rename_all = "snake_case")]
pub enum SlaScope {
    Fleet,
    Tenant { tenant: String },
    Team { tenant: String, team: String },
    Agent { tenant: String, agent: String },
}

impl fmt::Display for SlaScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlaScope::Fleet => write!(f, "fleet default"),
            SlaScope::Tenant { tenant } => write!(f, "tenant {tenant}"),
            SlaScope::Team { tenant, team } => write!(f, "team {team} of tenant {tenant}"),
            SlaScope::Agent { tenant, agent } => write!(f, "agent {agent} of tenant {tenant}"),
        }
    }
}

/// The SLA in force for one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedSla {
    pub threshold: f64,
    pub recovery_margin: f64,
    pub min_breach_samples: u32,
    /// Which rule supplied the threshold (`Display` gives e.g. "team billing of tenant acme").
    pub scope: SlaScope,
}

impl ResolvedSla {
    /// The score a breached agent must reach to recover.
    pub fn recovery_level(&self) -> f64 {
        (self.threshold + self.recovery_margin).min(100.0)
    }
}

/// A rejected SLA configuration. Rules are numbered from 1 in the order given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SlaError {
    #[error("default SLA threshold {value} is out of range; expected a number from 0 to 100")]
    DefaultThreshold { value: f64 },
    #[error("default SLA recovery margin {value} is out of range; expected a number from 0 to 100")]
    DefaultRecoveryMargin { value: f64 },
    #[error("min_breach_samples must be at least 1, got 0")]
    MinBreachSamples,
    #[error(
        "SLA rule #{rule} ({scope}): threshold {value} is out of range; expected a number from 0 to 100"
    )]
    Threshold {
        rule: usize,
        scope: SlaScope,
        value: f64,
    },
    #[error(
        "SLA rule #{rule} ({scope}): recovery_margin {value} is out of range; expected a number from 0 to 100"
    )]
    RecoveryMargin {
        rule: usize,
        scope: SlaScope,
        value: f64,
    },
    #[error("SLA rule #{rule}: {source}")]
    Id {
        rule: usize,
        #[source]
        source: InvalidValue,
    },
    #[error(
        "SLA rule #{rule} (tenant {tenant}) names both team {team:?} and agent {agent:?}; expected one of them (an agent rule applies whatever the agent's team)"
    )]
    TeamAndAgent {
        rule: usize,
        tenant: String,
        team: String,
        agent: String,
    },
    #[error(
        "SLA rules #{first} and #{second} both set the threshold of {scope}; expected one rule per scope"
    )]
    DuplicateScope {
        first: usize,
        second: usize,
        scope: SlaScope,
    },
}

#[derive(Debug, Clone, Default)]
struct TenantRules {
    tenant: Option<ResolvedSla>,
    teams: HashMap<String, ResolvedSla>,
    agents: HashMap<String, ResolvedSla>,
}

/// Validated SLA rules and the fleet defaults; answers "which SLA applies to this agent".
#[derive(Debug, Clone)]
pub struct SlaPolicy {
    fleet: ResolvedSla,
    /// Keyed by tenant, then team or agent, so a lookup borrows the caller's `&str`s.
    tenants: HashMap<String, TenantRules>,
    /// The rules as given, so defaults set after `new` can be re-applied to them.
    rules: Vec<SlaRule>,
}

fn check_level(value: f64) -> bool {
    value.is_finite() && (0.0..=100.0).contains(&value)
}

impl SlaPolicy {
    /// Validates the rules against the fleet default threshold, with the default recovery
    /// margin and breach sample count.
    pub fn new(default_threshold: f64, rules: Vec<SlaRule>) -> Result<SlaPolicy, SlaError> {
        if !check_level(default_threshold) {
            return Err(SlaError::DefaultThreshold {
                value: default_threshold,
            });
        }
        Self::build(
            ResolvedSla {
                threshold: default_threshold,
                recovery_margin: DEFAULT_RECOVERY_MARGIN,
                min_breach_samples: DEFAULT_MIN_BREACH_SAMPLES,
                scope: SlaScope::Fleet,
            },
            rules,
        )
    }

    /// Sets the recovery margin of every scope whose rule does not set its own.
    pub fn with_recovery_margin(self, margin: f64) -> Result<SlaPolicy, SlaError> {
        if !check_level(margin) {
            return Err(SlaError::DefaultRecoveryMargin { value: margin });
        }
        Self::build(
            ResolvedSla {
                recovery_margin: margin,
                ..self.fleet
            },
            self.rules,
        )
    }

    /// Sets how many consecutive scores below the threshold make a breach, for every scope.
    pub fn with_min_breach_samples(self, samples: u32) -> Result<SlaPolicy, SlaError> {
        if samples == 0 {
            return Err(SlaError::MinBreachSamples);
        }
        Self::build(
            ResolvedSla {
                min_breach_samples: samples,
                ..self.fleet
            },
            self.rules,
        )
    }

    fn build(fleet: ResolvedSla, rules: Vec<SlaRule>) -> Result<SlaPolicy, SlaError> {
        let mut tenants: HashMap<String, TenantRules> = HashMap::new();
        let mut seen: HashMap<SlaScope, usize> = HashMap::new();
        for (i, rule) in rules.iter().enumerate() {
            let number = i + 1;
            let id_err = |source| SlaError::Id {
                rule: number,
                source,
            };
            validate_id("tenant", &rule.tenant).map_err(id_err)?;
            if let Some(team) = &rule.team {
                validate_id("team", team).map_err(id_err)?;
            }
            if let Some(agent) = &rule.agent {
                validate_id("agent", agent).map_err(id_err)?;
            }
            let tenant = rule.tenant.clone();
            let scope = match (&rule.team, &rule.agent) {
                (Some(team), Some(agent)) => {
                    return Err(SlaError::TeamAndAgent {
                        rule: number,
                        tenant,
                        team: team.clone(),
                        agent: agent.clone(),
                    });
                }
                (Some(team), None) => SlaScope::Team {
                    tenant,
                    team: team.clone(),
                },
                (None, Some(agent)) => SlaScope::Agent {
                    tenant,
                    agent: agent.clone(),
                },
                (None, None) => SlaScope::Tenant { tenant },
            };
            if !check_level(rule.threshold) {
                return Err(SlaError::Threshold {
                    rule: number,
                    scope,
                    value: rule.threshold,
                });
            }
            let recovery_margin = rule.recovery_margin.unwrap_or(fleet.recovery_margin);
            if !check_level(recovery_margin) {
                return Err(SlaError::RecoveryMargin {
                    rule: number,
                    scope,
                    value: recovery_margin,
                });
            }
            if let Some(&first) = seen.get(&scope) {
                return Err(SlaError::DuplicateScope {
                    first,
                    second: number,
                    scope,
                });
            }
            seen.insert(scope.clone(), number);
            let resolved = ResolvedSla {
                threshold: rule.threshold,
                recovery_margin,
                min_breach_samples: fleet.min_breach_samples,
                scope: scope.clone(),
            };
            let entry = tenants.entry(rule.tenant.clone()).or_default();
            match scope {
                SlaScope::Tenant { .. } => entry.tenant = Some(resolved),
                SlaScope::Team { team, .. } => {
                    entry.teams.insert(team, resolved);
                }
                SlaScope::Agent { agent, .. } => {
                    entry.agents.insert(agent, resolved);
                }
                SlaScope::Fleet => {}
            }
        }
        Ok(SlaPolicy {
            fleet,
            tenants,
            rules,
        })
    }

    /// The SLA for an agent: its agent rule, else its team's, else its tenant's, else the fleet default.
    pub fn resolve(&self, tenant: &str, team: Option<&str>, agent: &str) -> ResolvedSla {
        let Some(rules) = self.tenants.get(tenant) else {
            return self.fleet.clone();
        };
        rules
            .agents
            .get(agent)
            .or_else(|| team.and_then(|t| rules.teams.get(t)))
            .or(rules.tenant.as_ref())
            .unwrap_or(&self.fleet)
            .clone()
    }

    /// The fleet default threshold.
    pub fn default_threshold(&self) -> f64 {
        self.fleet.threshold
    }

    /// The rules as configured.
    pub fn rules(&self) -> &[SlaRule] {
        &self.rules
    }
}

/// A change of an agent's SLA state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum SlaTransition {
    /// The score fell below the threshold (for the required number of samples).
    #[serde(rename = "sla.breach")]
    Breach { threshold: f64, score: f64 },
    /// A breached agent's score reached the threshold plus the recovery margin.
    #[serde(rename = "sla.recovery")]
    Recovery { threshold: f64, score: f64 },
}

impl SlaTransition {
    /// `sla.breach` or `sla.recovery`.
    pub fn event_name(&self) -> &'static str {
        match self {
            SlaTransition::Breach { .. } => BREACH_EVENT,
            SlaTransition::Recovery { .. } => RECOVERY_EVENT,
        }
    }
}

/// One agent's SLA state, fed every new score in order.
#[derive(Clone, Debug, Default)]
pub struct SlaTracker {
    breached: bool,
    /// Consecutive scores below the threshold while not yet breached.
    low_streak: u32,
}

impl SlaTracker {
    /// A tracker that resumes a known state, e.g. from the last stored alert after a restart,
    /// so an agent already in breach is not alerted again.
    pub fn resumed(breached: bool) -> SlaTracker {
        SlaTracker {
            breached,
            low_streak: 0,
        }
    }

    /// Takes the agent's latest score and the SLA in force now; returns the transition, if any.
    /// A NaN score carries no information and leaves the state as it is.
    pub fn update(&mut self, score: f64, rule: &ResolvedSla) -> Option<SlaTransition> {
        if score.is_nan() {
            return None;
        }
        let threshold = rule.threshold;
        if self.breached {
            if score >= rule.recovery_level() {
                self.breached = false;
                return Some(SlaTransition::Recovery { threshold, score });
            }
            return None;
        }
        if score < threshold {
            self.low_streak = self.low_streak.saturating_add(1);
            if self.low_streak >= rule.min_breach_samples.max(1) {
                self.breached = true;
                self.low_streak = 0;
                return Some(SlaTransition::Breach { threshold, score });
            }
        } else {
            self.low_streak = 0;
        }
        None
    }

    /// Whether the agent is in breach now.
    pub fn breached(&self) -> bool {
        self.breached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(tenant: &str, team: Option<&str>, agent: Option<&str>, threshold: f64) -> SlaRule {
        SlaRule {
            tenant: tenant.into(),
            team: team.map(Into::into),
            agent: agent.map(Into::into),
            threshold,
            recovery_margin: None,
        }
    }

    fn policy() -> SlaPolicy {
        SlaPolicy::new(
            70.0,
            vec![
                rule("acme", None, None, 75.0),
                rule("acme", Some("billing"), None, 80.0),
                rule("acme", None, Some("bot-1"), 90.0),
            ],
        )
        .unwrap()
    }

    #[test]
    fn most_specific_rule_wins() {
        let p = policy();
        let r = p.resolve("acme", Some("billing"), "bot-1");
        assert_eq!(
            (r.threshold, r.scope.to_string().as_str()),
            (90.0, "agent bot-1 of tenant acme")
        );
        // The agent rule applies whatever team the agent is in.
        assert_eq!(p.resolve("acme", Some("support"), "bot-1").threshold, 90.0);
        assert_eq!(p.resolve("acme", None, "bot-1").threshold, 90.0);
        let r = p.resolve("acme", Some("billing"), "bot-2");
        assert_eq!(
            (r.threshold, r.scope.to_string().as_str()),
            (80.0, "team billing of tenant acme")
        );
        let r = p.resolve("acme", Some("support"), "bot-2");
        assert_eq!(
            (r.threshold, r.scope.to_string().as_str()),
            (75.0, "tenant acme")
        );
        assert_eq!(p.resolve("acme", None, "bot-2").threshold, 75.0);
        let r = p.resolve("globex", Some("billing"), "bot-1");
        assert_eq!((r.threshold, r.scope), (70.0, SlaScope::Fleet));
    }

    #[test]
    fn team_rule_without_tenant_rule_falls_back_to_fleet_default() {
        let p = SlaPolicy::new(60.0, vec![rule("acme", Some("billing"), None, 80.0)]).unwrap();
        assert_eq!(p.resolve("acme", Some("billing"), "a").threshold, 80.0);
        assert_eq!(p.resolve("acme", Some("ops"), "a").threshold, 60.0);
        assert_eq!(p.resolve("acme", None, "a").threshold, 60.0);
    }

    #[test]
    fn margins_and_sample_counts_come_from_rule_then_policy() {
        let mut r = rule("acme", None, Some("a"), 50.0);
        r.recovery_margin = Some(5.0);
        let p = SlaPolicy::new(70.0, vec![r, rule("acme", None, None, 60.0)])
            .unwrap()
            .with_recovery_margin(3.0)
            .unwrap()
            .with_min_breach_samples(2)
            .unwrap();
        let a = p.resolve("acme", None, "a");
        assert_eq!((a.recovery_margin, a.min_breach_samples), (5.0, 2));
        let b = p.resolve("acme", None, "b");
        assert_eq!((b.recovery_margin, b.min_breach_samples), (3.0, 2));
        let fleet = p.resolve("other", None, "b");
        assert_eq!((fleet.recovery_margin, fleet.threshold), (3.0, 70.0));
    }

    #[test]
    fn invalid_rules_are_rejected_naming_the_rule() {
        let err = SlaPolicy::new(
            70.0,
            vec![
                rule("acme", None, None, 75.0),
                rule("acme", Some("billing"), None, 120.0),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "SLA rule #2 (team billing of tenant acme): threshold 120 is out of range; expected a number from 0 to 100"
        );

        let err = SlaPolicy::new(70.0, vec![rule("acme", None, None, f64::NAN)]).unwrap_err();
        assert!(matches!(err, SlaError::Threshold { rule: 1, .. }), "{err}");

        let err = SlaPolicy::new(
            70.0,
            vec![
                rule("acme", Some("billing"), None, 75.0),
                rule("acme", None, None, 75.0),
                rule("acme", Some("billing"), None, 80.0),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "SLA rules #1 and #3 both set the threshold of team billing of tenant acme; expected one rule per scope"
        );

        let err = SlaPolicy::new(70.0, vec![rule("acme corp", None, None, 75.0)]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("SLA rule #1: tenant:") && text.contains("expected"),
            "{text}"
        );

        let err = SlaPolicy::new(
            70.0,
            vec![rule("acme", Some("billing"), Some("bot-1"), 75.0)],
        )
        .unwrap_err();
        assert!(
            matches!(err, SlaError::TeamAndAgent { rule: 1, .. }),
            "{err}"
        );

        let mut r = rule("acme", None, None, 75.0);
        r.recovery_margin = Some(-1.0);
        assert!(matches!(
            SlaPolicy::new(70.0, vec![r]).unwrap_err(),
            SlaError::RecoveryMargin { rule: 1, .. }
        ));

        assert!(matches!(
            SlaPolicy::new(101.0, vec![]).unwrap_err(),
            SlaError::DefaultThreshold { .. }
        ));
        assert!(
            SlaPolicy::new(70.0, vec![])
                .unwrap()
                .with_min_breach_samples(0)
                .is_err()
        );
        assert!(
            SlaPolicy::new(70.0, vec![])
                .unwrap()
                .with_recovery_margin(f64::INFINITY)
                .is_err()
        );
    }

    #[test]
    fn same_team_name_in_two_tenants_is_two_scopes() {
        let p = SlaPolicy::new(
            70.0,
            vec![
                rule("acme", Some("billing"), None, 80.0),
                rule("globex", Some("billing"), None, 50.0),
            ],
        )
        .unwrap();
        assert_eq!(p.resolve("globex", Some("billing"), "a").threshold, 50.0);
    }

    fn sla(threshold: f64) -> ResolvedSla {
        ResolvedSla {
            threshold,
            recovery_margin: DEFAULT_RECOVERY_MARGIN,
            min_breach_samples: 1,
            scope: SlaScope::Fleet,
        }
    }

    #[test]
    fn a_new_agents_first_low_score_is_a_breach() {
        let mut t = SlaTracker::default();
        assert!(!t.breached());
        assert_eq!(
            t.update(40.0, &sla(70.0)),
            Some(SlaTransition::Breach {
                threshold: 70.0,
                score: 40.0
            })
        );
        assert!(t.breached());
        // Staying low does not alert again.
        assert_eq!(t.update(30.0, &sla(70.0)), None);
    }

    #[test]
    fn a_new_agent_above_threshold_is_quiet() {
        let mut t = SlaTracker::default();
        assert_eq!(t.update(70.0, &sla(70.0)), None);
        assert!(!t.breached());
    }

    #[test]
    fn recovery_needs_the_margin() {
        let mut t = SlaTracker::default();
        let r = sla(70.0);
        assert!(t.update(69.9, &r).is_some());
        assert_eq!(
            t.update(70.0, &r),
            None,
            "at the threshold is not yet recovered"
        );
        assert_eq!(t.update(71.9, &r), None);
        assert_eq!(
            t.update(72.0, &r),
            Some(SlaTransition::Recovery {
                threshold: 70.0,
                score: 72.0
            })
        );
        assert!(!t.breached());
        // Back between threshold and recovery level: still healthy, no new breach.
        assert_eq!(t.update(70.5, &r), None);
        assert_eq!(
            t.update(69.0, &r).map(|x| x.event_name()),
            Some(BREACH_EVENT)
        );
    }

    #[test]
    fn a_noisy_series_around_the_threshold_does_not_flap() {
        // A deterministic ±1.5-point wobble around 70: crosses the threshold on almost every
        // sample, but never reaches the recovery level of 72.
        let r = sla(70.0);
        let mut t = SlaTracker::default();
        let mut transitions = Vec::new();
        for i in 0..200 {
            let wobble = [1.5, -1.2, 0.8, -0.4, 1.1, -1.5, 0.2, -0.9][i % 8];
            if let Some(x) = t.update(70.0 + wobble, &r) {
                transitions.push(x);
            }
        }
        assert_eq!(transitions.len(), 1, "{transitions:?}");
        assert_eq!(transitions[0].event_name(), BREACH_EVENT);

        // Without a margin the same series alerts on nearly every crossing, which is what the
        // hysteresis is for.
        let no_margin = ResolvedSla {
            recovery_margin: 0.0,
            ..r
        };
        let mut t = SlaTracker::default();
        let flaps = (0..200)
            .filter_map(|i| {
                let wobble = [1.5, -1.2, 0.8, -0.4, 1.1, -1.5, 0.2, -0.9][i % 8];
                t.update(70.0 + wobble, &no_margin)
            })
            .count();
        assert!(flaps > 100, "{flaps}");
    }

    #[test]
    fn min_breach_samples_requires_consecutive_low_scores() {
        let r = ResolvedSla {
            min_breach_samples: 3,
            ..sla(70.0)
        };
        let mut t = SlaTracker::default();
        assert_eq!(t.update(60.0, &r), None);
        assert_eq!(t.update(60.0, &r), None);
        assert_eq!(t.update(75.0, &r), None, "a good score resets the count");
        assert_eq!(t.update(60.0, &r), None);
        assert_eq!(t.update(60.0, &r), None);
        assert_eq!(
            t.update(65.0, &r),
            Some(SlaTransition::Breach {
                threshold: 70.0,
                score: 65.0
            })
        );
        // Recovery is immediate once the level is reached.
        assert!(matches!(
            t.update(72.0, &r),
            Some(SlaTransition::Recovery { .. })
        ));
    }

    #[test]
    fn a_threshold_change_applies_to_the_next_score() {
        let mut t = SlaTracker::default();
        // Breached under 80.
        assert!(matches!(
            t.update(75.0, &sla(80.0)),
            Some(SlaTransition::Breach { .. })
        ));
        // The operator lowers the rule to 60: 75 ≥ 62, so the agent recovers under the new rule.
        assert_eq!(
            t.update(75.0, &sla(60.0)),
            Some(SlaTransition::Recovery {
                threshold: 60.0,
                score: 75.0
            })
        );
        // Back to the old rule of 80: the same score breaches again, once.
        assert_eq!(
            t.update(75.0, &sla(80.0)),
            Some(SlaTransition::Breach {
                threshold: 80.0,
                score: 75.0
            })
        );
        assert_eq!(t.update(75.0, &sla(80.0)), None);
        // Lowering it only to 74 leaves 75 inside the margin band: still breached, no flap.
        assert_eq!(t.update(75.0, &sla(74.0)), None);
        assert!(t.breached());
    }

    #[test]
    fn threshold_100_can_recover_and_threshold_0_never_breaches() {
        let mut t = SlaTracker::default();
        assert!(t.update(99.0, &sla(100.0)).is_some());
        assert!(matches!(
            t.update(100.0, &sla(100.0)),
            Some(SlaTransition::Recovery { .. })
        ));
        let mut t = SlaTracker::default();
        assert_eq!(t.update(0.0, &sla(0.0)), None);
    }

    #[test]
    fn resumed_breach_does_not_alert_again() {
        let mut t = SlaTracker::resumed(true);
        assert_eq!(t.update(10.0, &sla(70.0)), None);
        assert!(matches!(
            t.update(90.0, &sla(70.0)),
            Some(SlaTransition::Recovery { .. })
        ));
    }

    #[test]
    fn nan_scores_change_nothing() {
        let mut t = SlaTracker::default();
        assert_eq!(t.update(f64::NAN, &sla(70.0)), None);
        assert!(!t.breached());
    }

    #[test]
    fn transitions_serialise_with_their_event_name() {
        let v = serde_json::to_value(SlaTransition::Breach {
            threshold: 70.0,
            score: 41.5,
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"event": "sla.breach", "threshold": 70.0, "score": 41.5})
        );
    }
}
