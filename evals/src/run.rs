//! Running many requests against one target: at most `concurrency` at once, each attempt cut off
//! after `timeout`, retries with backoff and jitter on 429/5xx/connection errors (and timeouts,
//! by policy) honouring `Retry-After` up to a cap, a cache of identical requests, token and cost
//! totals, progress reports and cancellation.
//!
//! This module owns the order and the memory of a run: results reach the caller's
//! [`ResultSink`] one by one in input order, and the runner holds only the requests in flight and
//! the finished results waiting for an earlier one (at most `reorder_window`), so memory stays
//! flat however many items a run has. It knows nothing of suites, scorers or the store.
//!
//! Calling it (CLI, service, MCP):
//! ```ignore
//! let runner = Runner::new(target, RunConfig::default())
//!     .with_cache(cache)                       // Arc<Cache>, shared between runs
//!     .with_progress(Arc::new(|p: Progress| bar.set_position(p.done as u64)))
//!     .with_cancel(token.clone());             // token.cancel() stops the run
//! let summary = runner.run(requests, &mut sink).await?;   // sink: mpsc::Sender, Vec, FnSink
//! ```

mod cache;
mod retry;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use cache::{
    CACHE_FILE, Cache, CacheError, CacheKey, CacheStats, DEFAULT_MEMORY_ENTRIES, canonical_json,
};
pub use retry::{RetryPolicy, with_retries};

use crate::output::Output;
use crate::target::{ChatRequest, Target, TargetError};

/// How a run calls its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Requests in flight at once (0 is taken as 1).
    pub concurrency: usize,
    /// The limit on one attempt, in milliseconds when written in configuration.
    #[serde(with = "millis")]
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// How far past the oldest unfinished item the runner may start new ones: bounds the
    /// finished results held back to keep input order when one item is slow (at least
    /// `concurrency`).
    pub reorder_window: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            concurrency: 16,
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            reorder_window: 1024,
        }
    }
}

/// What happened to one item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemResult {
    /// Position in the input.
    pub index: usize,
    pub item_id: String,
    /// The answer, or why there is none after the last attempt.
    pub outcome: Result<Output, TargetError>,
    /// Attempts made (0 when answered from the cache or cancelled before starting).
    pub attempts: u32,
    /// Wall time for the item, retries and waits included, in milliseconds.
    pub latency_ms: f64,
    /// Answered from the cache (its tokens and cost are not spent again).
    pub cached: bool,
}

impl ItemResult {
    pub fn output(&self) -> Option<&Output> {
        self.outcome.as_ref().ok()
    }

    pub fn error(&self) -> Option<&TargetError> {
        self.outcome.as_ref().err()
    }
}

/// Where a run is, reported after every finished item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub failed: usize,
}

/// Receives progress. Called from the run's task once per finished item, so it must be cheap
/// (set a bar's position, or store the latest value for a notifier that rate-limits itself).
pub trait ProgressSink: Send + Sync {
    fn progress(&self, progress: Progress);
}

impl<F: Fn(Progress) + Send + Sync> ProgressSink for F {
    fn progress(&self, progress: Progress) {
        self(progress)
    }
}

/// A sink that refused a result; the run stops with [`RunError::Sink`].
#[derive(Debug, thiserror::Error)]
#[error("result sink: {0}")]
pub struct SinkError(pub String);

/// Where results go, in input order. Awaiting the sink holds the run back (backpressure).
pub trait ResultSink: Send {
    fn accept(&mut self, result: ItemResult) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// Collects every result (small runs and tests; holds them all).
impl ResultSink for Vec<ItemResult> {
    fn accept(&mut self, result: ItemResult) -> impl Future<Output = Result<(), SinkError>> + Send {
        self.push(result);
        std::future::ready(Ok(()))
    }
}

/// Sends each result to a channel (the receiver writes them to the store, say).
impl ResultSink for tokio::sync::mpsc::Sender<ItemResult> {
    async fn accept(&mut self, result: ItemResult) -> Result<(), SinkError> {
        self.send(result)
            .await
            .map_err(|_| SinkError("the receiver is gone".into()))
    }
}

/// A synchronous closure as a sink.
pub struct FnSink<F>(pub F);

impl<F> ResultSink for FnSink<F>
where
    F: FnMut(ItemResult) -> Result<(), SinkError> + Send,
{
    fn accept(&mut self, result: ItemResult) -> impl Future<Output = Result<(), SinkError>> + Send {
        std::future::ready((self.0)(result))
    }
}

/// Why a run stopped before its end (item failures are not run errors: they are results).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// The totals of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunSummary {
    /// Items given.
    pub total: usize,
    /// Items with a result (all of them unless cancelled).
    pub finished: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Answered from the cache.
    pub cached: usize,
    /// Attempts made in all (retries included, cache hits excluded).
    pub attempts: u64,
    /// Tokens and cost spent by this run (cache hits spend nothing).
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    /// Writes to the cache that failed (the answers still count).
    pub cache_errors: usize,
    #[serde(with = "millis")]
    pub elapsed: Duration,
    /// The cancellation token fired before the run ended (items not started have no result;
    /// items it cut short failed with [`TargetError::Cancelled`]).
    pub cancelled: bool,
}

/// Runs requests against one target.
pub struct Runner {
    target: Arc<dyn Target>,
    config: RunConfig,
    cache: Option<Arc<Cache>>,
    progress: Option<Arc<dyn ProgressSink>>,
    cancel: CancellationToken,
}

