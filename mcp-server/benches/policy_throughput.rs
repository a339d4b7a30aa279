//! Sustained `policy_check` throughput over REST (`POST /v1/policy/check`) and MCP streamable
//! HTTP against the real release binary, the latency at that load, and the same for an
//! authenticated trivial request (`GET /v1/whoami` with the bearer token) as the floor: the run
//! ends with each door's sustained rate and its ratio to that floor (issue 15 asks for
//! ≥ 10,000 checks/s with p99 ≤ 5 ms and ≥ 0.5 × the floor, measured in the same run).
//!
//! Each client is one keep-alive HTTP/1.1 connection; an MCP client is one session on it
//! (initialize + notifications/initialized, then `tools/call policy_check`). Two load shapes:
//!
//! * closed loop (default): C clients each send the next call as soon as the previous answer
//!   arrives, for C in `BENCH_CONCURRENCY`; reports checks/s and p50/p99/max per level.
//! * open loop (`BENCH_RATES=2000,4000,…`): calls are scheduled at a fixed rate and handed to a
//!   pool of `BENCH_CONNS` clients; latency is measured from the *scheduled* send time, so a
//!   server that falls behind shows up as queueing delay instead of being hidden by the client
//!   slowing down (coordinated omission).
//!
//! Scenarios (`BENCH_SCENARIOS`, default `whoami,rest,plain,pii`): `whoami` (the floor: bearer
//! authentication and a JSON answer, nothing else), `rest` and `plain` (a plain
//! action over REST and MCP), `rest-pii` and `pii` (a 2 KiB prompt with PII in an EU region),
//! `ping` (an MCP ping: the MCP transport alone).
//! Also printed per level: CPU time of the server and of this load generator per check (from
//! /proc), because client and server share the machine's cores and the client's share is
//! capacity the server does not get.
//!
//! Run: `cargo bench -p meshos-mcp-server --bench policy_throughput`
//! Env: BENCH_SECS (measured seconds per level, default 5), BENCH_CONCURRENCY (default
//! 1,4,8,16,32,64), BENCH_RATES (open loop), BENCH_CONNS (open-loop clients, default 64),
//! BENCH_CLIENT_THREADS (load generator worker threads, default 1), BENCH_SCENARIOS (above),
//! BENCH_BIN (the meshos binary to start, default the one cargo built), BENCH_URL + BENCH_TOKEN
//! (drive a server that is already running instead).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

const PROTOCOL: &str = "2025-06-18";
/// Stands for an MCP `ping` instead of a `policy_check`: the cost of the transport alone
/// (HTTP, bearer auth, rmcp session and SSE framing), for comparison.
const PING: &str = "ping";

mod support;

use support::{BenchServer, cpu_secs, percentile};

/// What a client talks to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Door {
    /// An MCP session (`/mcp`, `tools/call policy_check` or `ping`).
    Mcp,
    /// `POST /v1/policy/check`.
    Rest,
    /// `GET /v1/whoami` with the bearer token: the authenticated trivial request the checks
    /// are compared with.
    Whoami,
    /// `GET /healthz` with the bearer token (the server ignores it; it pings the database): the
    /// floor issue 15 was measured against, for comparison.
    Healthz,
}

/// One client on its own keep-alive HTTP/1.1 connection: an MCP session, or a REST client.
struct Session {
    door: Door,
    send: SendRequest<Full<Bytes>>,
    authority: String,
    token: String,
    session_id: Option<String>,
    next_id: u64,
}

