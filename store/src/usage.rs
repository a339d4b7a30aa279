//! Spend counters behind token and cost budgets: tokens and micro-dollars per
//! (scope, scope id, period), where a period is a UTC day (`2026-11-22`) or month (`2026-11`).
//! Which scopes an event counts towards (agent, team, tenant) is the caller's business; the
//! store only adds and reads.

use std::fmt::Write as _;
use std::sync::Arc;

use sqlx::{AssertSqlSafe, Row};

use crate::budget::{CounterState, SpendChange, counter_state};
use crate::group_commit::Append;
use crate::{Store, StoreError};

/// One counter's key: scope (`agent`, `team`, `tenant`), its id, and the period.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UsageKey {
    pub scope: String,
    pub scope_id: String,
    pub period: String,
}

/// Spend to add to the day and month counters of some scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageIncrement {
    /// `(scope, scope_id)` pairs the spend counts towards.
    pub scopes: Vec<(String, String)>,
    pub at_ms: i64,
    pub tokens: i64,
    pub cost_micro_usd: i64,
}

/// The UTC day and month periods of an instant, as counters are keyed.
pub fn usage_periods(at_ms: i64) -> [String; 2] {
    let at = chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
    [
        at.format("%Y-%m-%d").to_string(),
        at.format("%Y-%m").to_string(),
    ]
}

impl Store {
    /// Adds spend to its counters, all in one transaction.
    pub async fn add_usage(
        &self,
        tenant: &str,
        increments: &[UsageIncrement],
    ) -> Result<(), StoreError> {
        self.writer
            .submit(Append {
                spend: Some(SpendChange {
                    tenant: tenant.to_string(),
                    increments: increments.to_vec(),
                    settle: Vec::new(),
                }),
                ..Append::default()
            })
            .await
            .map(|_| ())
    }

    /// Tokens and micro-dollars spent on each requested counter (zero when nothing was spent).
    pub async fn usage(
        &self,
        tenant: &str,
        keys: &[UsageKey],
    ) -> Result<Vec<(UsageKey, i64, i64)>, StoreError> {
        Ok(self
            .counters(tenant, keys)
            .await?
            .into_iter()
            .map(|(key, c)| (key, c.tokens, c.cost_micro_usd))
            .collect())
    }

    /// What a policy check reads from storage, in one round trip: the tenant's active healer
    /// controls (when `controls`) and the requested counters, both queries at once — or none,
    /// when they are kept in memory and fresh (see `facts_cache`).
    pub async fn check_facts(
        &self,
        tenant: &str,
        controls: bool,
        keys: &[UsageKey],
    ) -> Result<
        (
            Arc<Vec<crate::StoredControl>>,
            Vec<(UsageKey, CounterState)>,
        ),
        StoreError,
    > {
        let controls = async {
            if !controls {
                return Ok(Arc::new(Vec::new()));
            }
            match self.facts.controls(tenant) {
                Ok(kept) => Ok(kept),
                Err(ticket) => {
                    let read = Arc::new(self.active_controls(Some(tenant)).await?);
                    self.facts.keep_controls(tenant, ticket, read.clone());
                    Ok(read)
                }
            }
        };
        let counters = async {
            let (mut found, ticket) = self.facts.counters(tenant, keys);
            let missing: Vec<UsageKey> = keys
                .iter()
                .zip(&found)
                .filter(|(_, f)| f.is_none())
                .map(|(k, _)| k.clone())
                .collect();
            if !missing.is_empty() {
                let read = self.counters(tenant, &missing).await?;
                self.facts.keep_counters(tenant, ticket, &read);
                let mut read = read.into_iter();
                for slot in found.iter_mut().filter(|f| f.is_none()) {
                    *slot = read.next().map(|(_, state)| state);
                }
            }
            Ok::<_, StoreError>(
                keys.iter()
                    .cloned()
                    .zip(found)
                    .map(|(k, f)| (k, f.unwrap_or_default()))
                    .collect::<Vec<_>>(),
            )
        };
        tokio::try_join!(controls, counters)
    }

    /// Each requested counter's spend and open reservations (zero when there are none).
    pub async fn counters(
        &self,
        tenant: &str,
        keys: &[UsageKey],
    ) -> Result<Vec<(UsageKey, CounterState)>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for all the counters: every policy check asks for several (agent,
        // team, tenant × day, month), and on SQLite each statement is a round trip to the
        // connection's thread plus a pool acquire and release — far more than the lookups.
        let mut sql = String::from(
            "SELECT scope, scope_id, period, tokens, cost_micro_usd, reserved_tokens, \
             reserved_micro_usd FROM usage_counters WHERE tenant = $1 AND (",
        );
        for i in 0..keys.len() {
            let n = 2 + 3 * i;
            let or = if i == 0 { "" } else { " OR " };
            let _ = write!(
                sql,
                "{or}(scope = ${n} AND scope_id = ${} AND period = ${})",
                n + 1,
                n + 2
            );
        }
        sql.push(')');
        // Built from constants and counters only; every value is a bind parameter.
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant);
        for key in keys {
            query = query.bind(&key.scope).bind(&key.scope_id).bind(&key.period);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut found = Vec::with_capacity(rows.len());
        for r in &rows {
            let key = UsageKey {
                scope: r.try_get("scope")?,
                scope_id: r.try_get("scope_id")?,
                period: r.try_get("period")?,
            };
            found.push((key, counter_state(r)?));
        }
        Ok(keys
            .iter()
            .map(|key| {
                let state = found
                    .iter()
                    .find(|(k, _)| k == key)
                    .map_or(CounterState::default(), |(_, c)| *c);
                (key.clone(), state)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_utc_day_and_month() {
        // 2026-11-22T23:59:59.999Z
        let at = 1_795_391_999_999;
        assert_eq!(
            usage_periods(at),
            ["2026-11-22".to_string(), "2026-11".to_string()]
        );
        assert_eq!(usage_periods(at + 1)[0], "2026-11-23");
    }
}
