//! Attempts, timeouts and backoff for one call: the only retry logic of the crate (targets make
//! one attempt per call, async-openai's own retries are off).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::millis;
use crate::target::TargetError;

/// When and how long to wait before another attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retries).
    pub max_attempts: u32,
    /// The first backoff; each retry doubles it.
    #[serde(with = "millis")]
    pub base_delay: Duration,
    /// The most a computed backoff waits.
    #[serde(with = "millis")]
    pub max_delay: Duration,
    /// The most a server's `Retry-After` makes us wait (a longer ask waits this long).
    #[serde(with = "millis")]
    pub max_retry_after: Duration,
    /// Whether an attempt that timed out is tried again.
    pub retry_timeouts: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
            retry_timeouts: true,
        }
    }
}

impl RetryPolicy {
    /// Whether `error`, after `attempts` attempts, is worth another.
    pub fn should_retry(&self, error: &TargetError, attempts: u32) -> bool {
        attempts < self.max_attempts
            && (error.is_retryable()
                || (self.retry_timeouts && matches!(error, TargetError::Timeout(_))))
    }

    /// The wait before attempt `attempts + 1`: the server's `Retry-After` (capped by
    /// `max_retry_after`) when it sent one, else exponential backoff with jitter — a uniform
    /// draw in [d/2, d] for d = min(max_delay, base_delay · 2^(attempts-1)).
    pub fn delay(&self, attempts: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(self.max_retry_after);
        }
        let exp = attempts.saturating_sub(1).min(30);
        let full = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        full.mul_f64(0.5 + 0.5 * jitter())
    }
}

/// Runs `attempt` until it succeeds, fails for good, runs out of attempts or `cancel` fires;
/// each attempt is cut off after `timeout`. Returns the outcome and the attempts made.
pub async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    timeout: Duration,
    cancel: &CancellationToken,
    mut attempt: F,
) -> (Result<T, TargetError>, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, TargetError>>,
{
    let mut attempts = 0u32;
    loop {
        if cancel.is_cancelled() {
            return (Err(TargetError::Cancelled), attempts);
        }
        attempts += 1;
        let result = tokio::select! {
            biased;
            _ = cancel.cancelled() => return (Err(TargetError::Cancelled), attempts),
            r = tokio::time::timeout(timeout, attempt()) => r.unwrap_or(Err(TargetError::Timeout(timeout))),
        };
        let error = match result {
            Ok(value) => return (Ok(value), attempts),
            Err(error) => error,
        };
        if !policy.should_retry(&error, attempts) {
            return (Err(error), attempts);
        }
        let wait = policy.delay(attempts, error.retry_after());
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return (Err(TargetError::Cancelled), attempts),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// A number in [0, 1) for jitter: splitmix64 over a process-wide counter seeded from the clock.
/// Not for anything but spreading retries.
fn jitter() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut seed = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    if seed == 0 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        STATE.store(now | 1, Ordering::Relaxed);
        seed = now;
    }
    (super::splitmix64(seed) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..Default::default()
        };
        for _ in 0..100 {
            let d1 = p.delay(1, None);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = p.delay(3, None);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d9 = p.delay(9, None);
            assert!(d9 >= Duration::from_millis(500) && d9 <= Duration::from_millis(1000));
        }
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(600))),
            p.max_retry_after
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_then_gives_up() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..Default::default()
        };
        let cancel = CancellationToken::new();
        let mut calls = 0;
        let (result, attempts) = with_retries(&policy, Duration::from_secs(1), &cancel, || {
            calls += 1;
            std::future::ready(Err::<(), _>(TargetError::Status {
                status: 503,
                retry_after: None,
                body: String::new(),
            }))
        })
        .await;
        assert_eq!(attempts, 3);
        assert_eq!(calls, 3);
        assert!(matches!(
            result,
            Err(TargetError::Status { status: 503, .. })
        ));

        // A permanent error is not retried.
        let (result, attempts) = with_retries(&policy, Duration::from_secs(1), &cancel, || {
            std::future::ready(Err::<(), _>(TargetError::Decode("x".into())))
        })
        .await;
        assert_eq!(attempts, 1);
        assert!(result.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_and_cancels() {
        let policy = RetryPolicy {
            max_attempts: 2,
            ..Default::default()
        };
        let cancel = CancellationToken::new();
        let (result, attempts) =
            with_retries(&policy, Duration::from_millis(10), &cancel, || async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok::<(), TargetError>(())
            })
            .await;
        assert_eq!(attempts, 2);
        assert_eq!(result, Err(TargetError::Timeout(Duration::from_millis(10))));

        cancel.cancel();
        let (result, _) = with_retries(&policy, Duration::from_secs(1), &cancel, || async {
            Ok::<(), TargetError>(())
        })
        .await;
        assert_eq!(result, Err(TargetError::Cancelled));
    }
}
