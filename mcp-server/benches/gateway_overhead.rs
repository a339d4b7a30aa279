//! What the gateway adds to a `tools/call`: the same echo tool of a fast upstream (a streamable
//! HTTP MCP server in this process, answering at once) called directly and through
//! `meshos serve --gateway-config` (the real release binary, SQLite, the shipped bundle), in the
//! same run, by the same minimal client.
//!
//! Through the gateway each call is: bearer authentication, the client's admission (cached),
//! the pinned catalog, `policy_check` of `mcp.tool` (arguments typed for Cedar, their text
//! scanned, the decision stored durably and appended to the ledger), the upstream call, the
//! result's screen, and a `tool_call` event stored durably. Issue 18 asks for p50 ≤ 0.5 ms added
//! and ≥ 5,000 proxied calls/s on 2 cores.
//!
//! Two measurements:
//! * sequential: one session, `BENCH_CALLS` calls (default 2,000) each way, interleaved in
//!   blocks so drift hits both; p50/p99 and the p50 difference.
//! * closed loop: C sessions for `BENCH_SECS` (default 5) per C in `BENCH_CONCURRENCY` (default
//!   1,8,32,64), through the gateway and directly: calls/s and p50/p99.
//!
//! Run: `cargo bench -p meshos-mcp-server --bench gateway_overhead`

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::serve::ListenerExt;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use support::{BenchServer, percentile};

const PROTOCOL: &str = "2025-06-18";

/// The fast upstream: one `echo` tool that answers with its `text` argument.
#[derive(Clone)]
struct Echo;

impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let schema =
            serde_json::json!({"type": "object", "properties": {"text": {"type": "string"}}});
        Ok(ListToolsResult::with_all_items(vec![Tool::new(
            "echo",
            "Answers with its text.",
            Arc::new(schema.as_object().cloned().unwrap_or_default()),
        )]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let text = request
            .arguments
            .and_then(|a| a.get("text").and_then(|t| t.as_str()).map(str::to_string))
            .unwrap_or_default();
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

async fn start_upstream() -> String {
    let service = StreamableHttpService::new(
        || Ok(Echo),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the upstream");
    let addr = listener.local_addr().expect("upstream address");
    // Without TCP_NODELAY every answer waits for the client's delayed ACK (about 40 ms).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("{addr}")
}

/// One MCP session on its own keep-alive HTTP/1.1 connection.
struct Session {
    send: SendRequest<Full<Bytes>>,
    authority: String,
    path: &'static str,
    token: Option<String>,
    session_id: Option<String>,
    next_id: u64,
    tool: &'static str,
}

impl Session {
    async fn open(
        authority: &str,
        path: &'static str,
        token: Option<&str>,
        tool: &'static str,
    ) -> Session {
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .expect("connect");
        let _ = stream.set_nodelay(true);
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP handshake");
        tokio::spawn(conn);
        let mut s = Session {
            send,
            authority: authority.to_string(),
            path,
            token: token.map(str::to_string),
            session_id: None,
            next_id: 0,
            tool,
        };
        let init = s
            .request(
                "initialize",
                &format!(
                    r#"{{"protocolVersion":"{PROTOCOL}","capabilities":{{}},"clientInfo":{{"name":"bench","version":"1"}}}}"#
                ),
            )
            .await;
        assert!(init.contains("\"result\""), "initialize failed: {init}");
        s.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string())
            .await;
        s
    }

    async fn post(&mut self, body: String) -> String {
        let mut req = hyper::Request::post(self.path)
            .header("host", &self.authority)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL);
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(id) = &self.session_id {
            req = req.header("mcp-session-id", id);
        }
        let req = req.body(Full::new(Bytes::from(body))).expect("request");
        self.send.ready().await.expect("connection ready");
        let resp = self.send.send_request(req).await.expect("request sent");
        if let Some(id) = resp.headers().get("mcp-session-id") {
            self.session_id = id.to_str().ok().map(str::to_string);
        }
        let bytes = resp
            .into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    async fn request(&mut self, method: &str, params: &str) -> String {
        self.next_id += 1;
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"{method}","params":{params}}}"#,
            self.next_id
        );
        self.post(body).await
    }

    /// Ends the session (a token may hold only so many).
    async fn close(mut self) {
        let Some(id) = self.session_id.take() else {
            return;
        };
        let mut req = hyper::Request::delete(self.path)
            .header("host", &self.authority)
            .header("mcp-session-id", id)
            .header("mcp-protocol-version", PROTOCOL);
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req.body(Full::new(Bytes::new())).expect("request");
        if self.send.ready().await.is_ok() {
            let _ = self.send.send_request(req).await;
        }
    }

    /// One `tools/call` of the echo tool; the answer text.
    async fn echo(&mut self) -> String {
        let params = format!(
            r#"{{"name":"{}","arguments":{{"text":"status of ticket 4711"}}}}"#,
            self.tool
        );
        self.request("tools/call", &params).await
    }

    /// One call, checked; its latency in milliseconds.
    async fn timed_echo(&mut self) -> f64 {
        let t = Instant::now();
        let answer = self.echo().await;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        assert!(
            answer.contains("status of ticket 4711") && !answer.contains("\"isError\":true"),
            "unexpected answer: {answer}"
        );
        ms
    }
}