impl Session {
    async fn open(door: Door, authority: &str, token: &str) -> Session {
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .expect("connect to meshos");
        let _ = stream.set_nodelay(true);
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP handshake");
        tokio::spawn(conn);
        let mut s = Session {
            door,
            send,
            authority: authority.to_string(),
            token: token.to_string(),
            session_id: None,
            next_id: 0,
        };
        if door != Door::Mcp {
            return s;
        }
        let init = s
            .call(
                "initialize",
                &format!(
                    r#"{{"protocolVersion":"{PROTOCOL}","capabilities":{{}},"clientInfo":{{"name":"bench","version":"1"}}}}"#
                ),
            )
            .await;
        assert!(init.contains("\"result\""), "initialize failed: {init}");
        let (status, _) = s
            .post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string())
            .await;
        assert!(status < 300, "notifications/initialized: HTTP {status}");
        s
    }

    async fn post(&mut self, body: String) -> (u16, Bytes) {
        let mut req = hyper::Request::post("/mcp")
            .header("host", &self.authority)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL);
        if let Some(id) = &self.session_id {
            req = req.header("mcp-session-id", id);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .expect("request builds");
        self.send.ready().await.expect("connection ready");
        let resp = self
            .send
            .send_request(req)
            .await
            .expect("request to meshos");
        if let Some(id) = resp.headers().get("mcp-session-id") {
            self.session_id = id.to_str().ok().map(str::to_string);
        }
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes();
        (status, body)
    }

    /// One JSON-RPC request; returns the raw response body (JSON or SSE).
    async fn call(&mut self, method: &str, params: &str) -> String {
        self.next_id += 1;
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"{method}","params":{params}}}"#,
            self.next_id
        );
        let (status, bytes) = self.post(body).await;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert!(status < 300, "HTTP {status}: {text}");
        text
    }

    /// One plain REST request with the bearer token: `GET path` without a body, else `POST`.
    async fn rest(&mut self, path: &str, body: Option<&str>) -> (u16, Bytes) {
        let req = match body {
            Some(_) => hyper::Request::post(path).header("content-type", "application/json"),
            None => hyper::Request::get(path),
        }
        .header("host", &self.authority)
        .header("authorization", format!("Bearer {}", self.token));
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default().to_string())))
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
        (status, body)
    }

    /// One `policy_check` (or, with `params` = `PING`, one MCP ping; on a `/v1/whoami` client,
    /// one health probe); panics on anything but a decision (a bench must not time errors).
    /// `params` is the tool call's params for MCP and the bare arguments for REST.
    async fn check(&mut self, params: &str) {
        match self.door {
            Door::Mcp => {}
            Door::Rest => {
                let (status, body) = self.rest("/v1/policy/check", Some(params)).await;
                let text = String::from_utf8_lossy(&body);
                assert!(
                    status == 200 && text.contains("\"decision\""),
                    "unexpected response: HTTP {status}: {text}"
                );
                return;
            }
            Door::Whoami | Door::Healthz => {
                let path = if self.door == Door::Whoami {
                    "/v1/whoami"
                } else {
                    "/healthz"
                };
                let (status, body) = self.rest(path, None).await;
                assert!(
                    status == 200,
                    "unexpected response: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                );
                return;
            }
        }
        if params == PING {
            let text = self.call("ping", "{}").await;
            assert!(text.contains("\"result\""), "unexpected response: {text}");
            return;
        }
        let text = self.call("tools/call", params).await;
        assert!(
            text.contains("\"structuredContent\"") && text.contains("\"decision\""),
            "unexpected response: {text}"
        );
    }
}

struct Level {
    label: String,
    checks: usize,
    secs: f64,
    latencies_ms: Vec<f64>,
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
}

impl Level {
    /// Prints the level and returns (checks/s, p99 ms).
    fn print(&mut self) -> (f64, f64) {
        self.latencies_ms.sort_by(f64::total_cmp);
        let l = &self.latencies_ms;
        let per_check_us = |cpu: Option<f64>| match cpu {
            Some(s) if self.checks > 0 => format!("{:>5.0}", s * 1e6 / self.checks as f64),
            _ => "    ?".to_string(),
        };
        println!(
            "  {:<10} {:>8.0} checks/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  \
             cpu/check: server {} µs, client {} µs",
            self.label,
            self.checks as f64 / self.secs,
            percentile(l, 0.50),
            percentile(l, 0.99),
            l.last().copied().unwrap_or(f64::NAN),
            per_check_us(self.server_cpu),
            per_check_us(self.client_cpu),
        );
        (self.checks as f64 / self.secs, percentile(l, 0.99))
    }
}

