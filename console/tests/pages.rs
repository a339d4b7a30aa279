//! The console's pages through its router, on a real SQLite store: sign-in, every page renders
//! what the tenant holds, an auditor gets no buttons, writes need the CSRF token, an agent token
//! cannot sign in, and another tenant sees nothing. (Token lookup is the one stand-in: the
//! server's real lookup is exercised by the browser tests in tests/e2e/test_console.py.)

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures_util::future::BoxFuture;
use http_body_util::BodyExt;
use meshos_console::{Console, TokenCheck};
use meshos_evidence::NoteSigner;
use meshos_service::{EventInput, IngestDoor, Mesh, PolicyCheckInput};
use meshos_types::{Outcome, Principal, Role};
use tower::ServiceExt;

struct FixedTokens;

fn principal(tenant: &str, role: Role, agent: Option<&str>) -> Principal {
    Principal {
        token_id: format!("tok-{tenant}-{}", role.as_str()),
        tenant: tenant.into(),
        role,
        agent_id: agent.map(str::to_string),
    }
}

impl TokenCheck for FixedTokens {
    fn principal<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Principal>, String>> {
        Box::pin(async move {
            Ok(match token {
                "msh_op" => Some(principal("acme", Role::Operator, None)),
                "msh_au" => Some(principal("acme", Role::Auditor, None)),
                "msh_agent" => Some(principal("acme", Role::Agent, Some("bot-1"))),
                "msh_other" => Some(principal("globex", Role::Operator, None)),
                _ => None,
            })
        })
    }
}

