//! Token and cost budgets per agent, team and tenant, and per-agent rate limits
//! (`budgets.toml` at the bundle root).
//!
//! The engine stays pure: the caller reads the spend counters it keeps (per UTC day and
//! month) for the lines `BudgetConfig::lines_for` names, and passes them to `assess`. The
//! exceeded lines reach Cedar as `context.budget_exceeded` (a set such as
//! `"agent:day:cost_usd"`), so refusing over-budget work is a policy in the bundle like any
//! other, and a team can choose to require approval instead of denying.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bundle::Placement;

/// The budget file's name at the bundle root.
pub const BUDGETS_FILE: &str = "budgets.toml";

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct BudgetsFile {
    tenant: Option<Limits>,
    #[serde(default)]
    teams: BTreeMap<String, Limits>,
    /// Limits of every agent that has no entry of its own under `[agents]`.
    agent_default: Option<Limits>,
    #[serde(default)]
    agents: BTreeMap<String, Limits>,
}

/// Limits at one scope; every field is optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub tokens_per_day: Option<u64>,
    pub tokens_per_month: Option<u64>,
    pub cost_usd_per_day: Option<f64>,
    pub cost_usd_per_month: Option<f64>,
    /// Policy checks per rolling minute (agents only).
    pub checks_per_minute: Option<u32>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Agent,
    Team,
    Tenant,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Agent => "agent",
            Scope::Team => "team",
            Scope::Tenant => "tenant",
        }
    }
}

/// Budget windows are calendar periods in UTC.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Month,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Tokens,
    CostUsd,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Tokens => "tokens",
            Metric::CostUsd => "cost_usd",
        }
    }
}

/// One limit that applies to a request: e.g. the billing team's cost per day.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetLine {
    pub scope: Scope,
    pub scope_id: String,
    pub period: Period,
    pub metric: Metric,
    pub limit: f64,
}

/// Spend so far in one counter.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub tokens: u64,
    pub cost_usd: f64,
}

impl Usage {
    fn get(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Tokens => self.tokens as f64,
            Metric::CostUsd => self.cost_usd,
        }
    }
}

/// A budget line with its spend, as `policy_check` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BudgetState {
    pub scope: Scope,
    /// Agent id, team name or tenant.
    pub scope_id: String,
    pub period: Period,
    pub metric: Metric,
    pub limit: f64,
    /// Spent in the current period, before this request.
    pub used: f64,
    /// What the request says it will spend (0 if it did not say).
    pub estimate: f64,
    /// `used + estimate` is over the limit, or `used` already reached it.
    pub exceeded: bool,
}

impl BudgetState {
    /// The name Cedar sees in `context.budget_exceeded`, e.g. `team:day:cost_usd`.
    pub fn key(&self) -> String {
        format!(
            "{}:{}:{}",
            self.scope.as_str(),
            self.period.as_str(),
            self.metric.as_str()
        )
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{BUDGETS_FILE}: {0}")]
pub struct BudgetConfigError(String);

/// The parsed budget file; empty (no limits) when the bundle has none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetConfig {
    file: BudgetsFile,
}

impl BudgetConfig {
    pub fn from_toml(text: &str) -> Result<BudgetConfig, BudgetConfigError> {
        let file: BudgetsFile =
            toml::from_str(text).map_err(|e| BudgetConfigError(e.to_string()))?;
        let mut scopes: Vec<(String, &Limits)> = Vec::new();
        scopes.extend(file.tenant.iter().map(|l| ("[tenant]".to_string(), l)));
        scopes.extend(file.teams.iter().map(|(t, l)| (format!("[teams.{t}]"), l)));
        for (name, limits) in &scopes {
            if limits.checks_per_minute.is_some() {
                return Err(BudgetConfigError(format!(
                    "{name}: checks_per_minute is a per-agent rate limit; \
                     set it under [agent_default] or [agents.<id>]"
                )));
            }
        }
        scopes.extend(
            file.agent_default
                .iter()
                .map(|l| ("[agent_default]".to_string(), l)),
        );
        scopes.extend(
            file.agents
                .iter()
                .map(|(a, l)| (format!("[agents.{a}]"), l)),
        );
        for (name, limits) in &scopes {
            for (field, value) in [
                ("cost_usd_per_day", limits.cost_usd_per_day),
                ("cost_usd_per_month", limits.cost_usd_per_month),
            ] {
                if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
                    return Err(BudgetConfigError(format!(
                        "{name}: {field} must be a finite number ≥ 0"
                    )));
                }
            }
            if limits.checks_per_minute == Some(0) {
                return Err(BudgetConfigError(format!(
                    "{name}: checks_per_minute = 0 would refuse every check; expected ≥ 1"
                )));
            }
        }
        Ok(BudgetConfig { file })
    }

    /// Team names the file sets limits for (the bundle checks they exist in `org.toml`).
    pub fn team_names(&self) -> impl Iterator<Item = &str> {
        self.file.teams.keys().map(String::as_str)
    }

    fn agent_limits(&self, agent_id: &str) -> Option<&Limits> {
        self.file
            .agents
            .get(agent_id)
            .or(self.file.agent_default.as_ref())
    }

    /// The agent's rate limit in checks per rolling minute, if any.
    pub fn checks_per_minute(&self, agent_id: &str) -> Option<u32> {
        self.agent_limits(agent_id)
            .and_then(|l| l.checks_per_minute)
    }

