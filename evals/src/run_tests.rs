use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::target::{ChatMessage, TargetFuture};

/// An in-process target: answers the item id after `delay_ms` (per item id: "slow-*" waits
/// 10 s), fails ids starting with "bad", counts calls and the most calls at once.
#[derive(Default)]
struct Scripted {
    calls: AtomicUsize,
    now: AtomicUsize,
    max: AtomicUsize,
    seen: Mutex<Vec<String>>,
}

impl Target for Scripted {
    fn identity(&self) -> String {
        "scripted".into()
    }
    fn complete<'a>(&'a self, request: &'a ChatRequest) -> TargetFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.max.fetch_max(now, Ordering::SeqCst);
            if let Ok(mut seen) = self.seen.lock() {
                seen.push(request.item_id.clone());
            }
            let wait = if request.item_id.starts_with("slow") {
                10_000
            } else {
                10
            };
            tokio::time::sleep(Duration::from_millis(wait)).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            if request.item_id.starts_with("bad") {
                return Err(TargetError::Decode("bad item".into()));
            }
            Ok(Output {
                text: request.item_id.clone(),
                input_tokens: 3,
                output_tokens: 2,
                cost_usd: 0.5,
                ..Default::default()
            })
        })
    }
}

fn requests(ids: &[&str]) -> Vec<ChatRequest> {
    ids.iter()
        .map(|id| ChatRequest {
            item_id: (*id).into(),
            messages: vec![ChatMessage::new("user", format!("q {id}"))],
            ..Default::default()
        })
        .collect()
}

fn config(concurrency: usize) -> RunConfig {
    RunConfig {
        concurrency,
        timeout: Duration::from_secs(60),
        retry: RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        },
        reorder_window: 8,
    }
}