async fn mesh(dir: &std::path::Path) -> Arc<Mesh> {
    let store = meshos_store::Store::connect(&meshos_store::sqlite_url_for_data_dir(dir))
        .await
        .unwrap();
    let mesh = Arc::new(
        Mesh::builder(store, NoteSigner::generate("meshos-test").unwrap())
            .build()
            .unwrap(),
    );
    let op = principal("acme", Role::Operator, None);
    let events = (0..20)
        .map(|i| EventInput {
            agent_id: if i % 2 == 0 { "bot-1" } else { "bot-2" }.into(),
            kind: "llm_call".into(),
            outcome: if i % 5 == 0 {
                Outcome::Violation
            } else {
                Outcome::Ok
            },
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
    mesh.record_events(&op, events, IngestDoor::Rest)
        .await
        .unwrap();
    mesh.policy_check(
        &op,
        PolicyCheckInput {
            agent_id: "bot-1".into(),
            action: "email.send".into(),
            content: Some("write to bob@example.com".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    mesh.live().flush_once(true).await.unwrap();
    mesh.housekeeping().await;
    mesh
}

struct Client {
    app: axum::Router,
    cookie: Option<String>,
}

impl Client {
    async fn send(&self, req: Request<Body>) -> (StatusCode, String, axum::http::HeaderMap) {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned(), headers)
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let mut req = Request::get(path).header(header::HOST, "console.test");
        if let Some(c) = &self.cookie {
            req = req.header(header::COOKIE, c);
        }
        let (status, body, _) = self.send(req.body(Body::empty()).unwrap()).await;
        (status, body)
    }

    async fn post(&self, path: &str, form: &str) -> (StatusCode, String) {
        let mut req = Request::post(path)
            .header(header::HOST, "console.test")
            .header(header::ORIGIN, "http://console.test")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = &self.cookie {
            req = req.header(header::COOKIE, c);
        }
        let (status, body, _) = self
            .send(req.body(Body::from(form.to_string())).unwrap())
            .await;
        (status, body)
    }

    async fn sign_in(app: &axum::Router, token: &str) -> (StatusCode, Client) {
        let mut client = Client {
            app: app.clone(),
            cookie: None,
        };
        let req = Request::post("/ui/login")
            .header(header::HOST, "console.test")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={token}&next=/ui/fleet")))
            .unwrap();
        let (status, _, headers) = client.send(req).await;
        client.cookie = headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_string);
        (status, client)
    }
}

fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..at + 64].to_string()
}

#[tokio::test]
async fn pages_render_the_tenant_and_writes_are_guarded() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = mesh(dir.path()).await;
    let app = meshos_console::router(Console::new(mesh, Arc::new(FixedTokens)).unwrap());

    // Not signed in: pages send to the sign-in page, writes are refused.
    let anonymous = Client {
        app: app.clone(),
        cookie: None,
    };
    let (status, _) = anonymous.get("/ui/fleet").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = anonymous.post("/ui/logout", "csrf=x").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = Client::sign_in(&app, "msh_wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, agent) = Client::sign_in(&app, "msh_agent").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(agent.cookie.is_none(), "an agent token got a session");

    let (status, op) = Client::sign_in(&app, "msh_op").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, fleet) = op.get("/ui/fleet").await;
    assert_eq!(status, StatusCode::OK, "{fleet}");
    assert!(
        fleet.contains("bot-1") && fleet.contains("bot-2"),
        "{fleet}"
    );
    assert!(
        fleet.contains("<svg") || fleet.contains("data-agent"),
        "{fleet}"
    );
    for page in [
        "/ui/agents/bot-1",
        "/ui/incidents",
        "/ui/incidents?state=all",
        "/ui/approvals",
        "/ui/evidence",
        "/ui/evidence?agent=bot-2",
        "/ui/evidence?type=decision",
        "/ui/evidence/0",
        "/ui/policy",
        "/ui/policy?verdict=redact",
    ] {
        let (status, body) = op.get(page).await;
        assert_eq!(status, StatusCode::OK, "{page}: {body}");
    }
    let (_, record) = op.get("/ui/evidence/0").await;
    assert!(record.contains("id=\"proof-data\"") && record.contains("meshos.ledger.v1"));
    let (_, only_decisions) = op.get("/ui/evidence?type=decision").await;
    assert!(
        only_decisions.contains("email.send → redact"),
        "{only_decisions}"
    );
    assert!(!only_decisions.contains("llm_call"), "{only_decisions}");
    let (status, _) = op.get("/ui/evidence?type=nonsense").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, decisions) = op.get("/ui/policy?verdict=redact").await;
    assert!(decisions.contains("pii-redact"), "{decisions}");
    let (status, _) = op.get("/ui/agents/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A write without the session's CSRF token is refused; with it, it goes through.
    let (status, body) = op.post("/ui/logout", "csrf=0").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = op.get("/ui/fleet").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a refused sign-out ended the session"
    );

    // An auditor reads everything and is shown no buttons; its writes are refused.
    let (_, auditor) = Client::sign_in(&app, "msh_au").await;
    let (status, fleet) = auditor.get("/ui/fleet").await;
    assert_eq!(status, StatusCode::OK);
    assert!(fleet.contains("acme · auditor"));
    let (_, approvals) = auditor.get("/ui/approvals").await;
    assert!(!approvals.contains("value=\"approve\""));
    let csrf = csrf_of(&fleet);
    let (status, body) = auditor
        .post(
            "/ui/approvals/dec_nope",
            &format!("csrf={csrf}&answer=approve"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Another tenant's operator sees none of acme's agents or records.
    let (_, other) = Client::sign_in(&app, "msh_other").await;
    let (_, fleet) = other.get("/ui/fleet").await;
    assert!(!fleet.contains("bot-1"), "{fleet}");
    let (status, _) = other.get("/ui/agents/bot-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = other.get("/ui/evidence/0").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Signing out with the token ends the session.
    let csrf = csrf_of(&op.get("/ui/fleet").await.1);
    let (status, _) = op.post("/ui/logout", &format!("csrf={csrf}")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = op.get("/ui/fleet").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

/// One session may hold at most 8 live incident streams (so its tabs cannot take all 256); a
/// closed stream frees its slot.
#[tokio::test]
async fn one_session_holds_a_bounded_number_of_live_streams() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = mesh(dir.path()).await;
    let now = meshos_types::now_ms();
    mesh.store()
        .insert_incident(&meshos_store::StoredIncident {
            id: "inc_live".into(),
            tenant: "acme".into(),
            kind: "violation_burst".into(),
            severity: "high".into(),
            state: "open".into(),
            correlation_key: "k".into(),
            subject: Some("agent:bot-1".into()),
            data: serde_json::json!({ "affected_agents": ["bot-1"] }),
            fault_started_at_ms: now,
            opened_at_ms: now,
            updated_at_ms: now,
            resolved_at_ms: None,
            version: 1,
        })
        .await
        .unwrap();
    let app = meshos_console::router(Console::new(mesh, Arc::new(FixedTokens)).unwrap());
    let (_, op) = Client::sign_in(&app, "msh_op").await;
    let open = || {
        let req = Request::get("/ui/incidents/inc_live/live")
            .header(header::HOST, "console.test")
            .header(header::COOKIE, op.cookie.clone().unwrap())
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(req)
    };
    let mut held = Vec::new();
    for _ in 0..8 {
        let res = open().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers().get(header::CONTENT_TYPE).unwrap(),
            "text/event-stream"
        );
        held.push(res);
    }
    assert_eq!(
        open().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Another session still gets one.
    let (_, other) = Client::sign_in(&app, "msh_au").await;
    let req = Request::get("/ui/incidents/inc_live/live")
        .header(header::HOST, "console.test")
        .header(header::COOKIE, other.cookie.clone().unwrap())
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::OK
    );
    drop(held.pop());
    assert_eq!(open().await.unwrap().status(), StatusCode::OK);
}
