//! Durable ingest throughput of `POST /v1/events` against the real release binary: events/s
//! and acknowledgement latency, where an acknowledgement means the events and their ledger
//! leaves are committed (group commit; SQLite WAL with `synchronous = FULL`, or PostgreSQL).
//!
//! Each client is one keep-alive HTTP/1.1 connection that posts the next batch
//! (`{"events":[…]}`, B events) as soon as the previous one is acknowledged (closed loop), for
//! every batch size B in `BENCH_BATCH` and concurrency C in `BENCH_CONCURRENCY`. Bodies are
//! built once per batch size, so the load generator spends its CPU on the socket only; it shares
//! the machine's cores with the server, and both CPU shares are printed per event.
//!
//! Run: `cargo bench -p meshos-mcp-server --bench ingest_throughput`
//! Env: BENCH_SECS (measured seconds per configuration, default 5, after 1 s warm-up),
//! BENCH_BATCH (default 1,100,1000), BENCH_CONCURRENCY (default 1,4,16), BENCH_BACKENDS
//! (`sqlite`, `postgres`; default both, PostgreSQL only when a URL is set), BENCH_USAGE=1 (every
//! third event reports tokens and cost, so ingest also updates the budget counters), BENCH_BIN (the meshos
//! binary to start, default the one cargo built), MESHOS_BENCH_PG_URL or
//! MESHOS_TEST_DATABASE_URL (a PostgreSQL server; each run creates and drops its own database).
//!
//! The server's `fsync` and `synchronous_commit` settings are printed with the PostgreSQL
//! figures: the test cluster of scripts/pg-start.sh runs with both off, which makes a commit
//! visible but not crash-safe, so its figures are an upper bound, not durable throughput.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use sqlx::Connection as _;

mod support;

use support::{BenchServer, cpu_secs, percentile};

/// One keep-alive HTTP/1.1 connection posting event batches.
struct Client {
    send: SendRequest<Full<Bytes>>,
    authority: String,
    token: String,
}

impl Client {
    async fn open(authority: &str, token: &str) -> Client {
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .expect("connect to meshos");
        let _ = stream.set_nodelay(true);
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP handshake");
        tokio::spawn(conn);
        Client {
            send,
            authority: authority.to_string(),
            token: token.to_string(),
        }
    }

    /// Posts one batch; panics unless all `events` were acknowledged (a bench must not time
    /// refusals).
    async fn post(&mut self, body: Bytes, events: usize) {
        let req = hyper::Request::post("/v1/events")
            .header("host", &self.authority)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(Full::new(body))
            .expect("request builds");
        self.send.ready().await.expect("connection ready");
        let resp = self
            .send
            .send_request(req)
            .await
            .expect("request to meshos");
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes();
        let expected = format!("\"accepted\":{events},");
        assert!(
            status == 200
                && body
                    .windows(expected.len())
                    .any(|w| w == expected.as_bytes()),
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
}

/// A batch of `n` events spread over a few agents, shaped like tool/LLM telemetry. With
/// `usage`, every third event (an LLM call) reports tokens and cost, which the server also adds
/// to the budget counters.
fn batch_body(n: usize, usage: bool) -> Bytes {
    let events: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let mut ev = serde_json::json!({
                "agent_id": format!("bench-agent-{}", i % 8),
                "kind": if i % 3 == 0 { "llm.chat" } else { "tool.call" },
                "outcome": if i % 10 == 0 { "error" } else { "ok" },
                "latency_ms": 40 + (i % 300),
                "tool": "search",
                "attributes": {"span_id": format!("{i:016x}"), "source": "bench"},
            });
            if usage && i % 3 == 0 {
                ev["input_tokens"] = serde_json::json!(900);
                ev["output_tokens"] = serde_json::json!(120);
                ev["cost_usd"] = serde_json::json!(0.0012);
            }
            ev
        })
        .collect();
    Bytes::from(serde_json::json!({ "events": events }).to_string())
}

struct Measured {
    batches: usize,
    secs: f64,
    latencies_ms: Vec<f64>,
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
}

