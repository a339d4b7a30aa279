//! Two-phase evaluation: first ask which stored facts a decision needs, then fetch exactly
//! those in one round trip, then evaluate.
//!
//! The engine is pure, so the caller fetches what policies read from Cedar's context: the
//! healer's controls (`context.heal_controls`, and `budget_cap` controls that add budget lines
//! and a rate limit), spend counters (`context.budget_exceeded`) and the agent's check rate
//! (`context.checks_last_minute`, `context.rate_limit_exceeded`). [`Bundle::facts_needed`]
//! answers from the request's identity alone (tenant, agent, action): it looks at the policies
//! that can decide that request and leaves out what none of them reads, and it names every
//! spend counter a `budget_cap` control could add a line for, so controls and counters can be
//! read together rather than controls first. [`FactsNeeded::assess`] then turns the fetched
//! counters into budget states, and [`CheckRequest::with_facts`] puts everything into the
//! request for [`crate::evaluate`].
//!
//! Which attributes a policy reads is found in its text at load time: any whole-word mention
//! of an attribute's name counts, so a name in a comment or a string literal makes the fact
//! "needed" (a wasted read), never "not needed" (a wrong decision).

use crate::budgets::{BudgetLine, BudgetState, Period, Scope, Usage, assess};
use crate::bundle::{Bundle, Placement};
use crate::engine::CheckRequest;

/// The part of a request known before any fact is fetched. Tool, model, region and content
/// are not here: they are inputs to the decision, but no stored fact is chosen by them.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdentity<'a> {
    pub tenant: &'a str,
    pub agent_id: &'a str,
    pub action: &'a str,
}

/// One spend counter in the caller's store: e.g. the billing team's spend this UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UsageCounter {
    pub scope: Scope,
    /// Agent id, team name or tenant.
    pub scope_id: String,
    pub period: Period,
}

/// What one decision needs from storage, from [`Bundle::facts_needed`].
#[derive(Debug, Clone, PartialEq)]
pub struct FactsNeeded<'b> {
    /// The agent's team and region, from `org.toml`; team-scoped controls match on the team.
    pub placement: Placement<'b>,
    /// Fetch the healer's active controls: a policy reads `heal_controls`, or reads budgets or
    /// the check rate, which `budget_cap` controls can narrow.
    pub controls: bool,
    /// The bundle's budget lines for this agent (`budgets.toml`); empty when no policy reads
    /// `budget_exceeded`.
    pub usage_lines: Vec<BudgetLine>,
    /// Every counter to read, sorted and distinct: those of `usage_lines`, and when
    /// `controls` also the day counters a `budget_cap` control can add a line for (the agent,
    /// its team, the tenant). Empty when no policy reads `budget_exceeded`.
    pub usage_counters: Vec<UsageCounter>,
    /// Count this check in the agent's rate log: a policy reads `checks_last_minute` or
    /// `rate_limit_exceeded`.
    pub rate_limit: bool,
    /// The bundle's limit in checks per rolling minute, when `rate_limit` (a `budget_cap`
    /// control may lower it, or set one where the bundle has none).
    pub rate_limit_per_minute: Option<u32>,
    /// Work out the agent's trust score: a policy reads `trust_score`.
    pub trust_score: bool,
}

/// What the caller fetched and worked out, in the form [`CheckRequest::with_facts`] takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Names of the healer controls that apply (`quarantined`, `tool_revoked`, …).
    pub heal_controls: Vec<String>,
    /// Budget states, e.g. from [`FactsNeeded::assess`]; the exceeded ones reach Cedar.
    pub budgets: Vec<BudgetState>,
    /// Policy checks of this agent in the last minute, counting this one.
    pub checks_last_minute: i64,
    pub rate_limit_exceeded: bool,
    /// The agent's trust score (0-100), rounded; `None` when not needed or not known.
    pub trust_score: Option<i64>,
}

/// Which fact-bearing context attributes some policy of a slice reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FactReads {
    pub heal_controls: bool,
    pub budgets: bool,
    pub rate: bool,
    pub trust: bool,
}

