//! The HTTP app: `/mcp` (streamable HTTP), `POST /v1/events`, `POST /v1/traces` (OTLP/HTTP),
//! `POST /v1/policy/reload`, the REST twins of the tools (`rest.rs`), `/healthz`, `/metrics`.
//! Bearer authentication is a middleware that puts the `Principal` into request extensions,
//! where both REST handlers and MCP tools (through rmcp's injected `http::request::Parts`) read it.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use futures_util::FutureExt as _;
use meshos_trust::otlp::{self, Encoding, MappedSpan, RejectedSpan, RpcCode};
use meshos_types::{Principal, Role};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::auth::PrincipalCache;
use crate::body_budget::{BodyBudget, reserve_body_room};
use crate::event_batch::parse_event_batch;
use crate::limits::ServerLimits;
use crate::mcp::MeshMcp;
use crate::rest;
use crate::sessions::{SessionGuard, guard_sessions};
use meshos_service::bundle_source::ReloadOutcome;
use meshos_service::events::storable_spans;
use meshos_service::{EventInput, IngestDoor, Mesh, MeshError};

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

/// Refuses a request to `/mcp` whose `Origin` names a host that is not allowed (loopback and
/// `--allowed-host`): the MCP transport requires a 403 for a present, invalid Origin, since a
/// web page on another site could otherwise drive a local server (DNS rebinding).
async fn require_allowed_origin(
    State(hosts): State<Arc<Vec<String>>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .ok()
            .and_then(origin_host)
            .is_some_and(|host| hosts.iter().any(|h| h.eq_ignore_ascii_case(host)));
        if !allowed {
            return json_error(
                StatusCode::FORBIDDEN,
                format!(
                    "Origin {:?} is not allowed; expected a loopback origin or one of --allowed-host",
                    origin.to_str().unwrap_or("(not text)")
                ),
            );
        }
    }
    next.run(req).await
}

/// The host of an Origin (`scheme://host[:port]`), without brackets or port.
fn origin_host(origin: &str) -> Option<&str> {
    let (_, rest) = origin.split_once("://")?;
    let authority = rest.split('/').next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next();
    }
    Some(authority.rsplit_once(':').map_or(authority, |(h, _)| h)).filter(|h| !h.is_empty())
}

/// A `POST /mcp` whose body is not a JSON-RPC message gets the JSON-RPC error the spec asks for
/// (HTTP 400: -32700 for a body that is not JSON, -32600 for JSON that is not one JSON-RPC
/// message, -32602 for an MCP request whose params do not fit; see `jsonrpc.rs`) rather than
/// rmcp's plain-text 415.
async fn jsonrpc_errors(
    Extension(limits): Extension<ServerLimits>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != axum::http::Method::POST {
        return next.run(req).await;
    }
    let max = limits.bodies.mcp_bytes;
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, max).await {
        Ok(b) => b,
        Err(e) => {
            return jsonrpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                -32600,
                format!("request body unreadable or over {max} bytes: {e}"),
            );
        }
    };
    if let Err(rejection) = crate::jsonrpc::parse_client_message(&bytes) {
        return (StatusCode::BAD_REQUEST, Json(rejection.to_json())).into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

fn jsonrpc_error(status: StatusCode, code: i64, message: String) -> Response {
    (
        status,
        Json(serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": { "code": code, "message": message },
        })),
    )
        .into_response()
}

/// A panic while serving one request answers that request with a 500 (nothing was decided or
/// acknowledged for it) instead of dropping its connection without a word.
async fn isolate_panics(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(%path, "request handler panicked; answered 500");
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: the request failed unexpectedly and nothing was decided or stored; retry, and report it if it persists",
            )
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is case-insensitive
/// (RFC 9110 §11.1), so `bearer` and `BEARER` are accepted as well.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

