//! Budget reservations: spend that is promised but not yet reported.
//!
//! Checking a limit against spend counted after the fact lets concurrent agents overshoot it:
//! each sees the same spent total, each is allowed, all spend. Here a policy check that carries
//! an estimate *reserves* it on every counter a budget line reads, in the same transaction that
//! checks `spent + reserved + estimate ≤ limit` under the counter row's lock (PostgreSQL) or
//! the database write lock (SQLite); concurrent checks therefore see each other's reservations
//! and at most the limit is promised. The agent's event later *settles*: its actual spend is
//! added and the reservation released, in the transaction that stores the event. A reservation
//! nobody settles expires ([`crate::Store::expire_reservations`]).
//!
//! Everything here runs inside a transaction the caller owns (the group-commit writer's, see
//! `group_commit.rs`), so a reservation, a settlement and the rows they belong to commit or
//! roll back together.

use std::collections::BTreeMap;

use sqlx::{Any, Row as _};

use crate::{StoreError, UsageIncrement, UsageKey, corrupt, usage_periods};

type Tx<'a, 'c> = &'a mut sqlx::Transaction<'c, Any>;

/// A counter's state: what was spent and what is reserved but not yet settled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterState {
    pub tokens: i64,
    pub cost_micro_usd: i64,
    pub reserved_tokens: i64,
    pub reserved_micro_usd: i64,
}

impl CounterState {
    /// Spent plus reserved: what a new estimate must fit next to.
    pub fn held_tokens(&self) -> i64 {
        self.tokens.saturating_add(self.reserved_tokens)
    }

    pub fn held_micro_usd(&self) -> i64 {
        self.cost_micro_usd.saturating_add(self.reserved_micro_usd)
    }
}

/// One counter a reservation must fit under, with the limits that read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageLimit {
    pub key: UsageKey,
    pub max_tokens: Option<i64>,
    pub max_micro_usd: Option<i64>,
}

/// An estimate to reserve for one policy check. Its id is the decision's id, so the agent's
/// event can name what it settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: String,
    pub agent_id: String,
    pub tokens: i64,
    pub cost_micro_usd: i64,
    pub limits: Vec<UsageLimit>,
    pub at_ms: i64,
    pub expires_at_ms: i64,
}

/// Whether a reservation was made; when not, which counters it would have passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReservationOutcome {
    Reserved,
    Refused { over: Vec<UsageKey> },
}

/// Which reservation an event's spend settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// The reservation made for this decision id (the event named it).
    Decision(String),
    /// The agent's oldest open reservation (the event named none).
    OldestOf(String),
}

/// Spend to count and reservations to release, committed with the rows they belong to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpendChange {
    pub tenant: String,
    pub increments: Vec<UsageIncrement>,
    pub settle: Vec<Settle>,
}

impl SpendChange {
    pub fn is_empty(&self) -> bool {
        self.settle.is_empty()
            && self
                .increments
                .iter()
                .all(|i| i.tokens == 0 && i.cost_micro_usd == 0)
    }
}

/// Per counter: tokens and micro-dollars to add (or take away).
type Deltas = BTreeMap<UsageKey, (i64, i64)>;