/// The issue's target latency: a rate counts as sustained only if p99 stays within it.
const P99_TARGET_MS: f64 = 5.0;

/// Keeps the highest rate whose p99 met the target.
fn note_best(best: &mut Option<(String, f64, f64)>, label: &str, (rate, p99): (f64, f64)) {
    if p99 <= P99_TARGET_MS && best.as_ref().is_none_or(|b| rate > b.1) {
        *best = Some((label.to_string(), rate, p99));
    }
}

fn print_best(best: &Option<(String, f64, f64)>) {
    match best {
        Some((label, rate, p99)) => println!(
            "  sustained with p99 ≤ {P99_TARGET_MS} ms: {rate:.0} checks/s ({label}, p99 {p99:.2} ms)"
        ),
        None => println!("  no level kept p99 ≤ {P99_TARGET_MS} ms"),
    }
}

/// The issue's targets: checks/s sustained within the p99 target, and that rate as a share of
/// the authenticated `/v1/whoami` rate measured in the same run.
const RATE_TARGET: f64 = 10_000.0;
const RATIO_TARGET: f64 = 0.5;

/// One line per scenario: its best sustained rate, and that rate over `/v1/whoami`'s (best
/// sustained, and at the same level) when `/v1/whoami` ran too.
/// A level's label, its rate and its p99 (ms).
type Measured = (String, f64, f64);
/// A scenario's key, its best sustained level and every level it ran.
type ScenarioResult<'a> = (&'a str, Option<Measured>, Vec<Measured>);