#[tokio::test(start_paused = true)]
async fn results_in_input_order_with_totals_and_progress() {
    let target = Arc::new(Scripted::default());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_in = seen.clone();
    let runner = Runner::new(target.clone(), config(4)).with_progress(Arc::new(move |p| {
        if let Ok(mut s) = seen_in.lock() {
            s.push(p)
        }
    }));
    let ids = ["slow-0", "a", "bad-b", "c", "d", "e"];
    let mut out = Vec::new();
    let summary = runner
        .run(requests(&ids), &mut out)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<_> = out.iter().map(|r| r.item_id.as_str()).collect();
    assert_eq!(got, ids);
    assert!(out.iter().enumerate().all(|(i, r)| r.index == i));
    assert!(matches!(out[2].outcome, Err(TargetError::Decode(_))));
    assert_eq!(summary.succeeded, 5);
    assert_eq!(summary.failed, 1);
    assert_eq!(summary.input_tokens, 15);
    assert_eq!(summary.cost_usd, 2.5);
    assert_eq!(summary.attempts, 6);
    assert!(target.max.load(Ordering::SeqCst) <= 4);
    let progress = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(progress.len(), 6);
    assert_eq!(
        progress.last().copied(),
        Some(Progress {
            done: 6,
            total: 6,
            failed: 1
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_item_holds_back_at_most_the_window() {
    let target = Arc::new(Scripted::default());
    let runner = Runner::new(target.clone(), config(2));
    let mut ids = vec!["slow-0".to_string()];
    ids.extend((1..40).map(|i| format!("i{i}")));
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut sink = FnSink(|_| Ok(()));
    let run = runner.run(requests(&refs), &mut sink);
    let summary = tokio::select! {
        s = run => s,
        _ = tokio::time::sleep(Duration::from_secs(5)) => {
            // Five seconds in, the slow item is still pending: only the window was started.
            let started = target.calls.load(Ordering::SeqCst);
            assert_eq!(started, 8, "window of 8 items past the oldest unfinished one");
            return;
        }
    };
    panic!("finished too early: {summary:?}");
}

#[tokio::test(start_paused = true)]
async fn cancellation_ends_in_flight_items_in_order() {
    let target = Arc::new(Scripted::default());
    let cancel = CancellationToken::new();
    let runner = Runner::new(target.clone(), config(2)).with_cancel(cancel.clone());
    let mut ids = vec!["a".to_string(), "slow-b".to_string()];
    ids.extend((0..30).map(|i| format!("i{i}")));
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        trigger.cancel();
    });
    let mut out = Vec::new();
    let summary = runner
        .run(requests(&ids), &mut out)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(summary.cancelled);
    assert!(summary.finished < ids.len());
    assert_eq!(out.len(), summary.finished);
    assert!(out.iter().enumerate().all(|(i, r)| r.index == i));
    assert_eq!(out[1].outcome, Err(TargetError::Cancelled));
}

#[tokio::test(start_paused = true)]
async fn the_cache_answers_identical_requests() {
    let target = Arc::new(Scripted::default());
    let cache = Arc::new(Cache::in_memory(100));
    let runner = Runner::new(target.clone(), config(4)).with_cache(cache.clone());
    let ids = ["a", "b", "bad-c"];
    let first = runner
        .run(requests(&ids), &mut FnSink(|_| Ok(())))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.cached, 0);
    let mut out = Vec::new();
    let second = runner
        .run(requests(&ids), &mut out)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Failures are not cached: only bad-c is asked again.
    assert_eq!(target.calls.load(Ordering::SeqCst), 4);
    assert_eq!(second.cached, 2);
    assert_eq!(second.input_tokens, 0);
    assert!(out[0].cached && out[0].attempts == 0);
    assert_eq!(out[0].output().map(|o| o.text.as_str()), Some("a"));
}

#[tokio::test]
async fn a_failing_sink_stops_the_run() {
    let target = Arc::new(Scripted::default());
    let runner = Runner::new(target, config(1));
    let mut n = 0;
    let result = runner
        .run(
            requests(&["a", "b", "c"]),
            &mut FnSink(|_| {
                n += 1;
                if n == 2 {
                    Err(SinkError("disk full".into()))
                } else {
                    Ok(())
                }
            }),
        )
        .await;
    assert!(matches!(result, Err(RunError::Sink(SinkError(m))) if m == "disk full"));
}

#[test]
fn seeded_sample_is_stable_and_uniformish() {
    let a = seeded_sample(1000, 10, 42);
    assert_eq!(a, seeded_sample(1000, 10, 42));
    assert_ne!(a, seeded_sample(1000, 10, 43));
    assert_eq!(a.len(), 10);
    assert!(a.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(seeded_sample(5, 9, 1), vec![0, 1, 2, 3, 4]);
    // Pinned: a change of algorithm changes every seeded suite's sample.
    assert_eq!(seeded_sample(20, 4, 7), vec![2, 7, 14, 15]);
    let mut counts = [0usize; 10];
    for seed in 0..5000 {
        for i in seeded_sample(10, 3, seed) {
            counts[i] += 1;
        }
    }
    // Each index is drawn with probability 3/10: 1500 expected out of 5000.
    assert!(
        counts.iter().all(|&c| (1350..1650).contains(&c)),
        "{counts:?}"
    );
}

/// The service spawns runs and judge calls on tokio: their futures must be `Send`.
#[test]
fn run_and_judge_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let runner = Runner::new(Arc::new(Scripted::default()), config(1));
    let mut sink = Vec::new();
    let run = runner.run(requests(&["a"]), &mut sink);
    assert_send(&run);
    let mut channel = tokio::sync::mpsc::channel::<ItemResult>(1).0;
    let run = runner.run(requests(&["a"]), &mut channel);
    assert_send(&run);
    let judge = crate::judge_client::JudgeClient::new(crate::judge_client::JudgeConfig::new(
        crate::target::OpenAiTargetConfig::new("http://127.0.0.1:9/v1", "m"),
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let item = serde_json::json!({});
    let out = Output::default();
    let grade = judge.grade("r", &item, &out, crate::judge_client::Scale::Unit);
    assert_send(&grade);
    let compare = judge.compare("r", &item, &out, &out);
    assert_send(&compare);
}