impl FactReads {
    pub(crate) const ALL: FactReads = FactReads {
        heal_controls: true,
        budgets: true,
        rate: true,
        trust: true,
    };

    /// Reads of one policy, from its Cedar text.
    pub(crate) fn of_policy_text(text: &str) -> FactReads {
        FactReads {
            heal_controls: mentions(text, "heal_controls"),
            budgets: mentions(text, "budget_exceeded"),
            rate: mentions(text, "checks_last_minute") || mentions(text, "rate_limit_exceeded"),
            trust: mentions(text, "trust_score"),
        }
    }

    pub(crate) fn union(self, other: FactReads) -> FactReads {
        FactReads {
            heal_controls: self.heal_controls || other.heal_controls,
            budgets: self.budgets || other.budgets,
            rate: self.rate || other.rate,
            trust: self.trust || other.trust,
        }
    }
}

/// `word` occurs in `text` with no identifier character on either side.
fn mentions(text: &str, word: &str) -> bool {
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    text.match_indices(word).any(|(at, _)| {
        let before = text.get(..at).and_then(|t| t.chars().next_back());
        let after = text.get(at + word.len()..).and_then(|t| t.chars().next());
        !ident(before) && !ident(after)
    })
}

impl Bundle {
    /// Which stored facts deciding `req` needs. Pure and cheap (a slice lookup and the
    /// agent's budget lines); the answer holds for this bundle version only.
    ///
    /// A request no slice covers is denied without reading any fact, so it needs none.
    pub fn facts_needed(&self, req: &RequestIdentity<'_>) -> FactsNeeded<'_> {
        let placement = self.placement(req.agent_id);
        let reads = self
            .slice_for(req.tenant, &placement, req.action)
            .map(|s| s.reads)
            .unwrap_or_default();
        let controls = reads.heal_controls || reads.budgets || reads.rate;
        let (usage_lines, usage_counters) = if reads.budgets {
            let lines = self
                .budgets()
                .lines_for(req.tenant, req.agent_id, &placement);
            let mut counters: Vec<UsageCounter> = lines.iter().map(UsageCounter::of).collect();
            if controls {
                let day = |scope, scope_id: &str| UsageCounter {
                    scope,
                    scope_id: scope_id.to_string(),
                    period: Period::Day,
                };
                counters.push(day(Scope::Agent, req.agent_id));
                if let Some(team) = placement.team {
                    counters.push(day(Scope::Team, team));
                }
                counters.push(day(Scope::Tenant, req.tenant));
            }
            counters.sort();
            counters.dedup();
            (lines, counters)
        } else {
            (Vec::new(), Vec::new())
        };
        FactsNeeded {
            controls,
            usage_lines,
            usage_counters,
            rate_limit: reads.rate,
            trust_score: reads.trust,
            rate_limit_per_minute: if reads.rate {
                self.budgets().checks_per_minute(req.agent_id)
            } else {
                None
            },
            placement,
        }
    }
}

impl UsageCounter {
    fn of(line: &BudgetLine) -> UsageCounter {
        UsageCounter {
            scope: line.scope,
            scope_id: line.scope_id.clone(),
            period: line.period,
        }
    }
}

impl FactsNeeded<'_> {
    /// Budget states for `usage_lines` plus `extra_lines` (the lines `budget_cap` controls
    /// add), from the counters the caller read. A counter it did not return counts as nothing
    /// spent yet, as a store without a row for it would say.
    pub fn assess(
        &self,
        extra_lines: &[BudgetLine],
        counters: &[(UsageCounter, Usage)],
        estimate: Usage,
    ) -> Vec<BudgetState> {
        let lines: Vec<BudgetLine> = self
            .usage_lines
            .iter()
            .chain(extra_lines)
            .cloned()
            .collect();
        let lookup = |scope: Scope, scope_id: &str, period: Period| {
            counters
                .iter()
                .find(|(c, _)| c.scope == scope && c.scope_id == scope_id && c.period == period)
                .map_or(Usage::default(), |(_, u)| *u)
        };
        assess(&lines, lookup, estimate)
    }
}

