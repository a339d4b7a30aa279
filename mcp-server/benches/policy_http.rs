//! Round-trip latency of `policy_check` over MCP streamable HTTP against the real release
//! binary, as an agent sees it: bearer auth, JSON-RPC, Cedar evaluation, detectors, the SQLite
//! write of the decision and its ledger leaf, and the SSE response.
//!
//! Run: `cargo bench -p meshos-mcp-server --bench policy_http` (env BENCH_CALLS, default 2000).
//! Also prints the server's idle resident memory after start-up.

use std::time::{Duration, Instant};

mod support;

use support::{BenchServer, percentile, rss_kib};

/// The JSON-RPC message with our id from an SSE or JSON response body.
fn response_json(body: &str) -> serde_json::Value {
    if let Ok(v) = serde_json::from_str(body) {
        return v;
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .unwrap_or(serde_json::Value::Null)
}

struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
    session: Option<String>,
    next_id: u64,
}

impl Client {
    async fn rpc(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.next_id += 1;
        let body =
            serde_json::json!({"jsonrpc":"2.0","id":self.next_id,"method":method,"params":params});
        let mut req = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        let resp = req.send().await.expect("request to meshos failed");
        if let Some(s) = resp.headers().get("mcp-session-id") {
            self.session = s.to_str().ok().map(str::to_string);
        }
        response_json(&resp.text().await.expect("response body"))
    }

    async fn notify(&self, method: &str) {
        let mut req = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("accept", "application/json, text/event-stream")
            .json(&serde_json::json!({"jsonrpc":"2.0","method":method}));
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        let _ = req.send().await;
    }
}

#[tokio::main]
async fn main() {
    let calls: usize = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let server = BenchServer::start(None);
    let (token, port) = (server.token.clone(), server.port);
    let http = reqwest::Client::builder().build().expect("http client");
    let deadline = Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "meshos did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_kib(server.pid());

    let mut client = Client {
        http,
        url: format!("http://127.0.0.1:{port}/mcp"),
        token,
        session: None,
        next_id: 0,
    };
    let init = client
        .rpc(
            "initialize",
            serde_json::json!({"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}),
        )
        .await;
    assert!(init.get("result").is_some(), "initialize failed: {init}");
    client.notify("notifications/initialized").await;

    let prompt = {
        let mut s =
            String::from("Customer jane.doe@example.com (card 4111 1111 1111 1111) writes: ");
        while s.len() < 2048 {
            s.push_str("please summarise my last three orders and the delivery status. ");
        }
        s.truncate(2048);
        s
    };
    let scenarios = [
        (
            "plain action, no content",
            serde_json::json!({"agent_id":"bench-agent","action":"email.send","model":"gpt-4o-mini"}),
        ),
        (
            "2 KiB prompt with PII, EU region",
            serde_json::json!({"agent_id":"bench-agent","action":"llm.complete","model":"gpt-4o-mini","region":"aws:eu-west-1","content":prompt}),
        ),
    ];
    println!(
        "policy_check over MCP streamable HTTP, {calls} sequential calls per scenario (after 100 warm-up)"
    );
    for (name, args) in scenarios {
        let params = serde_json::json!({"name":"policy_check","arguments":args});
        for _ in 0..100 {
            client.rpc("tools/call", params.clone()).await;
        }
        let mut ms = Vec::with_capacity(calls);
        for _ in 0..calls {
            let t = Instant::now();
            let r = client.rpc("tools/call", params.clone()).await;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(
                r.pointer("/result/structuredContent/decision").is_some(),
                "unexpected response: {r}"
            );
        }
        ms.sort_by(f64::total_cmp);
        println!(
            "  {name:<34} p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            percentile(&ms, 0.50),
            percentile(&ms, 0.90),
            percentile(&ms, 0.99),
            ms[ms.len() - 1]
        );
    }
    match idle_rss {
        Some(kib) => println!(
            "idle resident memory after start: {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("idle resident memory: unavailable (/proc not readable)"),
    }
    drop(server);
}
