//! What every policy check reads — a tenant's active healer controls and its budget counters —
//! kept in memory, so a check does not wait on the database for facts that rarely change.
//!
//! Why: on SQLite each query is a hop to the connection's own thread and back; two reads per
//! check were the largest cost of a `policy_check` after evaluation itself was made cheap.
//!
//! Freshness: this process's own writes invalidate what they change before they are
//! acknowledged (controls set, cleared or changed through this `Store`; counters changed by a
//! committed spend, settlement, reservation or expiry), so a check in this process never sees
//! an older value than its own process wrote. Writes by other processes (another replica, the
//! `meshos incidents` CLI) are seen within [`FRESH_FOR`]. Budgets stay exact regardless: a
//! reservation is checked against the database under the counter's lock, not against this.
//!
//! Races: an entry read from the database is kept only if no invalidation of its tenant
//! happened while it was being read (a per-tenant generation), so a slow read can never put an
//! older value back after a newer write invalidated it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::budget::CounterState;
use crate::{StoredControl, UsageKey};

/// How long a value read from the database is used before it is read again.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// Tenants whose entries are kept; past this the cache starts over, so invented tenant names
/// cannot grow it without bound.
const MAX_TENANTS: usize = 10_000;

/// Counters kept per tenant; past this the tenant's counters start over.
const MAX_COUNTERS_PER_TENANT: usize = 4_096;

#[derive(Default)]
struct TenantFacts {
    /// Bumped by every invalidation of this tenant's facts.
    generation: u64,
    controls: Option<(Instant, Arc<Vec<StoredControl>>)>,
    counters: HashMap<UsageKey, (Instant, CounterState)>,
}

#[derive(Default)]
pub(crate) struct FactsCache {
    tenants: Mutex<HashMap<String, TenantFacts>>,
}

impl std::fmt::Debug for FactsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FactsCache")
    }
}

/// A read that may be kept: the tenant's generation when it started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadTicket(u64);

impl FactsCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, TenantFacts>> {
        match self.tenants.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn tenant<'a>(map: &'a mut HashMap<String, TenantFacts>, tenant: &str) -> &'a mut TenantFacts {
        if !map.contains_key(tenant) && map.len() >= MAX_TENANTS {
            map.clear();
        }
        map.entry(tenant.to_string()).or_default()
    }

    /// The tenant's controls if fresh; otherwise a ticket for the read that refreshes them.
    pub(crate) fn controls(&self, tenant: &str) -> Result<Arc<Vec<StoredControl>>, ReadTicket> {
        let mut map = self.lock();
        let facts = Self::tenant(&mut map, tenant);
        match &facts.controls {
            Some((at, controls)) if at.elapsed() < FRESH_FOR => Ok(controls.clone()),
            _ => Err(ReadTicket(facts.generation)),
        }
    }

    pub(crate) fn keep_controls(
        &self,
        tenant: &str,
        ticket: ReadTicket,
        controls: Arc<Vec<StoredControl>>,
    ) {
        let mut map = self.lock();
        let facts = Self::tenant(&mut map, tenant);
        if facts.generation == ticket.0 {
            facts.controls = Some((Instant::now(), controls));
        }
    }

    /// The fresh counters among `keys` (by position) and a ticket for reading the rest.
    pub(crate) fn counters(
        &self,
        tenant: &str,
        keys: &[UsageKey],
    ) -> (Vec<Option<CounterState>>, ReadTicket) {
        let mut map = self.lock();
        let facts = Self::tenant(&mut map, tenant);
        let found = keys
            .iter()
            .map(|k| match facts.counters.get(k) {
                Some((at, state)) if at.elapsed() < FRESH_FOR => Some(*state),
                _ => None,
            })
            .collect();
        (found, ReadTicket(facts.generation))
    }

    pub(crate) fn keep_counters(
        &self,
        tenant: &str,
        ticket: ReadTicket,
        read: &[(UsageKey, CounterState)],
    ) {
        let mut map = self.lock();
        let facts = Self::tenant(&mut map, tenant);
        if facts.generation != ticket.0 {
            return;
        }
        if facts.counters.len() + read.len() > MAX_COUNTERS_PER_TENANT {
            facts.counters.clear();
        }
        let now = Instant::now();
        for (key, state) in read {
            facts.counters.insert(key.clone(), (now, *state));
        }
    }

    /// Forgets everything kept of the tenant (its controls or counters changed).
    pub(crate) fn invalidate(&self, tenant: &str) {
        let mut map = self.lock();
        if let Some(facts) = map.get_mut(tenant) {
            facts.generation += 1;
            facts.controls = None;
            facts.counters.clear();
        }
    }

    /// Forgets every tenant's counters (reservations of several tenants expired at once).
    pub(crate) fn invalidate_all(&self) {
        let mut map = self.lock();
        for facts in map.values_mut() {
            facts.generation += 1;
            facts.controls = None;
            facts.counters.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> UsageKey {
        UsageKey {
            scope: "agent".into(),
            scope_id: id.into(),
            period: "2026-12-06".into(),
        }
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_kept() {
        let cache = FactsCache::default();
        let (found, ticket) = cache.counters("t", &[key("a")]);
        assert_eq!(found, vec![None]);
        cache.invalidate("t");
        let stale = CounterState {
            tokens: 1,
            ..CounterState::default()
        };
        cache.keep_counters("t", ticket, &[(key("a"), stale)]);
        assert_eq!(cache.counters("t", &[key("a")]).0, vec![None]);

        let (_, ticket) = cache.counters("t", &[key("a")]);
        cache.keep_counters("t", ticket, &[(key("a"), stale)]);
        assert_eq!(cache.counters("t", &[key("a")]).0, vec![Some(stale)]);
        // Another tenant's invalidation leaves this one alone.
        cache.invalidate("u");
        assert_eq!(cache.counters("t", &[key("a")]).0, vec![Some(stale)]);
    }

    #[test]
    fn controls_are_kept_until_invalidated() {
        let cache = FactsCache::default();
        let Err(ticket) = cache.controls("t") else {
            panic!("nothing kept yet");
        };
        cache.keep_controls("t", ticket, Arc::new(Vec::new()));
        assert!(cache.controls("t").is_ok());
        cache.invalidate("t");
        assert!(cache.controls("t").is_err());
    }
}
