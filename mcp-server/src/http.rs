//! The HTTP app: `/mcp` (streamable HTTP), `POST /v1/events`, `POST /v1/policy/reload`,
//! `/healthz`, `/metrics`.
//! Bearer authentication is a middleware that puts the `Principal` into request extensions,
//! where both REST handlers and MCP tools (through rmcp's injected `http::request::Parts`) read it.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use meshos_types::{Principal, Role};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde::Deserialize;

use crate::auth::PrincipalCache;
use crate::bundle_source::ReloadOutcome;
use crate::checked::parse_named;
use crate::mcp::MeshMcp;
use crate::mesh::{EventInput, IngestDoor, Mesh, MeshError};

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// How long a verified token is trusted without asking the database again.
const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Clone)]
struct AuthState {
    mesh: Arc<Mesh>,
    tokens: Arc<PrincipalCache>,
}

async fn require_bearer(State(auth): State<AuthState>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_string);
    let unauthorized = |msg: &str| {
        let mut r = json_error(StatusCode::UNAUTHORIZED, msg);
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    };
    let Some(token) = token else {
        return unauthorized("missing bearer token: send Authorization: Bearer <token>");
    };
    match auth.tokens.authenticate(&auth.mesh.store, &token).await {
        Ok(Some(principal)) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Ok(None) => unauthorized("invalid bearer token"),
        Err(e) => {
            tracing::error!(error = %e, "token lookup failed");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot check the token: {e}"),
            )
        }
    }
}

async fn healthz(State(mesh): State<Arc<Mesh>>) -> Response {
    match mesh.store.ping().await {
        Ok(()) => Json(
            serde_json::json!({"status": "ok", "policy_bundle": mesh.bundle.current().version()}),
        )
        .into_response(),
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}")),
    }
}

async fn metrics(State(mesh): State<Arc<Mesh>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        mesh.metrics.encode(),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EventBatch {
    Wrapped { events: Vec<serde_json::Value> },
    Bare(Vec<serde_json::Value>),
}

/// Parses a batch body: `{"events":[…]}`, a JSON array, or JSON lines, naming the bad item.
pub fn parse_event_batch(body: &[u8]) -> Result<Vec<EventInput>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_string())?;
    let items: Vec<serde_json::Value> = match serde_json::from_str::<EventBatch>(text) {
        Ok(EventBatch::Wrapped { events }) | Ok(EventBatch::Bare(events)) => events,
        Err(whole_err) => {
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            if lines.len() <= 1 {
                return Err(format!(
                    "body is not a JSON event batch ({whole_err}); expected {{\"events\":[…]}}, a JSON array or JSON lines"
                ));
            }
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
                .collect::<Result<_, _>>()?
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| parse_named::<EventInput>(v).map_err(|e| format!("events[{i}]: {e}")))
        .collect()
}

async fn ingest_events(
    State(mesh): State<Arc<Mesh>>,
    Extension(principal): Extension<Principal>,
    body: Bytes,
) -> Response {
    let inputs = match parse_event_batch(&body) {
        Ok(i) => i,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e),
    };
    match mesh
        .record_events(&principal, inputs, IngestDoor::Rest)
        .await
    {
        Ok(recorded) => Json(serde_json::json!({
            "accepted": recorded.len(),
            "events": recorded,
        }))
        .into_response(),
        Err(e @ MeshError::Invalid { .. }) => json_error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e @ MeshError::Forbidden(_)) => json_error(StatusCode::FORBIDDEN, e.to_string()),
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// `POST /v1/policy/reload`: re-reads the `--policy-dir` bundle now (operators and admins).
/// 200 with the version serving, or 422 with the validation errors of a rejected bundle (the
/// last good one keeps serving).
async fn reload_policy(
    State(mesh): State<Arc<Mesh>>,
    Extension(principal): Extension<Principal>,
) -> Response {
    if !matches!(principal.role, Role::Operator | Role::Admin) {
        return json_error(
            StatusCode::FORBIDDEN,
            format!(
                "role {} cannot reload policies; expected an operator or admin token",
                principal.role
            ),
        );
    }
    let outcome = mesh.bundle.reload();
    let body = outcome.to_json(mesh.bundle.current().version());
    match outcome {
        ReloadOutcome::Reloaded { from, to } => {
            tracing::info!(%from, %to, by = %principal.token_id, "policy bundle reloaded on request");
        }
        ReloadOutcome::Rejected { .. } | ReloadOutcome::StillRejected { .. } => {
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
        }
        ReloadOutcome::NotWatched | ReloadOutcome::Unchanged => {}
    }
    Json(body).into_response()
}

pub fn router(
    mesh: Arc<Mesh>,
    allowed_hosts: Vec<String>,
    shutdown: tokio_util::sync::CancellationToken,
) -> Router {
    let mcp_mesh = mesh.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(MeshMcp::new(mcp_mesh.clone(), None)),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_allowed_hosts(allowed_hosts)
            .with_cancellation_token(shutdown),
    );
    let protected = Router::new()
        .nest_service("/mcp", mcp)
        .route("/v1/events", post(ingest_events))
        .route("/v1/policy/reload", post(reload_policy))
        .layer(middleware::from_fn_with_state(
            AuthState {
                mesh: mesh.clone(),
                tokens: Arc::new(PrincipalCache::new(TOKEN_CACHE_TTL)),
            },
            require_bearer,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(protected)
        .with_state(mesh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_formats_are_accepted_and_errors_name_the_item() {
        let one = r#"{"agent_id":"a","kind":"k","outcome":"ok"}"#;
        assert_eq!(
            parse_event_batch(format!("{{\"events\":[{one}]}}").as_bytes())
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            parse_event_batch(format!("[{one},{one}]").as_bytes())
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            parse_event_batch(format!("{one}\n{one}\n").as_bytes())
                .unwrap()
                .len(),
            2
        );
        let bad = format!("[{one},{{\"agent_id\":\"a\",\"kind\":\"k\",\"outcome\":\"maybe\"}}]");
        let err = parse_event_batch(bad.as_bytes()).unwrap_err();
        assert!(
            err.starts_with("events[1]") && err.contains("outcome"),
            "{err}"
        );
        assert!(parse_event_batch(b"not json").is_err());
    }
}