impl<'a> CheckRequest<'a> {
    /// The request with the fetched facts in the fields Cedar's context is built from.
    pub fn with_facts(mut self, facts: &Facts) -> CheckRequest<'a> {
        self.budget_exceeded = facts
            .budgets
            .iter()
            .filter(|b| b.exceeded)
            .map(BudgetState::key)
            .collect();
        self.checks_last_minute = facts.checks_last_minute;
        self.rate_limit_exceeded = facts.rate_limit_exceeded;
        self.heal_controls = facts.heal_controls.clone();
        self.trust_score = facts.trust_score;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budgets::Metric;
    use crate::{BundleFile, Detectors, evaluate};

    fn shipped() -> Bundle {
        Bundle::embedded_default().expect("shipped bundle loads")
    }

    /// The shipped bundle without the named policy files.
    fn shipped_without(names: &[&str]) -> Bundle {
        let files: Vec<BundleFile> = shipped()
            .files()
            .iter()
            .filter(|f| !names.contains(&f.name.as_str()))
            .cloned()
            .collect();
        Bundle::from_files(files).expect("bundle without those files loads")
    }

    fn identity<'a>(agent_id: &'a str, action: &'a str) -> RequestIdentity<'a> {
        RequestIdentity {
            tenant: "acme",
            agent_id,
            action,
        }
    }

    #[test]
    fn shipped_bundle_needs_every_fact_and_names_the_counters_caps_can_add() {
        let bundle = shipped();
        let needs = bundle.facts_needed(&identity("support-bot", "ticket.reply"));
        assert!(needs.controls && needs.rate_limit);
        assert_eq!(needs.placement.team, Some("support"));
        assert_eq!(needs.rate_limit_per_minute, Some(600));
        assert_eq!(
            needs.usage_lines,
            bundle
                .budgets()
                .lines_for("acme", "support-bot", &needs.placement)
        );
        let counter = |scope, id: &str, period| UsageCounter {
            scope,
            scope_id: id.to_string(),
            period,
        };
        // The agent's, team's and tenant's day counters (lines or possible caps) and the
        // tenant's month counter (a line); once each, sorted.
        assert_eq!(
            needs.usage_counters,
            vec![
                counter(Scope::Agent, "support-bot", Period::Day),
                counter(Scope::Team, "support", Period::Day),
                counter(Scope::Tenant, "acme", Period::Day),
                counter(Scope::Tenant, "acme", Period::Month),
            ]
        );
    }

    #[test]
    fn an_agent_outside_org_toml_has_no_team_counter() {
        let bundle = shipped();
        let needs = bundle.facts_needed(&identity("stranger", "ticket.reply"));
        assert_eq!(needs.placement.team, None);
        assert!(needs.usage_counters.iter().all(|c| c.scope != Scope::Team));
        assert!(
            needs
                .usage_counters
                .iter()
                .any(|c| c.scope == Scope::Agent && c.scope_id == "stranger")
        );
        assert_eq!(needs.rate_limit_per_minute, None);
    }

    #[test]
    fn facts_no_policy_reads_are_not_needed() {
        let none = shipped_without(&["global/budgets.cedar", "global/heal.cedar"]);
        let needs = none.facts_needed(&identity("support-bot", "ticket.reply"));
        assert!(!needs.controls && !needs.rate_limit);
        assert!(needs.usage_lines.is_empty() && needs.usage_counters.is_empty());
        assert_eq!(needs.rate_limit_per_minute, None);

        // Controls alone: no counters, no rate.
        let heal_only = shipped_without(&["global/budgets.cedar"]);
        let needs = heal_only.facts_needed(&identity("support-bot", "ticket.reply"));
        assert!(needs.controls && !needs.rate_limit);
        assert!(needs.usage_counters.is_empty());

        // Budgets and rate without heal policies still need controls: caps narrow them.
        let budgets_only = shipped_without(&["global/heal.cedar"]);
        let needs = budgets_only.facts_needed(&identity("support-bot", "ticket.reply"));
        assert!(needs.controls && needs.rate_limit);
        assert!(!needs.usage_counters.is_empty());
    }