/// Closed loop: every client posts its next batch when the previous one is acknowledged.
async fn closed_loop(
    clients: Vec<Client>,
    body: Bytes,
    batch: usize,
    secs: f64,
    server_pid: u32,
) -> (Measured, Vec<Client>) {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(clients.len());
    for mut c in clients {
        let (body, measuring, stop) = (body.clone(), measuring.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut ms = Vec::with_capacity(16_384);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                c.post(body.clone(), batch).await;
                if measuring.load(Ordering::Relaxed) {
                    ms.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            (ms, c)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu0 = (cpu_secs(server_pid), cpu_secs(std::process::id()));
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = (cpu_secs(server_pid), cpu_secs(std::process::id()));
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut back = Vec::new();
    for t in tasks {
        let (ms, c) = t.await.expect("client task");
        latencies.extend(ms);
        back.push(c);
    }
    latencies.sort_by(f64::total_cmp);
    (
        Measured {
            batches: latencies.len(),
            secs: elapsed,
            latencies_ms: latencies,
            server_cpu: cpu0.0.zip(cpu1.0).map(|(a, b)| b - a),
            client_cpu: cpu0.1.zip(cpu1.1).map(|(a, b)| b - a),
        },
        back,
    )
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

/// A fresh database on the PostgreSQL server of `base`, so runs never mix.
async fn create_pg_database(base: &str) -> (String, String) {
    let (server, _) = base.rsplit_once('/').expect("a postgres://…/db URL");
    let name = format!("meshos_bench_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create the bench database");
    let mut settings = Vec::new();
    for setting in ["fsync", "synchronous_commit"] {
        let value: (String,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SHOW {setting}")))
            .fetch_one(&mut admin)
            .await
            .expect("read a server setting");
        settings.push(format!("{setting}={}", value.0));
    }
    (format!("{server}/{name}"), settings.join(", "))
}

async fn drop_pg_database(url: &str) {
    let (server, name) = url.rsplit_once('/').expect("a postgres://…/db URL");
    if let Ok(mut admin) = sqlx::PgConnection::connect(&format!("{server}/postgres")).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await;
    }
}

async fn bench_backend(label: &str, database_url: Option<&str>, secs: f64, usage: bool) {
    let server = BenchServer::start(database_url);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut s) = tokio::net::TcpStream::connect(&server.authority).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let probe = format!(
                "GET /healthz HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
                server.authority
            );
            let mut answer = Vec::new();
            if s.write_all(probe.as_bytes()).await.is_ok()
                && s.read_to_end(&mut answer).await.is_ok()
                && answer.starts_with(b"HTTP/1.1 200")
            {
                break;
            }
        }
        assert!(Instant::now() < deadline, "meshos did not become healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = server.pid();
    println!("{label}");
    let batches = env_list("BENCH_BATCH", "1,100,1000");
    let levels = env_list("BENCH_CONCURRENCY", "1,4,16");
    let mut pool: Vec<Client> = Vec::new();
    let mut best: Option<(f64, String)> = None;
    for &batch in &batches {
        let body = batch_body(batch.max(1), usage);
        for &c in &levels {
            while pool.len() < c {
                pool.push(Client::open(&server.authority, &server.token).await);
            }
            let rest = pool.split_off(c);
            let (m, back) = closed_loop(pool, body.clone(), batch.max(1), secs, pid).await;
            pool = back;
            pool.extend(rest);
            let events = (m.batches * batch.max(1)) as f64;
            let per_event_us = |cpu: Option<f64>| match cpu {
                Some(s) if events > 0.0 => format!("{:>5.1}", s * 1e6 / events),
                _ => "    ?".to_string(),
            };
            let rate = events / m.secs;
            let name = format!("B={batch:<5} C={c:<3}");
            println!(
                "  {name} {rate:>9.0} events/s  {:>7.0} batches/s  ack p50 {:>7.2} ms  p99 {:>7.2} ms  \
                 cpu/event: server {} µs, client {} µs",
                m.batches as f64 / m.secs,
                percentile(&m.latencies_ms, 0.50),
                percentile(&m.latencies_ms, 0.99),
                per_event_us(m.server_cpu),
                per_event_us(m.client_cpu),
            );
            if best.as_ref().is_none_or(|b| rate > b.0) {
                best = Some((rate, name));
            }
        }
    }
    if let Some((rate, name)) = best {
        println!("  best: {rate:.0} events/s ({name})");
    }
    drop(server);
}

async fn run() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    let usage = std::env::var("BENCH_USAGE").is_ok_and(|v| v == "1");
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let wanted = |b: &str| backends.split(',').any(|w| w.trim() == b);
    println!(
        "POST /v1/events, closed loop (C keep-alive connections, one batch in flight each); \
         load generator on the same machine ({} CPUs), {secs} s per configuration after 1 s warm-up; \
         {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if usage {
            "LLM events (1 in 3) report tokens and cost"
        } else {
            "no event reports tokens or cost"
        }
    );
    if wanted("sqlite") {
        bench_backend("SQLite (WAL, synchronous=FULL)", None, secs, usage).await;
    }
    if wanted("postgres") {
        let base = std::env::var("MESHOS_BENCH_PG_URL")
            .or_else(|_| std::env::var("MESHOS_TEST_DATABASE_URL"))
            .ok();
        match base {
            Some(base) => {
                let (url, settings) = create_pg_database(&base).await;
                bench_backend(&format!("PostgreSQL ({settings})"), Some(&url), secs, usage).await;
                drop_pg_database(&url).await;
            }
            None => println!(
                "PostgreSQL: skipped (set MESHOS_BENCH_PG_URL or MESHOS_TEST_DATABASE_URL)"
            ),
        }
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run());
}