fn print_summary(results: &[ScenarioResult<'_>]) {
    let floor = results.iter().find(|r| r.0 == "whoami");
    println!(
        "summary (sustained = highest rate with p99 ≤ {P99_TARGET_MS} ms; goal ≥ {RATE_TARGET:.0}/s \
         and ≥ {RATIO_TARGET} × /v1/whoami)"
    );
    for (key, best, _) in results {
        let Some((label, rate, p99)) = best else {
            println!("  {key:<9} no level kept p99 ≤ {P99_TARGET_MS} ms");
            continue;
        };
        let mut line = format!("  {key:<9} {rate:>8.0}/s  p99 {p99:>5.2} ms  at {label:<7}");
        if let Some((_, Some((_, floor_rate, _)), floor_levels)) = floor
            && *key != "whoami"
        {
            let same_level = floor_levels
                .iter()
                .find(|l| &l.0 == label)
                .map_or(f64::NAN, |l| rate / l.1);
            let ratio = rate / floor_rate;
            let met = *rate >= RATE_TARGET && ratio >= RATIO_TARGET;
            line.push_str(&format!(
                "  ratio to /v1/whoami {ratio:.2} (same level {same_level:.2})  goal {}",
                if met { "met" } else { "not met" }
            ));
        }
        println!("{line}");
    }
}

/// CPU seconds of the server and of this process, sampled together.
fn cpu_now(server_pid: Option<u32>) -> (Option<f64>, Option<f64>) {
    (server_pid.and_then(cpu_secs), cpu_secs(std::process::id()))
}

fn cpu_delta(a: (Option<f64>, Option<f64>), b: (Option<f64>, Option<f64>)) -> [Option<f64>; 2] {
    [
        a.0.zip(b.0).map(|(x, y)| y - x),
        a.1.zip(b.1).map(|(x, y)| y - x),
    ]
}

/// Closed loop: `sessions` clients each with one call in flight, for `secs` after a 1 s warm-up.
async fn closed_loop(
    sessions: Vec<Session>,
    params: Arc<String>,
    secs: f64,
    server_pid: Option<u32>,
) -> (Level, Vec<Session>) {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let n = sessions.len();
    let mut tasks = Vec::with_capacity(n);
    for mut s in sessions {
        let params = params.clone();
        let measuring = measuring.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut ms = Vec::with_capacity(65_536);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                s.check(&params).await;
                if measuring.load(Ordering::Relaxed) {
                    ms.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            (ms, s)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu0 = cpu_now(server_pid);
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = cpu_now(server_pid);
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut back = Vec::with_capacity(n);
    for t in tasks {
        let (ms, s) = t.await.expect("client task");
        latencies.extend(ms);
        back.push(s);
    }
    let [server_cpu, client_cpu] = cpu_delta(cpu0, cpu1);
    (
        Level {
            label: format!("C={n}"),
            checks: latencies.len(),
            secs: elapsed,
            latencies_ms: latencies,
            server_cpu,
            client_cpu,
        },
        back,
    )
}

/// Open loop: calls scheduled every 1/rate seconds, served by whichever session is free.
async fn open_loop(
    sessions: Vec<Session>,
    params: Arc<String>,
    rate: f64,
    secs: f64,
    server_pid: Option<u32>,
) -> (Level, Vec<Session>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, bool)>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let n = sessions.len();
    let mut tasks = Vec::with_capacity(n);
    for mut s in sessions {
        let params = params.clone();
        let rx = rx.clone();
        tasks.push(tokio::spawn(async move {
            let mut ms = Vec::with_capacity(65_536);
            loop {
                let next = rx.lock().await.recv().await;
                let Some((scheduled, measured)) = next else {
                    break;
                };
                s.check(&params).await;
                if measured {
                    ms.push(scheduled.elapsed().as_secs_f64() * 1000.0);
                }
            }
            (ms, s)
        }));
    }
    let warmup = 1.0;
    let total = ((warmup + secs) * rate) as u64;
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut cpu0 = None;
    let mut sent = 0u64;
    while sent < total {
        // Everything due by now goes out; then sleep to the next due time (timer granularity
        // is ~1 ms, so at high rates each wake-up releases a small burst, on schedule).
        let now = Instant::now();
        while sent < total {
            let due = start + interval.mul_f64(sent as f64);
            if due > now {
                break;
            }
            let measured = due >= start + Duration::from_secs_f64(warmup);
            if measured && cpu0.is_none() {
                cpu0 = Some(cpu_now(server_pid));
            }
            let _ = tx.send((due, measured));
            sent += 1;
        }
        let next_due = start + interval.mul_f64(sent as f64);
        tokio::time::sleep_until(next_due.into()).await;
    }
    drop(tx);
    let mut latencies = Vec::new();
    let mut back = Vec::with_capacity(n);
    for t in tasks {
        let (ms, s) = t.await.expect("client task");
        latencies.extend(ms);
        back.push(s);
    }
    let elapsed = start.elapsed().as_secs_f64() - warmup;
    let cpu1 = cpu_now(server_pid);
    let [server_cpu, client_cpu] = cpu_delta(cpu0.unwrap_or(cpu1), cpu1);
    (
        Level {
            label: format!("{rate:.0}/s"),
            checks: latencies.len(),
            secs: elapsed,
            latencies_ms: latencies,
            server_cpu,
            client_cpu,
        },
        back,
    )
}

fn env_list(name: &str, default: &str) -> Vec<f64> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

async fn open_sessions(door: Door, n: usize, authority: &str, token: &str) -> Vec<Session> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(Session::open(door, authority, token).await);
    }
    out
}