async fn require_bearer(State(auth): State<AuthState>, mut req: Request, next: Next) -> Response {
    let unauthorized = |msg: &str| {
        let mut r = json_error(StatusCode::UNAUTHORIZED, msg);
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    };
    // Read in place: the header is borrowed until the lookup is done.
    let Some(token) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
    else {
        return unauthorized("missing bearer token: send Authorization: Bearer <token>");
    };
    let found = auth.tokens.authenticate(auth.mesh.store(), token).await;
    match found {
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
    match mesh.store().ping().await {
        Ok(()) => Json(serde_json::json!({
            "status": "ok",
            "policy_bundle": mesh.bundle().current().version(),
            "healer_leader": mesh.metrics().healer_leader.get() == 1,
        }))
        .into_response(),
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}")),
    }
}

fn metrics_text(text: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET /metrics` on the main address: operators, admins and auditors, each seeing only its own
/// tenant's labelled series (agents' trust scores, when they are exported at all).
async fn metrics(
    State(mesh): State<Arc<Mesh>>,
    Extension(principal): Extension<Principal>,
) -> Response {
    if principal.role == Role::Agent {
        return json_error(
            StatusCode::FORBIDDEN,
            "an agent token cannot read /metrics; expected an operator, admin or auditor token",
        );
    }
    metrics_text(mesh.metrics().encode_for_tenant(&principal.tenant))
}

/// `GET /metrics` on the separate metrics address (`[metrics] bind`): every series, no token —
/// that address is meant for a scraper on a private network.
async fn all_metrics(State(mesh): State<Arc<Mesh>>) -> Response {
    metrics_text(mesh.metrics().encode())
}

/// The app of the separate metrics address.
pub fn metrics_router(mesh: Arc<Mesh>) -> Router {
    Router::new()
        .route("/metrics", get(all_metrics))
        .with_state(mesh)
}

/// Memory a parsed `/v1/events` body takes per byte of JSON, beyond the body itself (measured:
/// a 2 MiB batch of 10,000 events took about 34 MB).
const EVENTS_DECODE_FACTOR: usize = 16;
/// Memory a decoded OTLP span and a decoded attribute or other message take (measured: about
/// 2.2 KB and 420 B), rounded up.
const OTLP_BYTES_PER_SPAN: usize = 2_560;
const OTLP_BYTES_PER_ELEMENT: usize = 512;

async fn ingest_events(
    State(mesh): State<Arc<Mesh>>,
    Extension(principal): Extension<Principal>,
    Extension(limits): Extension<ServerLimits>,
    Extension(budget): Extension<Arc<BodyBudget>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let coding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let body = match otlp::decompress(&body, coding, limits.bodies.events_decoded_bytes) {
        Ok(b) => b,
        Err(e) => {
            let status = match e {
                _ if e.is_unsupported_media() => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                otlp::OtlpError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            return json_error(status, e.to_string());
        }
    };
    // The body read off the wire is already reserved; an inflated one is not.
    let inflated = if coding.is_some() { body.len() } else { 0 };
    let _room = match budget
        .reserve_decoding(body.len().saturating_mul(EVENTS_DECODE_FACTOR) + inflated)
        .await
    {
        Ok(room) => room,
        Err(no_room) => return no_room.into_response(),
    };
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

// ---- OTLP/HTTP traces ------------------------------------------------------------------------

fn otlp_reply(status: StatusCode, encoding: Encoding, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

fn otlp_failure(status: StatusCode, code: RpcCode, message: &str, encoding: Encoding) -> Response {
    otlp_reply(
        status,
        encoding,
        otlp::encode_status(code, message, encoding),
    )
}

/// Splits mapped spans into those the principal may record and rejections for the rest (an agent
/// token reports only its own agent; auditors record nothing).
pub fn permitted_spans(
    principal: &Principal,
    spans: Vec<MappedSpan>,
) -> (Vec<MappedSpan>, Vec<RejectedSpan>) {
    let mut rejected = Vec::new();
    let permitted = spans
        .into_iter()
        .filter_map(
            |m| match principal.may_act_for(&m.event.agent_id, "record events") {
                Ok(()) => Some(m),
                Err(e) => {
                    rejected.push(RejectedSpan {
                        span: m.span,
                        reason: e.to_string(),
                    });
                    None
                }
            },
        )
        .collect();
    (permitted, rejected)
}

/// What storing spans chunk by chunk came to.
#[derive(Debug, Default)]
pub struct ChunkedRecording {
    pub recorded: usize,
    /// Spans of the chunks that failed, with the chunk's error.
    pub rejected: Vec<RejectedSpan>,
    /// The first storage failure, which a client may retry.
    pub unavailable: Option<MeshError>,
}

/// Stores spans in chunks of at most `chunk_size` events (each chunk all-or-none), so a large
/// export fits the batch limit instead of failing whole; a failed chunk's spans are rejected.
pub async fn record_in_chunks<F, Fut>(
    spans: Vec<MappedSpan>,
    chunk_size: usize,
    mut record: F,
) -> ChunkedRecording
where
    F: FnMut(Vec<EventInput>) -> Fut,
    Fut: std::future::Future<Output = Result<usize, MeshError>>,
{
    let mut out = ChunkedRecording::default();
    let mut rest = spans.into_iter();
    loop {
        let (refs, events): (Vec<_>, Vec<_>) = rest
            .by_ref()
            .take(chunk_size.max(1))
            .map(|m| (m.span, m.event))
            .unzip();
        if events.is_empty() {
            return out;
        }
        match record(events).await {
            Ok(n) => out.recorded += n,
            Err(e) => {
                let reason = e.to_string();
                out.rejected
                    .extend(refs.into_iter().map(|span| RejectedSpan {
                        span,
                        reason: reason.clone(),
                    }));
                if matches!(e, MeshError::Store(_)) && out.unavailable.is_none() {
                    out.unavailable = Some(e);
                }
            }
        }
    }
}

/// `POST /v1/traces`: an OTLP/HTTP trace export (protobuf or JSON, optionally gzip/deflate),
/// each span mapped onto an event of the token's tenant (`meshos_trust::otlp`). Unmappable or
/// unpermitted spans are reported as OTLP partial success; the rest are stored.
async fn ingest_traces(
    State(mesh): State<Arc<Mesh>>,
    Extension(principal): Extension<Principal>,
    Extension(limits): Extension<ServerLimits>,
    Extension(budget): Extension<Arc<BodyBudget>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header_text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let encoding = match Encoding::from_content_type(header_text(header::CONTENT_TYPE)) {
        Ok(e) => e,
        Err(e) => {
            return otlp_failure(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                RpcCode::InvalidArgument,
                &e.to_string(),
                Encoding::Json,
            );
        }
    };
    let failure = |e: otlp::OtlpError| {
        let (status, code) = match e {
            _ if e.is_unsupported_media() => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, RpcCode::InvalidArgument)
            }
            otlp::OtlpError::TooLarge { .. } | otlp::OtlpError::TooManyElements { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, RpcCode::ResourceExhausted)
            }
            _ => (StatusCode::BAD_REQUEST, RpcCode::InvalidArgument),
        };
        otlp_failure(status, code, &e.to_string(), encoding)
    };
    let coding = header_text(header::CONTENT_ENCODING);
    let raw = match otlp::decompress(&body, coding, limits.bodies.otlp_decoded_bytes) {
        Ok(raw) => raw,
        Err(e) => return failure(e),
    };
    // What decoding will take, from what the body holds, reserved before it is decoded.
    let counts = match otlp::count_request(&raw, encoding, &limits.otlp) {
        Ok(c) => c,
        Err(e) => return failure(e),
    };
    let inflated = if coding.is_some() { raw.len() } else { 0 };
    let needed =
        counts.spans * OTLP_BYTES_PER_SPAN + counts.elements * OTLP_BYTES_PER_ELEMENT + inflated;
    let _room = match budget.reserve_decoding(needed).await {
        Ok(room) => room,
        Err(no_room) => return no_room.into_response(),
    };
    let decoded_len = raw.len();
    let request = match otlp::decode_request_within(&raw, encoding, &limits.otlp) {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    drop(raw);
    let warning = otlp::empty_export_warning(&request, decoded_len);
    let mapped = otlp::map_request(&request);
    let (permitted, forbidden) = permitted_spans(&principal, mapped.events);
    let (storable, refused) = storable_spans(&mesh.limits(), permitted);
    let mut rejected = mapped.rejected;
    rejected.extend(forbidden);
    rejected.extend(refused);
    let (m, p) = (&*mesh, &principal);
    let recording = record_in_chunks(
        storable,
        mesh.limits().max_batch_events,
        |events| async move {
            m.record_events(p, events, IngestDoor::Otlp)
                .await
                .map(|r| r.len())
        },
    )
    .await;
    if recording.recorded == 0
        && let Some(e) = &recording.unavailable
    {
        tracing::error!(error = %e, "OTLP export not stored");
        return otlp_failure(
            StatusCode::SERVICE_UNAVAILABLE,
            RpcCode::Unavailable,
            &e.to_string(),
            encoding,
        );
    }
    rejected.extend(recording.rejected);
    mesh.metrics()
        .otlp_spans_rejected
        .inc_by(rejected.len() as u64);
    if !rejected.is_empty() {
        tracing::debug!(
            recorded = recording.recorded,
            rejected = rejected.len(),
            "OTLP export partially accepted"
        );
    }
    otlp_reply(
        StatusCode::OK,
        encoding,
        otlp::encode_export_response(&rejected, warning, encoding),
    )
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
    let outcome = mesh.bundle().reload();
    let body = outcome.to_json(mesh.bundle().current().version());
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

/// An MCP endpoint over streamable HTTP with the server's session limits, Origin check and
/// JSON-RPC error shaping; `/mcp` and `/gateway/mcp` are both built by it.
fn mcp_endpoint<S>(
    path: &str,
    make: impl Fn() -> S + Send + Sync + 'static,
    allowed_hosts: &[String],
    shutdown: tokio_util::sync::CancellationToken,
    limits: &ServerLimits,
) -> Router<Arc<Mesh>>
where
    S: rmcp::ServerHandler + Send + 'static,
{
    let sessions = Arc::new(LocalSessionManager::default());
    let guard = Arc::new(SessionGuard::new(sessions.clone(), limits.sessions));
    let service = StreamableHttpService::new(
        move || Ok(make()),
        sessions,
        StreamableHttpServerConfig::default()
            .with_allowed_hosts(allowed_hosts.to_vec())
            .with_cancellation_token(shutdown),
    );
    Router::new()
        .nest_service(path, service)
        .layer(middleware::from_fn(jsonrpc_errors))
        .layer(middleware::from_fn_with_state(guard, guard_sessions))
        .layer(middleware::from_fn_with_state(
            Arc::new(allowed_hosts.to_vec()),
            require_allowed_origin,
        ))
}

pub fn router(
    mesh: Arc<Mesh>,
    allowed_hosts: Vec<String>,
    shutdown: tokio_util::sync::CancellationToken,
    limits: ServerLimits,
    gateway: Option<Arc<meshos_gateway::Gateway>>,
    console: Arc<meshos_console::Console>,
) -> Router {
    let mcp_mesh = mesh.clone();
    let budget = Arc::new(BodyBudget::new(limits.bodies));
    let decoding_budget = budget.clone();
    let mut endpoints = mcp_endpoint(
        "/mcp",
        move || MeshMcp::new(mcp_mesh.clone(), None),
        &allowed_hosts,
        shutdown.clone(),
        &limits,
    );
    if let Some(gateway) = gateway {
        endpoints = endpoints.merge(mcp_endpoint(
            "/gateway/mcp",
            move || meshos_gateway::GatewayMcp::new(gateway.clone(), None),
            &allowed_hosts,
            shutdown,
            &limits,
        ));
    }
    let protected = endpoints
        .route("/v1/events", post(ingest_events))
        .route(
            "/v1/traces",
            post(ingest_traces).layer(DefaultBodyLimit::max(limits.bodies.otlp_bytes)),
        )
        .route("/metrics", get(metrics))
        .route("/v1/policy/reload", post(reload_policy))
        .route("/v1/policy/check", post(rest::policy_check))
        .route("/v1/whoami", get(rest::whoami))
        .route("/v1/carbon/route", post(rest::carbon_route))
        .route("/v1/agents/{agent_id}/trust", get(rest::trust_score))
        .route("/v1/incidents", get(rest::incident_list))
        .route("/v1/incidents/{incident_id}", get(rest::incident_show))
        .route(
            "/v1/incidents/{incident_id}/approve",
            post(rest::incident_approve),
        )
        .route(
            "/v1/incidents/{incident_id}/deny",
            post(rest::incident_deny),
        )
        .route(
            "/v1/incidents/{incident_id}/release",
            post(rest::incident_release),
        )
        .route("/v1/evals/suites", get(rest::eval_suites))
        .route("/v1/evals/suites/{suite_id}", get(rest::eval_suite))
        .route("/v1/evals/runs", get(rest::eval_runs).post(rest::eval_run))
        .route("/v1/evals/runs/{run_id}", get(rest::eval_run_show))
        .route(
            "/v1/evals/runs/{run_id}/baseline",
            post(rest::eval_pin_baseline),
        )
        .layer(DefaultBodyLimit::max(limits.bodies.request_bytes))
        // Inside the bearer check: a client without a token reserves no room.
        .layer(middleware::from_fn_with_state(budget, reserve_body_room))
        .layer(middleware::from_fn_with_state(
            AuthState {
                mesh: mesh.clone(),
                tokens: Arc::new(PrincipalCache::new(TOKEN_CACHE_TTL)),
            },
            require_bearer,
        ));
    // The console authenticates with its own session cookie, not a bearer token; its forms
    // are small.
    let console = meshos_console::router(console).layer(DefaultBodyLimit::max(CONSOLE_FORM_BYTES));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(protected)
        .layer(Extension(limits))
        .layer(Extension(decoding_budget))
        .with_state(mesh)
        .merge(console)
        .layer(middleware::from_fn(isolate_panics))
}

/// The largest console form (a note of at most 4 KiB, a digest, a token).
const CONSOLE_FORM_BYTES: usize = 16 * 1024;

/// The console's sign-in checks tokens the way bearer requests do (the same cache).
pub struct ConsoleTokens {
    mesh: Arc<Mesh>,
    cache: PrincipalCache,
}

impl ConsoleTokens {
    pub fn new(mesh: Arc<Mesh>) -> ConsoleTokens {
        ConsoleTokens {
            mesh,
            cache: PrincipalCache::new(TOKEN_CACHE_TTL),
        }
    }
}

impl meshos_console::TokenCheck for ConsoleTokens {
    fn principal<'a>(
        &'a self,
        token: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<Option<Principal>, String>> {
        Box::pin(async move {
            self.cache
                .authenticate(self.mesh.store(), token)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(agent: &str, n: usize) -> MappedSpan {
        MappedSpan {
            span: otlp::SpanRef {
                trace_id: "t".into(),
                span_id: format!("s{n}"),
                name: "chat".into(),
            },
            event: EventInput {
                agent_id: agent.into(),
                kind: "llm_call".into(),
                outcome: meshos_types::Outcome::Ok,
                latency_ms: None,
                input_tokens: None,
                output_tokens: None,
                cost_usd: None,
                model: None,
                tool: None,
                region: None,
                attributes: None,
                decision_id: None,
            },
        }
    }

    fn principal(role: Role, agent: Option<&str>) -> Principal {
        Principal {
            token_id: "tok".into(),
            tenant: "t".into(),
            role,
            agent_id: agent.map(str::to_string),
        }
    }

    #[test]
    fn an_agent_token_records_only_its_own_spans() {
        let spans = || vec![mapped("a1", 0), mapped("a2", 1), mapped("a1", 2)];
        let (ok, rejected) = permitted_spans(&principal(Role::Agent, Some("a1")), spans());
        assert_eq!(ok.len(), 2);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].span.span_id, "s1");
        assert!(
            rejected[0].reason.contains("\"a2\""),
            "{}",
            rejected[0].reason
        );
        let (ok, rejected) = permitted_spans(&principal(Role::Operator, None), spans());
        assert_eq!((ok.len(), rejected.len()), (3, 0));
        let (ok, rejected) = permitted_spans(&principal(Role::Auditor, None), spans());
        assert_eq!((ok.len(), rejected.len()), (0, 3));
        assert!(
            rejected[0].reason.contains("read-only"),
            "{}",
            rejected[0].reason
        );
    }

    #[tokio::test]
    async fn big_exports_are_stored_in_chunks_and_a_failed_chunk_rejects_only_its_spans() {
        let spans: Vec<MappedSpan> = (0..5).map(|n| mapped("a", n)).collect();
        let mut sizes = Vec::new();
        let outcome = record_in_chunks(spans, 2, |events| {
            sizes.push(events.len());
            let call = sizes.len();
            async move {
                if call == 2 {
                    Err(MeshError::Invalid {
                        field: "events[0].kind".into(),
                        message: "bad".into(),
                    })
                } else {
                    Ok(events.len())
                }
            }
        })
        .await;
        assert_eq!(sizes, [2, 2, 1]);
        assert_eq!(outcome.recorded, 3);
        let ids: Vec<&str> = outcome
            .rejected
            .iter()
            .map(|r| r.span.span_id.as_str())
            .collect();
        assert_eq!(ids, ["s2", "s3"]);
        assert!(outcome.rejected[0].reason.contains("events[0].kind"));
        assert!(
            outcome.unavailable.is_none(),
            "a bad chunk is not a retryable failure"
        );
    }

    #[tokio::test]
    async fn a_storage_failure_is_reported_as_retryable() {
        let spans: Vec<MappedSpan> = (0..3).map(|n| mapped("a", n)).collect();
        let outcome = record_in_chunks(spans, 10, |_| async {
            Err(MeshError::Store(meshos_store::StoreError::Corrupt {
                what: "events".into(),
                detail: "disk gone".into(),
            }))
        })
        .await;
        assert_eq!(outcome.recorded, 0);
        assert_eq!(outcome.rejected.len(), 3);
        assert!(matches!(outcome.unavailable, Some(MeshError::Store(_))));
        let nothing = record_in_chunks(Vec::new(), 10, |_| async {
            Err::<usize, _>(MeshError::Internal("must not be called".into()))
        })
        .await;
        assert_eq!((nothing.recorded, nothing.rejected.len()), (0, 0));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc "), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }

    #[test]
    fn origins_are_matched_on_their_host() {
        assert_eq!(origin_host("http://localhost:7700"), Some("localhost"));
        assert_eq!(origin_host("https://127.0.0.1"), Some("127.0.0.1"));
        assert_eq!(origin_host("http://[::1]:7700"), Some("::1"));
        assert_eq!(
            origin_host("http://evil.example.com"),
            Some("evil.example.com")
        );
        assert_eq!(origin_host("null"), None);
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_the_next_request_is_served() {
        use tower::ServiceExt as _;
        let app: Router = Router::new()
            .route(
                "/boom",
                get(|| async {
                    // Stands for any bug that panics inside a handler.
                    panic!("a handler bug");
                    #[allow(unreachable_code)]
                    "unreachable"
                }),
            )
            .route("/fine", get(|| async { "ok" }))
            .layer(middleware::from_fn(isolate_panics));
        let get_ = |uri: &str| {
            axum::http::Request::builder()
                .uri(uri)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let boom = app.clone().oneshot(get_("/boom")).await.unwrap();
        assert_eq!(boom.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let fine = app.oneshot(get_("/fine")).await.unwrap();
        assert_eq!(fine.status(), StatusCode::OK);
    }
}