impl Runner {
    pub fn new(target: Arc<dyn Target>, config: RunConfig) -> Self {
        Runner {
            target,
            config,
            cache: None,
            progress: None,
            cancel: CancellationToken::new(),
        }
    }

    /// Answers identical requests from `cache` and stores new answers in it.
    pub fn with_cache(mut self, cache: Arc<Cache>) -> Self {
        self.cache = Some(cache);
        self
    }

    pub fn with_progress(mut self, progress: Arc<dyn ProgressSink>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Cancelling `token` stops the run: nothing new starts, requests in flight and waits
    /// between retries end at once with [`TargetError::Cancelled`], and every started item
    /// still reaches the sink in order.
    pub fn with_cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// Runs every request, handing results to `sink` in input order.
    pub async fn run<I, S>(&self, requests: I, sink: &mut S) -> Result<RunSummary, RunError>
    where
        I: IntoIterator<Item = ChatRequest>,
        I::IntoIter: ExactSizeIterator + Send,
        S: ResultSink,
    {
        let started = Instant::now();
        let requests = requests.into_iter();
        let total = requests.len();
        let mut requests = requests.enumerate();
        let concurrency = self.config.concurrency.max(1);
        let window = self.config.reorder_window.max(concurrency);
        let mut summary = RunSummary {
            total,
            ..Default::default()
        };
        let mut in_flight = FuturesUnordered::new();
        let mut held: BTreeMap<usize, ItemResult> = BTreeMap::new();
        let (mut next_start, mut next_emit) = (0usize, 0usize);
        let (mut done, mut failed) = (0usize, 0usize);
        loop {
            while !self.cancel.is_cancelled()
                && in_flight.len() < concurrency
                && next_start < next_emit + window
            {
                let Some((index, request)) = requests.next() else {
                    break;
                };
                in_flight.push(self.one(index, request));
                next_start += 1;
            }
            let Some((result, cache_error)) = in_flight.next().await else {
                break;
            };
            done += 1;
            failed += usize::from(result.outcome.is_err());
            summary.cache_errors += usize::from(cache_error);
            if let Some(progress) = &self.progress {
                progress.progress(Progress {
                    done,
                    total,
                    failed,
                });
            }
            held.insert(result.index, result);
            while let Some(result) = held.remove(&next_emit) {
                next_emit += 1;
                account(&mut summary, &result);
                sink.accept(result).await?;
            }
        }
        summary.cancelled = self.cancel.is_cancelled();
        summary.elapsed = started.elapsed();
        Ok(summary)
    }

    /// One item: the cache, else attempts until an answer or a final error. Returns whether a
    /// cache write failed beside the result.
    async fn one(&self, index: usize, request: ChatRequest) -> (ItemResult, bool) {
        let started = Instant::now();
        let key = self
            .cache
            .as_ref()
            .map(|_| Cache::key(self.target.as_ref(), &request));
        if let (Some(cache), Some(key)) = (&self.cache, &key)
            && let Ok(Some(output)) = cache.get(key)
        {
            return (
                ItemResult {
                    index,
                    item_id: request.item_id,
                    outcome: Ok(output),
                    attempts: 0,
                    latency_ms: elapsed_ms(started),
                    cached: true,
                },
                false,
            );
        }
        let (outcome, attempts) = with_retries(
            &self.config.retry,
            self.config.timeout,
            &self.cancel,
            || self.target.complete(&request),
        )
        .await;
        let mut cache_error = false;
        if let (Some(cache), Some(key), Ok(output)) = (&self.cache, key, &outcome) {
            cache_error = cache.put(key, output).is_err();
        }
        (
            ItemResult {
                index,
                item_id: request.item_id,
                outcome,
                attempts,
                latency_ms: elapsed_ms(started),
                cached: false,
            },
            cache_error,
        )
    }
}

fn account(summary: &mut RunSummary, result: &ItemResult) {
    summary.finished += 1;
    summary.attempts += u64::from(result.attempts);
    match &result.outcome {
        Ok(output) => {
            summary.succeeded += 1;
            if result.cached {
                summary.cached += 1;
            } else {
                summary.input_tokens += output.input_tokens;
                summary.output_tokens += output.output_tokens;
                summary.cost_usd += output.cost_usd;
            }
        }
        Err(_) => summary.failed += 1,
    }
}

fn elapsed_ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// A uniform sample of `k` distinct indices out of `0..len`, in increasing order, the same for
/// the same `(len, k, seed)` on every platform and version (splitmix64 and a partial
/// Fisher–Yates shuffle; no library generator whose stream may change). `k >= len` gives all.
pub fn seeded_sample(len: usize, k: usize, seed: u64) -> Vec<usize> {
    if k >= len {
        return (0..len).collect();
    }
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(state)
    };
    let mut pool: Vec<usize> = (0..len).collect();
    for i in 0..k {
        // Unbiased draw in [0, len - i) by rejection.
        let span = (len - i) as u64;
        let zone = u64::MAX - u64::MAX % span;
        let draw = loop {
            let r = next();
            if r < zone {
                break r % span;
            }
        };
        pool.swap(i, i + draw as usize);
    }
    pool.truncate(k);
    pool.sort_unstable();
    pool
}

/// The splitmix64 finaliser (Steele, Lea, Flood 2014).
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