async fn run() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    // BENCH_URL + BENCH_TOKEN measure a server started elsewhere.
    let (server, authority, token) =
        match (std::env::var("BENCH_URL"), std::env::var("BENCH_TOKEN")) {
            (Ok(url), Ok(token)) => (
                None,
                url.trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_string(),
                token,
            ),
            _ => {
                let s = BenchServer::start(None);
                let (authority, token) = (s.authority.clone(), s.token.clone());
                (Some(s), authority, token)
            }
        };
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(&authority).await.is_err() {
        assert!(Instant::now() < deadline, "meshos did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server_pid = server.as_ref().map(BenchServer::pid);

    let prompt = {
        let mut s =
            String::from("Customer jane.doe@example.com (card 4111 1111 1111 1111) writes: ");
        while s.len() < 2048 {
            s.push_str("please summarise my last three orders and the delivery status. ");
        }
        s.truncate(2048);
        s
    };
    let wanted =
        std::env::var("BENCH_SCENARIOS").unwrap_or_else(|_| "whoami,rest,plain,pii".into());
    let plain =
        serde_json::json!({"agent_id":"bench-agent","action":"email.send","model":"gpt-4o-mini"});
    let pii = serde_json::json!({"agent_id":"bench-agent","action":"llm.complete","model":"gpt-4o-mini","region":"aws:eu-west-1","content":prompt});
    let scenarios = [
        (
            "healthz",
            "GET /healthz with a bearer token (pings the database; the floor issue 15 measured)",
            Door::Healthz,
            serde_json::Value::Null,
        ),
        (
            "whoami",
            "GET /v1/whoami with a bearer token (the authenticated floor checks are compared with)",
            Door::Whoami,
            serde_json::Value::Null,
        ),
        (
            "ping",
            "MCP ping (transport only, for comparison)",
            Door::Mcp,
            serde_json::Value::Null,
        ),
        (
            "rest",
            "REST POST /v1/policy/check, plain action, no content",
            Door::Rest,
            plain.clone(),
        ),
        (
            "rest-pii",
            "REST POST /v1/policy/check, 2 KiB prompt with PII, EU region",
            Door::Rest,
            pii.clone(),
        ),
        (
            "plain",
            "MCP tools/call policy_check, plain action, no content",
            Door::Mcp,
            plain,
        ),
        (
            "pii",
            "MCP tools/call policy_check, 2 KiB prompt with PII, EU region",
            Door::Mcp,
            pii,
        ),
    ];
    let rates = env_list("BENCH_RATES", "");
    let levels = env_list("BENCH_CONCURRENCY", "1,4,8,16,32,64");
    let conns = std::env::var("BENCH_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64usize);
    println!(
        "policy_check over REST and MCP streamable HTTP (one client per keep-alive HTTP/1.1 \
         connection; an MCP client is one session); load generator on the same machine ({} CPUs), \
         {secs} s per level after 1 s warm-up",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // Per scenario: (key, best sustained level, rate and p99 per level label).
    let mut results: Vec<ScenarioResult<'_>> = Vec::new();
    for (key, name, door, args) in scenarios {
        if !wanted.split(',').any(|w| w.trim() == key) {
            continue;
        }
        let params = Arc::new(match door {
            Door::Whoami | Door::Healthz => String::new(),
            Door::Rest => args.to_string(),
            Door::Mcp if args.is_null() => PING.to_string(),
            Door::Mcp => serde_json::json!({"name":"policy_check","arguments":args}).to_string(),
        });
        let mut best = None;
        let mut per_level = Vec::new();
        if rates.is_empty() {
            println!("{name} — closed loop (C clients, one call in flight each)");
            let mut pool: Vec<Session> = Vec::new();
            for &c in &levels {
                let c = c as usize;
                if pool.len() < c {
                    let more = open_sessions(door, c - pool.len(), &authority, &token).await;
                    pool.extend(more);
                }
                let rest = pool.split_off(c);
                let (mut level, back) = closed_loop(pool, params.clone(), secs, server_pid).await;
                let measured = level.print();
                note_best(&mut best, &level.label, measured);
                per_level.push((level.label.clone(), measured.0, measured.1));
                pool = back;
                pool.extend(rest);
            }
        } else {
            println!("{name} — open loop ({conns} clients, latency from scheduled send time)");
            let mut pool = open_sessions(door, conns, &authority, &token).await;
            for &rate in &rates {
                let (mut level, back) =
                    open_loop(pool, params.clone(), rate, secs, server_pid).await;
                let measured = level.print();
                note_best(&mut best, &level.label, measured);
                per_level.push((level.label.clone(), measured.0, measured.1));
                pool = back;
            }
        }
        print_best(&best);
        results.push((key, best, per_level));
    }
    print_summary(&results);
    drop(server);
}

fn main() {
    let threads = std::env::var("BENCH_CLIENT_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run());
}
