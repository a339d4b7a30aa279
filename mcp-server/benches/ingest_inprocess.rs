//! Durable ingest throughput of the service core alone: `Mesh::record_events` called directly
//! (no HTTP, no JSON), on a SQLite store with its group-commit writer, from a runtime with ONE
//! worker thread: events/s per core of request handling. The writer has its own thread (see
//! `meshos_store::group_commit`), so "per core" is the request side; the CPU time of the whole
//! process per event is printed too.
//!
//! Each of C tasks records the next batch of B events as soon as the previous one is
//! acknowledged (committed, ledger leaves appended, live trust updated), for B in `BENCH_BATCH`
//! and C in `BENCH_CONCURRENCY`. Events are built before the clock starts.
//!
//! Run: `cargo bench -p meshos-mcp-server --bench ingest_inprocess`
//! Env: BENCH_SECS (default 5, after 1 s warm-up), BENCH_BATCH (default 1,100,1000),
//! BENCH_CONCURRENCY (default 1,4,16), BENCH_WORKERS (runtime worker threads, default 1).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meshos_evidence::NoteSigner;
use meshos_service::{EventInput, IngestDoor, Mesh};
use meshos_store::{Store, sqlite_url_for_data_dir};
use meshos_types::{Outcome, Principal, Role};

mod support;

use support::cpu_secs;

fn events(n: usize) -> Vec<EventInput> {
    (0..n)
        .map(|i| {
            let mut attributes = serde_json::Map::new();
            attributes.insert("span_id".into(), format!("{i:016x}").into());
            attributes.insert("source".into(), "bench".into());
            EventInput {
                agent_id: format!("bench-agent-{}", i % 8),
                kind: if i % 3 == 0 { "llm.chat" } else { "tool.call" }.into(),
                outcome: if i % 10 == 0 {
                    Outcome::Error
                } else {
                    Outcome::Ok
                },
                latency_ms: Some(40.0 + (i % 300) as f64),
                input_tokens: None,
                output_tokens: None,
                cost_usd: None,
                model: None,
                tool: Some("search".into()),
                region: None,
                attributes: Some(attributes),
                decision_id: None,
            }
        })
        .collect()
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

async fn run() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::connect(&sqlite_url_for_data_dir(dir.path()))
        .await
        .expect("open the SQLite store");
    let mesh = Arc::new(
        Mesh::builder(store, NoteSigner::generate("meshos-bench").expect("signer"))
            .build()
            .expect("mesh"),
    );
    let principal = Arc::new(Principal {
        token_id: "tok_bench".into(),
        tenant: "bench".into(),
        role: Role::Operator,
        agent_id: None,
    });
    println!(
        "Mesh::record_events in process, SQLite (WAL, synchronous = FULL, group commit); \
         {} runtime worker thread(s), {secs} s per configuration after 1 s warm-up",
        std::env::var("BENCH_WORKERS").unwrap_or_else(|_| "1".into())
    );
    let pid = std::process::id();
    for batch in env_list("BENCH_BATCH", "1,100,1000") {
        let template = events(batch);
        for c in env_list("BENCH_CONCURRENCY", "1,4,16") {
            let measuring = Arc::new(AtomicBool::new(false));
            let stop = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicU64::new(0));
            let mut tasks = Vec::new();
            for _ in 0..c {
                let (mesh, principal, template) =
                    (mesh.clone(), principal.clone(), template.clone());
                let (measuring, stop, done) = (measuring.clone(), stop.clone(), done.clone());
                tasks.push(tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let inputs = template.clone();
                        let t = Instant::now();
                        let recorded = mesh
                            .record_events(&principal, inputs, IngestDoor::Rest)
                            .await
                            .expect("record_events");
                        if measuring.load(Ordering::Relaxed) {
                            done.fetch_add(recorded.len() as u64, Ordering::Relaxed);
                            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                    latencies
                }));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let cpu0 = cpu_secs(pid);
            measuring.store(true, Ordering::Relaxed);
            let t0 = Instant::now();
            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            measuring.store(false, Ordering::Relaxed);
            let elapsed = t0.elapsed().as_secs_f64();
            let cpu1 = cpu_secs(pid);
            stop.store(true, Ordering::Relaxed);
            let mut latencies = Vec::new();
            for t in tasks {
                latencies.extend(t.await.expect("task"));
            }
            latencies.sort_by(f64::total_cmp);
            let n = done.load(Ordering::Relaxed) as f64;
            let cpu_us = cpu0
                .zip(cpu1)
                .map_or(f64::NAN, |(a, b)| (b - a) * 1e6 / n.max(1.0));
            println!(
                "  B={batch:<5} C={c:<3} {:>9.0} events/s  ack p50 {:>6.2} ms  p99 {:>6.2} ms  \
                 process cpu/event {cpu_us:>6.1} µs",
                n / elapsed,
                support::percentile(&latencies, 0.5),
                support::percentile(&latencies, 0.99),
            );
        }
    }
    mesh.shut_down().await;
}

fn main() {
    let workers = std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run());
}