fn summary(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    (percentile(samples, 0.5), percentile(samples, 0.99))
}

async fn closed_loop(
    authority: &str,
    path: &'static str,
    token: Option<&str>,
    tool: &'static str,
    clients: usize,
    secs: f64,
) -> (f64, f64, f64) {
    let mut sessions = Vec::new();
    for _ in 0..clients {
        sessions.push(Session::open(authority, path, token, tool).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut s in sessions {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                lat.push(s.timed_echo().await);
            }
            s.close().await;
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = all.len() as f64 / elapsed;
    let (p50, p99) = summary(&mut all);
    (rate, p50, p99)
}

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let upstream = start_upstream().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("gateway.toml");
        std::fs::write(
            &config,
            format!("[[upstream]]\nname = \"fast\"\nurl = \"http://{upstream}/mcp\"\n"),
        )
        .expect("gateway config");
        let config = config.to_string_lossy().to_string();
        let server = BenchServer::start_with(None, &["--gateway-config", &config]);
        let token = server.meshos(&[
            "token",
            "create",
            "--tenant",
            "bench",
            "--role",
            "agent",
            "--agent",
            "bench-agent",
        ]);

        // Admit the bench's client once, as an operator would.
        let mut gw = Session::open(
            &server.authority,
            "/gateway/mcp",
            Some(&token),
            "fast__echo",
        )
        .await;
        let held = gw.echo().await;
        let decision = held
            .split("dec_")
            .nth(1)
            .map(|rest| {
                format!(
                    "dec_{}",
                    rest.chars()
                        .take_while(char::is_ascii_alphanumeric)
                        .collect::<String>()
                )
            })
            .unwrap_or_else(|| panic!("the first call should wait for approval: {held}"));
        server.meshos(&["gateway", "approve", &decision, "--tenant", "bench"]);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let mut direct = Session::open(&upstream, "/mcp", None, "echo").await;
        for _ in 0..100 {
            gw.timed_echo().await;
            direct.timed_echo().await;
        }

        let calls: usize = std::env::var("BENCH_CALLS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2_000);
        let (mut via, mut bare) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
        for block in 0..calls / 100 {
            for _ in 0..100 {
                if block % 2 == 0 {
                    via.push(gw.timed_echo().await);
                } else {
                    bare.push(direct.timed_echo().await);
                }
            }
            for _ in 0..100 {
                if block % 2 == 0 {
                    bare.push(direct.timed_echo().await);
                } else {
                    via.push(gw.timed_echo().await);
                }
            }
        }
        let (g50, g99) = summary(&mut via);
        let (d50, d99) = summary(&mut bare);
        println!("sequential, {} calls each way:", via.len());
        println!("  direct        p50 {d50:.3} ms  p99 {d99:.3} ms");
        println!("  via gateway   p50 {g50:.3} ms  p99 {g99:.3} ms");
        println!(
            "  added         p50 {:.3} ms  p99 {:.3} ms",
            g50 - d50,
            g99 - d99
        );

        // A token may hold 64 sessions; the closed loops open their own.
        gw.close().await;
        let secs: f64 = std::env::var("BENCH_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5.0);
        println!("closed loop, {secs} s per level:");
        println!(
            "  clients  via gateway calls/s   p50 ms   p99 ms | direct calls/s   p50 ms   p99 ms"
        );
        for c in env_list("BENCH_CONCURRENCY", &[1, 8, 32, 64]) {
            let (gr, g50, g99) = closed_loop(
                &server.authority,
                "/gateway/mcp",
                Some(&token),
                "fast__echo",
                c,
                secs,
            )
            .await;
            let (dr, d50, d99) = closed_loop(&upstream, "/mcp", None, "echo", c, secs).await;
            println!(
                "  {c:>7}  {gr:>19.0}  {g50:>7.3}  {g99:>7.3} | {dr:>14.0}  {d50:>7.3}  {d99:>7.3}"
            );
        }
        drop(server);
    });
}
