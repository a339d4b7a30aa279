//! Server time of `GET /ui/fleet` with 1,000 agents (issue 19: ≤ 300 ms), on a real SQLite
//! store: the request goes through the console's router (session, view, template) in process,
//! so the figure is the server's own time without the network.
//!
//! Two cases: agents only in the store (after a restart: scores and sparklines from
//! `fleet_agents` and `trust_hourly`), and agents also held live in memory (a running server).
//!
//! `cargo bench -p meshos-console --bench fleet_page` (release build). Prints p50, p95 and max
//! over 30 requests per case.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use futures_util::future::BoxFuture;
use http_body_util::BodyExt;
use meshos_console::{Console, TokenCheck};
use meshos_evidence::NoteSigner;
use meshos_service::{EventInput, IngestDoor, Mesh};
use meshos_store::TrustPoint;
use meshos_types::{Outcome, Principal, Role, now_ms};
use tower::ServiceExt;

const AGENTS: usize = 1_000;
const HOURS: i64 = 24;
const REQUESTS: usize = 30;

struct OneToken;

fn operator() -> Principal {
    Principal {
        token_id: "tok-op".into(),
        tenant: "bench".into(),
        role: Role::Operator,
        agent_id: None,
    }
}

impl TokenCheck for OneToken {
    fn principal<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Principal>, String>> {
        Box::pin(async move { Ok((token == "msh_bench").then(operator)) })
    }
}

async fn sign_in(app: &axum::Router) -> String {
    let res = app
        .clone()
        .oneshot(
            Request::post("/ui/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("token=msh_bench"))
                .expect("request"),
        )
        .await
        .expect("sign-in");
    res.headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string()
}

async fn measure(app: &axum::Router, cookie: &str, label: &str) {
    let mut times = Vec::with_capacity(REQUESTS);
    let mut bytes = 0;
    for _ in 0..REQUESTS {
        let start = Instant::now();
        let res = app
            .clone()
            .oneshot(
                Request::get("/ui/fleet")
                    .header(header::COOKIE, cookie)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("fleet page");
        assert!(res.status().is_success(), "{}", res.status());
        let body = res.into_body().collect().await.expect("body").to_bytes();
        times.push(start.elapsed());
        bytes = body.len();
        assert_eq!(
            String::from_utf8_lossy(&body)
                .matches("<tr data-agent=")
                .count(),
            AGENTS
        );
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label}: {AGENTS} agents, page {} KiB: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms (goal: 300 ms)",
        bytes / 1024,
        ms(times[REQUESTS / 2]),
        ms(times[REQUESTS * 95 / 100]),
        ms(times[REQUESTS - 1]),
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            meshos_store::Store::connect(&meshos_store::sqlite_url_for_data_dir(dir.path()))
                .await
                .expect("store");
        // A day of hourly score points per agent, as the flusher would have left them.
        let now = now_ms();
        for chunk in (0..AGENTS).collect::<Vec<_>>().chunks(100) {
            let points: Vec<TrustPoint> = chunk
                .iter()
                .flat_map(|a| {
                    (0..HOURS).map(move |h| TrustPoint {
                        tenant: "bench".into(),
                        agent_id: format!("agent-{a:04}"),
                        at_ms: now - (HOURS - h) * 3_600_000,
                        score: 60.0 + ((*a as i64 * 7 + h * 3) % 40) as f64,
                        policy_adherence: 0.95,
                        agent_reputation: 0.9,
                        response_integrity: 1.0,
                        risk_exposure: 1.0,
                    })
                })
                .collect();
            store.insert_trust_points(&points).await.expect("points");
        }
        let mesh = Arc::new(
            Mesh::builder(store, NoteSigner::generate("meshos-bench").expect("key"))
                .build()
                .expect("mesh"),
        );
        let app = meshos_console::router(
            Console::new(mesh.clone(), Arc::new(OneToken)).expect("console"),
        );
        let cookie = sign_in(&app).await;
        measure(&app, &cookie, "stored scores (agents not held live)").await;

        // Every agent reports, so each is held live in memory.
        let events: Vec<EventInput> = (0..AGENTS)
            .map(|a| EventInput {
                agent_id: format!("agent-{a:04}"),
                kind: "llm_call".into(),
                outcome: Outcome::Ok,
                latency_ms: Some(100.0),
                input_tokens: None,
                output_tokens: None,
                cost_usd: None,
                model: None,
                tool: None,
                region: None,
                attributes: None,
                decision_id: None,
            })
            .collect();
        mesh.record_events(&operator(), events, IngestDoor::Rest)
            .await
            .expect("events");
        measure(&app, &cookie, "live scores (agents held in memory)").await;
    });
}