    #[test]
    fn mentions_are_whole_words() {
        let reads = FactReads::of_policy_text("when { context.heal_controls.contains(\"x\") };");
        assert_eq!(
            reads,
            FactReads {
                heal_controls: true,
                ..FactReads::default()
            }
        );
        assert_eq!(
            FactReads::of_policy_text("context.heal_controls_v2 || context.my_budget_exceeded"),
            FactReads::default()
        );
        let reads = FactReads::of_policy_text("context has checks_last_minute");
        assert!(reads.rate && !reads.budgets);
        assert!(FactReads::of_policy_text("context[\"rate_limit_exceeded\"]").rate);
    }

    #[test]
    fn assess_joins_extra_lines_and_counts_missing_counters_as_nothing_spent() {
        let bundle = shipped();
        let needs = bundle.facts_needed(&identity("billing-bot", "invoice.send"));
        let cap = BudgetLine {
            scope: Scope::Agent,
            scope_id: "billing-bot".into(),
            period: Period::Day,
            metric: Metric::CostUsd,
            limit: 5.0,
        };
        let spent = [(
            UsageCounter {
                scope: Scope::Agent,
                scope_id: "billing-bot".into(),
                period: Period::Day,
            },
            Usage {
                tokens: 10,
                cost_usd: 4.0,
            },
        )];
        let estimate = Usage {
            tokens: 0,
            cost_usd: 2.0,
        };
        let states = needs.assess(std::slice::from_ref(&cap), &spent, estimate);
        assert_eq!(states.len(), needs.usage_lines.len() + 1);
        let capped = states.last().expect("the cap's state");
        assert!(capped.exceeded && capped.limit == 5.0 && capped.used == 4.0);
        // The bundle's agent line (20 USD a day) is not exceeded by the same spend, and the
        // tenant's month counter, not returned, counts as zero.
        assert!(
            states
                .iter()
                .filter(|s| s.scope == Scope::Agent && s.limit == 20.0)
                .all(|s| !s.exceeded && s.used == 4.0)
        );
        assert!(
            states
                .iter()
                .filter(|s| s.scope == Scope::Tenant)
                .all(|s| s.used == 0.0)
        );
    }

    #[test]
    fn with_facts_decides_as_the_fields_set_by_hand_do() {
        let bundle = shipped();
        let detectors = Detectors::new();
        let base = CheckRequest {
            tenant: "acme",
            agent_id: "support-bot",
            action: "ticket.reply",
            ..CheckRequest::default()
        };
        let needs = bundle.facts_needed(&RequestIdentity {
            tenant: base.tenant,
            agent_id: base.agent_id,
            action: base.action,
        });
        let over = Usage {
            tokens: 0,
            cost_usd: 1_000.0,
        };
        let spent: Vec<(UsageCounter, Usage)> = needs
            .usage_counters
            .iter()
            .map(|c| (c.clone(), over))
            .collect();
        let facts = Facts {
            heal_controls: vec!["quarantined".into()],
            budgets: needs.assess(&[], &spent, Usage::default()),
            checks_last_minute: 601,
            rate_limit_exceeded: true,
            trust_score: None,
        };
        let by_hand = CheckRequest {
            budget_exceeded: facts
                .budgets
                .iter()
                .filter(|b| b.exceeded)
                .map(BudgetState::key)
                .collect(),
            checks_last_minute: 601,
            rate_limit_exceeded: true,
            heal_controls: vec!["quarantined".into()],
            ..base.clone()
        };
        assert!(!by_hand.budget_exceeded.is_empty());
        let two_phase = evaluate(&bundle, &detectors, &base.clone().with_facts(&facts));
        assert_eq!(two_phase, evaluate(&bundle, &detectors, &by_hand));
        assert_eq!(two_phase.decision, meshos_types::Verdict::Deny);
        // No facts: the plain request.
        assert_eq!(
            evaluate(
                &bundle,
                &detectors,
                &base.clone().with_facts(&Facts::default())
            ),
            evaluate(&bundle, &detectors, &base)
        );
    }
}
