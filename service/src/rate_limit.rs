//! Per-agent rate limits on policy checks: a sliding one-minute log per (tenant, agent).
//!
//! Kept in memory: a limit protects this process from a runaway agent, and a restart that
//! forgets the last minute is harmless. With several replicas each enforces its own share.
//! Only admitted checks enter the log, so a throttled agent regains capacity as its earlier
//! checks age out instead of staying locked out while it retries.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

const WINDOW_MS: i64 = 60_000;
/// Past this many tracked agents, idle logs are swept so memory stays bounded.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Default)]
pub struct RateLimiter {
    logs: Mutex<HashMap<(String, String), VecDeque<i64>>>,
}

/// What one check saw: the agent's checks in the last minute (this one included if it was
/// admitted) and whether it is over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateCheck {
    pub checks_last_minute: u32,
    pub exceeded: bool,
}

impl RateLimiter {
    pub fn new() -> RateLimiter {
        RateLimiter::default()
    }

    /// Counts a check of `agent` at `now_ms` against `limit` checks per minute.
    pub fn admit(&self, tenant: &str, agent: &str, limit: u32, now_ms: i64) -> RateCheck {
        // A poisoned lock only means another check panicked mid-update; the log is still a
        // list of timestamps, so keep going rather than fail every later check.
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        if logs.len() > SWEEP_ABOVE {
            logs.retain(|_, log| log.back().is_some_and(|&t| now_ms - t < WINDOW_MS));
        }
        let log = logs
            .entry((tenant.to_string(), agent.to_string()))
            .or_default();
        while log.front().is_some_and(|&t| now_ms - t >= WINDOW_MS) {
            log.pop_front();
        }
        let seen = u32::try_from(log.len()).unwrap_or(u32::MAX);
        if seen >= limit {
            return RateCheck {
                checks_last_minute: seen.saturating_add(1),
                exceeded: true,
            };
        }
        log.push_back(now_ms);
        RateCheck {
            checks_last_minute: seen + 1,
            exceeded: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_holds_per_agent_and_frees_up_as_checks_age_out() {
        let limiter = RateLimiter::new();
        for i in 0..3 {
            let r = limiter.admit("acme", "bot", 3, 1_000 + i);
            assert!(!r.exceeded);
            assert_eq!(r.checks_last_minute, i as u32 + 1);
        }
        assert!(limiter.admit("acme", "bot", 3, 1_010).exceeded);
        // Another agent, or the same name in another tenant, has its own log.
        assert!(!limiter.admit("acme", "other", 3, 1_010).exceeded);
        assert!(!limiter.admit("globex", "bot", 3, 1_010).exceeded);
        // A minute after the first check, one slot is free again.
        assert!(!limiter.admit("acme", "bot", 3, 61_000).exceeded);
        assert!(limiter.admit("acme", "bot", 3, 61_000).exceeded);
    }
}