/// Applies a spend change: releases what it settles, then adds the spend.
pub(crate) async fn apply_spend(tx: Tx<'_, '_>, change: &SpendChange) -> Result<(), StoreError> {
    let tenant = change.tenant.as_str();
    let mut released: Deltas = BTreeMap::new();
    let mut oldest: BTreeMap<&str, i64> = BTreeMap::new();
    for s in &change.settle {
        match s {
            Settle::Decision(id) => {
                let rows = sqlx::query(
                    "DELETE FROM usage_reservations WHERE tenant = $1 AND id = $2 \
                     RETURNING keys, tokens, cost_micro_usd",
                )
                .bind(tenant)
                .bind(id)
                .fetch_all(&mut **tx)
                .await?;
                add_released(&rows, &mut released)?;
            }
            Settle::OldestOf(agent) => *oldest.entry(agent.as_str()).or_default() += 1,
        }
    }
    // One statement per agent, however many of its events arrive together.
    for (agent, n) in oldest {
        let rows = sqlx::query(
            "DELETE FROM usage_reservations WHERE tenant = $1 AND id IN (SELECT id FROM \
             usage_reservations WHERE tenant = $2 AND agent_id = $3 \
             ORDER BY created_at_ms, id LIMIT $4) RETURNING keys, tokens, cost_micro_usd",
        )
        .bind(tenant)
        .bind(tenant)
        .bind(agent)
        .bind(n)
        .fetch_all(&mut **tx)
        .await?;
        add_released(&rows, &mut released)?;
    }
    release_counters(tx, tenant, &released).await?;

    let mut spent: Deltas = BTreeMap::new();
    for inc in &change.increments {
        if inc.tokens == 0 && inc.cost_micro_usd == 0 {
            continue;
        }
        for period in usage_periods(inc.at_ms) {
            for (scope, scope_id) in &inc.scopes {
                let d = spent
                    .entry(UsageKey {
                        scope: scope.clone(),
                        scope_id: scope_id.clone(),
                        period: period.clone(),
                    })
                    .or_default();
                d.0 = d.0.saturating_add(inc.tokens);
                d.1 = d.1.saturating_add(inc.cost_micro_usd);
            }
        }
    }
    for (key, (tokens, micro)) in spent {
        sqlx::query(
            "INSERT INTO usage_counters (tenant, scope, scope_id, period, tokens, \
             cost_micro_usd) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant, scope, scope_id, period) DO UPDATE SET \
             tokens = usage_counters.tokens + excluded.tokens, \
             cost_micro_usd = usage_counters.cost_micro_usd + excluded.cost_micro_usd",
        )
        .bind(tenant)
        .bind(&key.scope)
        .bind(&key.scope_id)
        .bind(&key.period)
        .bind(tokens)
        .bind(micro)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Reserves `r` if every limit still holds with it; otherwise changes nothing.
pub(crate) async fn reserve(
    tx: Tx<'_, '_>,
    tenant: &str,
    r: &Reservation,
) -> Result<ReservationOutcome, StoreError> {
    let mut keys: Vec<&UsageKey> = r.limits.iter().map(|l| &l.key).collect();
    keys.sort();
    keys.dedup();
    // Counters are locked in sorted order so two writers cannot deadlock on them.
    let mut state: BTreeMap<&UsageKey, CounterState> = BTreeMap::new();
    for key in &keys {
        // An upsert that changes nothing: it creates a missing counter and, on PostgreSQL,
        // locks the row until commit, so no other process reserves against it meanwhile.
        let row = sqlx::query(
            "INSERT INTO usage_counters (tenant, scope, scope_id, period, tokens, \
             cost_micro_usd) VALUES ($1, $2, $3, $4, 0, 0) \
             ON CONFLICT (tenant, scope, scope_id, period) DO UPDATE SET \
             tokens = usage_counters.tokens \
             RETURNING tokens, cost_micro_usd, reserved_tokens, reserved_micro_usd",
        )
        .bind(tenant)
        .bind(&key.scope)
        .bind(&key.scope_id)
        .bind(&key.period)
        .fetch_one(&mut **tx)
        .await?;
        state.insert(key, counter_state(&row)?);
    }
    let mut over: Vec<UsageKey> = Vec::new();
    for limit in &r.limits {
        let s = state.get(&limit.key).copied().unwrap_or_default();
        let too_many = limit
            .max_tokens
            .is_some_and(|max| s.held_tokens().saturating_add(r.tokens) > max);
        let too_costly = limit
            .max_micro_usd
            .is_some_and(|max| s.held_micro_usd().saturating_add(r.cost_micro_usd) > max);
        if (too_many || too_costly) && !over.contains(&limit.key) {
            over.push(limit.key.clone());
        }
    }
    if !over.is_empty() {
        return Ok(ReservationOutcome::Refused { over });
    }
    for key in &keys {
        sqlx::query(
            "UPDATE usage_counters SET reserved_tokens = reserved_tokens + $5, \
             reserved_micro_usd = reserved_micro_usd + $6 \
             WHERE tenant = $1 AND scope = $2 AND scope_id = $3 AND period = $4",
        )
        .bind(tenant)
        .bind(&key.scope)
        .bind(&key.scope_id)
        .bind(&key.period)
        .bind(r.tokens)
        .bind(r.cost_micro_usd)
        .execute(&mut **tx)
        .await?;
    }
    let held: Vec<[&str; 3]> = keys
        .iter()
        .map(|k| [k.scope.as_str(), k.scope_id.as_str(), k.period.as_str()])
        .collect();
    let held = serde_json::to_string(&held).map_err(|e| corrupt("reservation keys", e))?;
    sqlx::query(
        "INSERT INTO usage_reservations (tenant, id, agent_id, keys, tokens, cost_micro_usd, \
         created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant)
    .bind(&r.id)
    .bind(&r.agent_id)
    .bind(held)
    .bind(r.tokens)
    .bind(r.cost_micro_usd)
    .bind(r.at_ms)
    .bind(r.expires_at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(ReservationOutcome::Reserved)
}

/// Releases every reservation that expired at or before `now_ms`; returns how many.
pub(crate) async fn expire(tx: Tx<'_, '_>, now_ms: i64) -> Result<usize, StoreError> {
    let rows = sqlx::query(
        "DELETE FROM usage_reservations WHERE expires_at_ms <= $1 \
         RETURNING tenant, keys, tokens, cost_micro_usd",
    )
    .bind(now_ms)
    .fetch_all(&mut **tx)
    .await?;
    let mut per_tenant: BTreeMap<String, Vec<sqlx::any::AnyRow>> = BTreeMap::new();
    let n = rows.len();
    for row in rows {
        let tenant: String = row.try_get("tenant")?;
        per_tenant.entry(tenant).or_default().push(row);
    }
    for (tenant, rows) in per_tenant {
        let mut released = BTreeMap::new();
        add_released(&rows, &mut released)?;
        release_counters(tx, &tenant, &released).await?;
    }
    Ok(n)
}

pub(crate) fn counter_state(row: &sqlx::any::AnyRow) -> Result<CounterState, StoreError> {
    Ok(CounterState {
        tokens: row.try_get("tokens")?,
        cost_micro_usd: row.try_get("cost_micro_usd")?,
        reserved_tokens: row.try_get("reserved_tokens")?,
        reserved_micro_usd: row.try_get("reserved_micro_usd")?,
    })
}

/// Adds what deleted reservation rows held to `released`, per counter.
fn add_released(rows: &[sqlx::any::AnyRow], released: &mut Deltas) -> Result<(), StoreError> {
    for row in rows {
        let keys: String = row.try_get("keys")?;
        let tokens: i64 = row.try_get("tokens")?;
        let micro: i64 = row.try_get("cost_micro_usd")?;
        let keys: Vec<[String; 3]> =
            serde_json::from_str(&keys).map_err(|e| corrupt("usage_reservations.keys", e))?;
        for [scope, scope_id, period] in keys {
            let d = released
                .entry(UsageKey {
                    scope,
                    scope_id,
                    period,
                })
                .or_default();
            d.0 = d.0.saturating_add(tokens);
            d.1 = d.1.saturating_add(micro);
        }
    }
    Ok(())
}

async fn release_counters(
    tx: Tx<'_, '_>,
    tenant: &str,
    released: &Deltas,
) -> Result<(), StoreError> {
    for (key, (tokens, micro)) in released {
        // Never below zero, whatever happened to the counter meanwhile.
        sqlx::query(
            "UPDATE usage_counters SET \
             reserved_tokens = CASE WHEN reserved_tokens > $5 THEN reserved_tokens - $6 ELSE 0 END, \
             reserved_micro_usd = CASE WHEN reserved_micro_usd > $7 THEN reserved_micro_usd - $8 ELSE 0 END \
             WHERE tenant = $1 AND scope = $2 AND scope_id = $3 AND period = $4",
        )
        .bind(tenant)
        .bind(&key.scope)
        .bind(&key.scope_id)
        .bind(&key.period)
        .bind(*tokens)
        .bind(*tokens)
        .bind(*micro)
        .bind(*micro)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