    /// Every budget that applies to an agent at its place in the organisation.
    pub fn lines_for(
        &self,
        tenant: &str,
        agent_id: &str,
        placement: &Placement<'_>,
    ) -> Vec<BudgetLine> {
        let mut lines = Vec::new();
        let mut push = |scope: Scope, scope_id: &str, limits: &Limits| {
            let candidates = [
                (
                    Period::Day,
                    Metric::Tokens,
                    limits.tokens_per_day.map(|v| v as f64),
                ),
                (
                    Period::Month,
                    Metric::Tokens,
                    limits.tokens_per_month.map(|v| v as f64),
                ),
                (Period::Day, Metric::CostUsd, limits.cost_usd_per_day),
                (Period::Month, Metric::CostUsd, limits.cost_usd_per_month),
            ];
            for (period, metric, limit) in candidates {
                if let Some(limit) = limit {
                    lines.push(BudgetLine {
                        scope,
                        scope_id: scope_id.to_string(),
                        period,
                        metric,
                        limit,
                    });
                }
            }
        };
        if let Some(limits) = self.agent_limits(agent_id) {
            push(Scope::Agent, agent_id, limits);
        }
        if let Some(team) = placement.team
            && let Some(limits) = self.file.teams.get(team)
        {
            push(Scope::Team, team, limits);
        }
        if let Some(limits) = &self.file.tenant {
            push(Scope::Tenant, tenant, limits);
        }
        lines
    }

    pub fn is_empty(&self) -> bool {
        self.file == BudgetsFile::default()
    }
}

/// Compares spend (plus what the request says it will spend) with each line.
pub fn assess(
    lines: &[BudgetLine],
    usage: impl Fn(Scope, &str, Period) -> Usage,
    estimate: Usage,
) -> Vec<BudgetState> {
    lines
        .iter()
        .map(|line| {
            let used = usage(line.scope, &line.scope_id, line.period).get(line.metric);
            let estimate = estimate.get(line.metric);
            BudgetState {
                scope: line.scope,
                scope_id: line.scope_id.clone(),
                period: line.period,
                metric: line.metric,
                limit: line.limit,
                used,
                estimate,
                exceeded: used >= line.limit || used + estimate > line.limit,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        [tenant]
        cost_usd_per_month = 1000.0
        [teams.billing]
        cost_usd_per_day = 50.0
        [agent_default]
        tokens_per_day = 100000
        checks_per_minute = 600
        [agents.billing-bot]
        cost_usd_per_day = 10.0
        checks_per_minute = 60
    "#;

    fn config() -> BudgetConfig {
        BudgetConfig::from_toml(FILE).expect("the test file parses")
    }

    #[test]
    fn lines_follow_the_agent_team_and_tenant() {
        let placement = Placement {
            team: Some("billing"),
            region: Some("eu"),
        };
        let lines = config().lines_for("acme", "billing-bot", &placement);
        let keys: Vec<String> = lines
            .iter()
            .map(|l| {
                format!(
                    "{}:{}:{}:{}",
                    l.scope.as_str(),
                    l.scope_id,
                    l.period.as_str(),
                    l.metric.as_str()
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                "agent:billing-bot:day:cost_usd",
                "team:billing:day:cost_usd",
                "tenant:acme:month:cost_usd"
            ]
        );
        // An agent without an entry gets the default; with no team, no team line.
        let lines = config().lines_for("acme", "other", &Placement::default());
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].metric, Metric::Tokens);
        assert_eq!(config().checks_per_minute("billing-bot"), Some(60));
        assert_eq!(config().checks_per_minute("other"), Some(600));
    }

    #[test]
    fn spend_plus_estimate_over_the_limit_is_exceeded() {
        let placement = Placement {
            team: Some("billing"),
            region: Some("eu"),
        };
        let lines = config().lines_for("acme", "billing-bot", &placement);
        let usage = |scope: Scope, _: &str, _: Period| match scope {
            Scope::Agent => Usage {
                tokens: 0,
                cost_usd: 9.5,
            },
            _ => Usage::default(),
        };
        let fits = assess(
            &lines,
            usage,
            Usage {
                tokens: 0,
                cost_usd: 0.4,
            },
        );
        assert!(fits.iter().all(|s| !s.exceeded));
        let over = assess(
            &lines,
            usage,
            Usage {
                tokens: 0,
                cost_usd: 0.6,
            },
        );
        let exceeded: Vec<String> = over
            .iter()
            .filter(|s| s.exceeded)
            .map(BudgetState::key)
            .collect();
        assert_eq!(exceeded, ["agent:day:cost_usd"]);
    }

    #[test]
    fn misplaced_or_impossible_limits_are_rejected() {
        for (text, expected) in [
            ("[tenant]\nchecks_per_minute = 5\n", "per-agent rate limit"),
            (
                "[agents.a]\ncost_usd_per_day = -1.0\n",
                "[agents.a]: cost_usd_per_day",
            ),
            ("[agents.a]\nchecks_per_minute = 0\n", "expected ≥ 1"),
            ("[agent]\ntokens_per_day = 5\n", "unknown field"),
        ] {
            let err = BudgetConfig::from_toml(text)
                .map(|_| ())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
