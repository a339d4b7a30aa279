//! Runner throughput and memory against the fake OpenAI-compatible server answering in 50 ms.
//!
//!     cargo bench -p meshos-evals --bench runner_throughput
//!
//! Environment: `EVALS_BENCH_ITEMS` (items of the memory run, default 100000),
//! `EVALS_BENCH_CONCURRENCY` (comma-separated, default 16,32,64), `EVALS_BENCH_DELAY_MS`
//! (default 50). Prints items/s per concurrency with the ideal (concurrency / delay), the CPU
//! used by this process and by the Python server (to show which side limits), then the peak RSS
//! (VmHWM) at checkpoints through the long run.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::FakeServer;
use meshos_evals::run::{FnSink, ItemResult, RetryPolicy, RunConfig, Runner};
use meshos_evals::target::{ChatMessage, ChatRequest, OpenAiTarget, OpenAiTargetConfig, Target};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn requests(n: usize, tag: &'static str) -> impl ExactSizeIterator<Item = ChatRequest> + Send {
    (0..n).map(move |i| ChatRequest {
        item_id: format!("{tag}-{i}"),
        messages: vec![
            ChatMessage::new("system", "Answer in one short sentence."),
            ChatMessage::new(
                "user",
                format!("{tag} question number {i}: what is {i} + {i}?"),
            ),
        ],
        temperature: Some(0.0),
        ..Default::default()
    })
}

/// A field of /proc/self/status in kB.
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: &str) -> f64 {
    let ticks = 100.0; // CLK_TCK on Linux
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / ticks)
        })
        .unwrap_or(0.0)
}

fn config(concurrency: usize) -> RunConfig {
    RunConfig {
        concurrency,
        timeout: Duration::from_secs(30),
        retry: RetryPolicy::default(),
        reorder_window: 1024,
    }
}

async fn measure(
    target: &Arc<dyn Target>,
    server: &FakeServer,
    concurrency: usize,
    n: usize,
    delay_ms: u64,
) {
    server.reset();
    let server_pid = server.pid().to_string();
    let (cpu_self, cpu_server) = (cpu_seconds("self"), cpu_seconds(&server_pid));
    let started = Instant::now();
    let summary = Runner::new(target.clone(), config(concurrency))
        .run(requests(n, "t"), &mut FnSink(|_| Ok(())))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let wall = started.elapsed().as_secs_f64();
    let stats = server.stats();
    let ideal = if delay_ms == 0 {
        f64::INFINITY
    } else {
        concurrency as f64 * 1000.0 / delay_ms as f64
    };
    println!(
        "concurrency {concurrency:>3}: {n:>6} items in {wall:>6.2} s = {:>7.1} items/s (ideal {ideal:.0}); failed {}; server max concurrent {}; CPU: runner {:.0}%, server {:.0}%",
        n as f64 / wall,
        summary.failed,
        stats["max_concurrent"],
        100.0 * (cpu_seconds("self") - cpu_self) / wall,
        100.0 * (cpu_seconds(&server_pid) - cpu_server) / wall,
    );
}

fn main() {
    let delay_ms: u64 = env_or("EVALS_BENCH_DELAY_MS", 50);
    let items: usize = env_or("EVALS_BENCH_ITEMS", 100_000);
    let concurrency: Vec<usize> = std::env::var("EVALS_BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "16,32,64".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let Some(server) = FakeServer::start(&["--delay-ms", &delay_ms.to_string()]) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(async {
        let target: Arc<dyn Target> = Arc::new(
            OpenAiTarget::new(OpenAiTargetConfig::new(server.base_url(), "fake-model"))
                .unwrap_or_else(|e| panic!("{e}")),
        );
        println!(
            "fake server answering in {delay_ms} ms; {} CPUs",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        // Warm-up: connections and allocator.
        Runner::new(target.clone(), config(16))
            .run(requests(200, "w"), &mut FnSink(|_| Ok(())))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for &c in &concurrency {
            // About 4 s of ideal work each, at least 1,000 items.
            let n = (c * 1000 / delay_ms.max(1) as usize * 4).max(1000);
            measure(&target, &server, c, n, delay_ms).await;
        }

        // Streaming answers (SSE, deltas assembled) at the highest concurrency.
        let c = concurrency.iter().copied().max().unwrap_or(64);
        let mut streaming = OpenAiTargetConfig::new(server.base_url(), "fake-model");
        streaming.stream = true;
        let streaming: Arc<dyn Target> =
            Arc::new(OpenAiTarget::new(streaming).unwrap_or_else(|e| panic!("{e}")));
        print!("streaming, ");
        measure(&streaming, &server, c, c * 80, delay_ms).await;

        // The ceiling of the pair (Python server + runner) with no delay at all: what limits
        // the figures above once the delay is no longer the bottleneck.
        server.request("POST", "/admin/config", r#"{"delay_ms": 0}"#);
        print!("no delay, ");
        measure(&target, &server, c, 5000, 0).await;
        server.request(
            "POST",
            "/admin/config",
            &format!(r#"{{"delay_ms": {delay_ms}}}"#),
        );

        // Memory over a long run: peak RSS at checkpoints.
        server.reset();
        let before = status_kb("VmHWM:");
        println!("memory run: {items} items at concurrency {c}; VmHWM before {before} kB");
        let checkpoints: Vec<usize> = [items / 10, items / 2, items]
            .into_iter()
            .filter(|&n| n > 0)
            .collect();
        let mut seen = 0usize;
        let mut failed = 0usize;
        let started = Instant::now();
        let mut sink = FnSink(|r: ItemResult| {
            seen += 1;
            failed += usize::from(r.outcome.is_err());
            if checkpoints.contains(&seen) {
                println!(
                    "  after {seen:>6} items ({:>6.1} s, {:>6.1} items/s so far): VmHWM {} kB, VmRSS {} kB, failed {failed}",
                    started.elapsed().as_secs_f64(),
                    seen as f64 / started.elapsed().as_secs_f64(),
                    status_kb("VmHWM:"),
                    status_kb("VmRSS:"),
                );
            }
            Ok(())
        });
        let summary = Runner::new(target.clone(), config(c))
            .run(requests(items, "m"), &mut sink)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        println!(
            "memory run: {} succeeded, {} failed, {} attempts, {} input tokens, {:.1} s",
            summary.succeeded,
            summary.failed,
            summary.attempts,
            summary.input_tokens,
            summary.elapsed.as_secs_f64()
        );
    });
}
