//! The console's routes: thin handlers that read the request, call a `views` function and
//! render a template; the session, CSRF and Origin checks; security headers on every answer.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json};
use futures_util::stream::{self, Stream};
use meshos_service::MeshError;
use meshos_service::approvals::ApprovalDecideInput;
use meshos_service::incidents::{self, IncidentDecideInput};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::lint::LintState;
use crate::render::STATIC_FILES;
use crate::session::{self, Session};
use crate::{Console, views};

/// No script but our own files, no inline script or style, nothing framed, forms only to us.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// A long-lived live stream ends after this; the browser reconnects on its own.
const LIVE_STREAM_LIFETIME: Duration = Duration::from_secs(15 * 60);
const LIVE_POLL: Duration = Duration::from_secs(1);
/// The longest token accepted at sign-in (ours are 47 bytes).
const MAX_TOKEN_BYTES: usize = 512;

/// The `/ui` routes, with the console's state.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/fleet") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/fleet") }))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/fleet", get(fleet))
        .route("/ui/agents/{agent_id}", get(agent))
        .route("/ui/incidents", get(incident_list))
        .route("/ui/incidents/{incident_id}", get(incident))
        .route("/ui/incidents/{incident_id}/live", get(incident_live))
        .route(
            "/ui/incidents/{incident_id}/approve",
            post(incident_approve),
        )
        .route("/ui/incidents/{incident_id}/deny", post(incident_deny))
        .route("/ui/approvals", get(approvals))
        .route("/ui/approvals/{decision_id}", post(approval_decide))
        .route("/ui/evidence", get(evidence))
        .route("/ui/evidence/{index}", get(record))
        .route("/ui/evidence/{index}/export", get(record_export))
        .route("/ui/policy", get(policy))
        .route("/ui/static/{file}", get(static_file))
        .layer(middleware::from_fn(same_origin_writes))
        .layer(middleware::from_fn(security_headers))
        .with_state(console)
}

/// `same-origin`, not `no-referrer`: with `no-referrer` Chromium sends `Origin: null` on the
/// page's own form posts, which the Origin check must refuse.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

/// A write whose `Origin` (or, without one, `Sec-Fetch-Site`) says another site sent it is
/// refused before anything reads its body; the CSRF token is checked by each handler.
async fn same_origin_writes(req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let headers = req.headers();
        if let Err(why) = check_same_origin(headers) {
            return error_page(None, StatusCode::FORBIDDEN, why);
        }
    }
    next.run(req).await
}

/// Whether a write came from a page of this server: its Origin names the Host it was sent to.
fn check_same_origin(headers: &HeaderMap) -> Result<(), String> {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(origin) = text(header::ORIGIN) {
        let host = text(header::HOST).unwrap_or("");
        let origin_authority = origin.split_once("://").map(|(_, a)| a).unwrap_or("");
        if origin == "null" || !origin_authority.eq_ignore_ascii_case(host) {
            return Err(format!(
                "cross-site request refused: Origin {origin:?} is not this console ({host:?})"
            ));
        }
    } else if text(header::HeaderName::from_static("sec-fetch-site"))
        .is_some_and(|s| s == "cross-site" || s == "same-site")
    {
        return Err("cross-site request refused".into());
    }
    Ok(())
}

/// A signed-in user, or a redirect to the sign-in page (for pages) or a 403 (for writes).
pub struct SignedIn {
    id: String,
    session: Session,
}

impl FromRequestParts<Arc<Console>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Self::Rejection> {
        let found = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(session::session_id_from_cookies)
            .and_then(|id| console.sessions.get(id).map(|s| (id.to_string(), s)));
        match found {
            Some((id, session)) => Ok(SignedIn { id, session }),
            None if parts.method == Method::GET => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/ui/fleet");
                Err(Redirect::to(&format!("/ui/login?next={}", encode(next))).into_response())
            }
            None => Err(error_page(
                None,
                StatusCode::FORBIDDEN,
                "not signed in (or the session ended): sign in again".into(),
            )),
        }
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where to go after signing in: only a console page, never another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/ui/") && !n.starts_with("/ui//") && !n.contains('\\') => n,
        _ => "/ui/fleet",
    }
}

/// What every page's frame shows about the user.
fn user_frame(session: &Session) -> Value {
    json!({
        "tenant": session.principal.tenant,
        "role": session.principal.role.as_str(),
        "may_act": session.may_act(),
        "csrf": session.csrf,
    })
}

fn status_of(e: &MeshError) -> StatusCode {
    match e {
        MeshError::Invalid { .. } => StatusCode::BAD_REQUEST,
        MeshError::Forbidden(_) => StatusCode::FORBIDDEN,
        MeshError::NotFound(_) => StatusCode::NOT_FOUND,
        MeshError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        MeshError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        MeshError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
    }
}

fn error_page(session: Option<&Session>, status: StatusCode, message: String) -> Response {
    // Rendered without the console state: a fixed, minimal page.
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>{code} · Mesh OS</title>\
         <link rel=\"stylesheet\" href=\"/ui/static/app.css\"></head><body><main class=\"narrow\">\
         <h1>{code}</h1><p class=\"error\" role=\"alert\">{msg}</p><p><a href=\"{back}\">Back</a></p>\
         </main></body></html>",
        code = status.as_u16(),
        msg = escape(&message),
        back = if session.is_some() {
            "/ui/fleet"
        } else {
            "/ui/login"
        },
    );
    (status, Html(body)).into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

impl Console {
    /// Renders `template` with the page's view, or the error page for its error.
    fn page<V: serde::Serialize>(
        &self,
        s: &Session,
        template: &str,
        nav: &str,
        title: &str,
        view: Result<V, MeshError>,
    ) -> Response {
        match view {
            Ok(view) => self.render(
                template,
                json!({ "user": user_frame(s), "nav": nav, "title": title, "view": view }),
            ),
            Err(e) => self.failure(Some(s), status_of(&e), e.to_string(), nav),
        }
    }

    fn render(&self, template: &str, context: Value) -> Response {
        match self.templates.render(template, context) {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "console page failed to render");
                error_page(None, StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }

    fn failure(
        &self,
        s: Option<&Session>,
        status: StatusCode,
        message: String,
        nav: &str,
    ) -> Response {
        let context = json!({
            "user": s.map(user_frame), "nav": nav, "title": status.as_u16().to_string(),
            "status": status.as_u16(), "message": message,
        });
        let mut res = self.render("error.html", context);
        *res.status_mut() = status;
        res
    }
}

// ---- sign-in ------------------------------------------------------------------------------

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(State(c): State<Arc<Console>>, Query(q): Query<NextQuery>) -> Response {
    c.render(
        "login.html",
        json!({ "title": "Sign in", "next": safe_next(q.next.as_deref()) }),
    )
}

#[derive(Deserialize)]
struct LoginForm {
    /// Absent is answered like empty: with the sign-in page and what to paste.
    #[serde(default)]
    token: String,
    next: Option<String>,
}

async fn login(State(c): State<Arc<Console>>, Form(form): Form<LoginForm>) -> Response {
    let next = safe_next(form.next.as_deref()).to_string();
    let refuse = |status: StatusCode, message: &str| {
        let mut res = c.render(
            "login.html",
            json!({ "title": "Sign in", "next": next, "error": message }),
        );
        *res.status_mut() = status;
        res
    };
    let token = form.token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return refuse(
            StatusCode::BAD_REQUEST,
            "paste a Mesh OS token (msh_…) of an operator, admin or auditor",
        );
    }
    match c.tokens.principal(token).await {
        Ok(Some(principal)) => {
            if let Err(why) = views::may_sign_in(&principal) {
                return refuse(StatusCode::FORBIDDEN, &why);
            }
            tracing::info!(tenant = %principal.tenant, role = %principal.role, token = %principal.token_id, "console sign-in");
            let id = c.sessions.start(principal);
            let mut res = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&session::session_cookie(&id)) {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
            res
        }
        Ok(None) => refuse(StatusCode::UNAUTHORIZED, "that token is not valid"),
        Err(e) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("cannot check the token now: {e}"),
        ),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// The session's CSRF token must come back with every write: the refusal when it did not.
fn csrf_refusal(s: &Session, presented: &str) -> Option<Response> {
    (!s.csrf_matches(presented)).then(|| {
        error_page(
            Some(s),
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or wrong: reload the page and try again".into(),
        )
    })
}

async fn logout(
    State(c): State<Arc<Console>>,
    user: SignedIn,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(res) = csrf_refusal(&user.session, &form.csrf) {
        return res;
    }
    c.sessions.end(&user.id);
    let mut res = Redirect::to("/ui/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::cleared_cookie()) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

// ---- pages --------------------------------------------------------------------------------

#[derive(Deserialize)]
struct FleetQuery {
    after: Option<String>,
}

async fn fleet(
    State(c): State<Arc<Console>>,
    user: SignedIn,
    Query(q): Query<FleetQuery>,
) -> Response {
    let s = &user.session;
    let view = views::fleet(&c.mesh, &s.principal, q.after.as_deref()).await;
    c.page(s, "fleet.html", "fleet", "Fleet", view)
}

async fn agent(
    State(c): State<Arc<Console>>,
    user: SignedIn,
    Path(agent_id): Path<String>,
) -> Response {
    let s = &user.session;
    let view = views::agent(&c.mesh, &s.principal, &agent_id).await;
    c.page(s, "agent.html", "fleet", &agent_id, view)
}

#[derive(Deserialize)]
struct IncidentQuery {
    state: Option<String>,
    agent: Option<String>,
}

async fn incident_list(
    State(c): State<Arc<Console>>,
    user: SignedIn,
    Query(q): Query<IncidentQuery>,
) -> Response {
    let s = &user.session;
    let states = match q.state.as_deref().unwrap_or("open") {
        "open" => views::open_states(),
        "" | "all" => Vec::new(),
        one => vec![one.to_string()],
    };
    let agent = q.agent.filter(|a| !a.is_empty());
    let view = views::incident_list(&c.mesh, &s.principal, states, agent).await;
    let chosen = q.state.unwrap_or_else(|| "open".into());
    match view {
        Ok(view) => c.render(
            "incidents.html",
            json!({ "user": user_frame(s), "nav": "incidents", "title": "Incidents", "view": view, "chosen": chosen }),
        ),
        Err(e) => c.failure(Some(s), status_of(&e), e.to_string(), "incidents"),
    }
}

async fn incident(
    State(c): State<Arc<Console>>,
    user: SignedIn,
    Path(incident_id): Path<String>,
) -> Response {
    let s = &user.session;
    let view = views::incident(&c.mesh, &s.principal, &incident_id).await;
    c.page(s, "incident.html", "incidents", &incident_id, view)
}

/// Server-sent events: `changed` (with the new version and state) whenever the incident moves.
async fn incident_live(
    State(c): State<Arc<Console>>,
    user: SignedIn,
    Path(incident_id): Path<String>,
) -> Response {
    let s = user.session;
    let Some(permit) = c.live_slot(&user.id) else {
        return error_page(
            Some(&s),
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live views are open; reload the page by hand".into(),
        );
    };
    let first = match views::incident_version(&c.mesh, &s.principal, &incident_id).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return error_page(
                Some(&s),
                StatusCode::NOT_FOUND,
                format!("incident {incident_id} not found"),
            );
        }
        Err(e) => return error_page(Some(&s), status_of(&e), e.to_string()),
    };
    let deadline = tokio::time::Instant::now() + LIVE_STREAM_LIFETIME;
    let state = (c, s.principal, incident_id, first.0, permit);
    let events = stream::unfold(state, move |(c, p, id, mut seen, permit)| async move {
        loop {
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(LIVE_POLL).await;
            match views::incident_version(&c.mesh, &p, &id).await {
                Ok(Some((version, state))) if version != seen => {
                    seen = version;
                    let event = Event::default()
                        .event("changed")
                        .data(json!({ "version": version, "state": state }).to_string());
                    return Some((Ok::<_, Infallible>(event), (c, p, id, seen, permit)));
                }
                Ok(None) | Err(_) => return None,
                Ok(Some(_)) => {}
            }
        }
    });
    live_response(events)
}

fn live_response(
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> Response {
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[derive(Deserialize)]
struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    note: Option<String>,
}

async fn incident_approve(
    State(c): State<Arc<Console>>,
    user: SignedIn,
    Path(incident_id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Response {
    decide_incident(c, user, incident_id, form, true).await
}

async fn incident_deny(
    State(c): State<Arc<Console>>,
    user: SignedIn,
    Path(incident_id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Response {
    decide_incident(c, user, incident_id, form, false).await
}

/// Approves or denies exactly the plan whose digest the page showed: the healer refuses a
/// digest that is no longer the incident's plan.
async fn decide_incident(
    c: Arc<Console>,
    user: SignedIn,
    incident_id: String,
    form: DecideForm,
    approve: bool,
) -> Response {
    let s = &user.session;
    if let Some(res) = csrf_refusal(s, &form.csrf) {
        return res;
    }
    let input = IncidentDecideInput {
        incident_id: incident_id.clone(),
        digest: form.digest,
        note: form.note.filter(|n| !n.trim().is_empty()),
    };
    match incidents::decide(&c.mesh, &s.principal, input, approve).await {
        Ok(_) => Redirect::to(&format!("/ui/incidents/{}", encode(&incident_id))).into_response(),
        Err(e) => c.failure(Some(s), status_of(&e), e.to_string(), "incidents"),
    }
}

async fn approvals(State(c): State<Arc<Console>>, user: SignedIn) -> Response {
    let s = &user.session;
    let view = views::approvals(&c.mesh, &s.principal).await;
    c.page(s, "approvals.html", "approvals", "Approvals", view)
}

#[derive(Deserialize)]
struct ApprovalForm {
    #[serde(default)]
    csrf: String,
    /// `approve` or `deny`.
    #[serde(default)]
    answer: String,
    #[serde(default)]
    note: Option<String>,
}

async fn approval_decide(
    State(c): State<Arc<Console>>,
    user: SignedIn,
    Path(decision_id): Path<String>,
    Form(form): Form<ApprovalForm>,
) -> Response {
    let s = &user.session;
    if let Some(res) = csrf_refusal(s, &form.csrf) {
        return res;
    }
    let approve = match form.answer.as_str() {
        "approve" => true,
        "deny" => false,
        other => {
            return c.failure(
                Some(s),
                StatusCode::BAD_REQUEST,
                format!("answer {other:?}: expected approve or deny"),
                "approvals",
            );
        }
    };
    let input = ApprovalDecideInput {
        decision_id,
        approve,
        note: form.note.filter(|n| !n.trim().is_empty()),
    };
    match c.mesh.approval_decide(&s.principal, input).await {
        Ok(_) => Redirect::to("/ui/approvals").into_response(),
        Err(e) => c.failure(Some(s), status_of(&e), e.to_string(), "approvals"),
    }
}

#[derive(Deserialize)]
struct EvidenceQuery {
    agent: Option<String>,
    id: Option<String>,
    #[serde(rename = "type")]
    record_type: Option<String>,
    before: Option<u64>,
}

async fn evidence(
    State(c): State<Arc<Console>>,
    user: SignedIn,
    Query(q): Query<EvidenceQuery>,
) -> Response {
    let s = &user.session;
    if let Some(id) = q.id.as_deref().map(str::trim).filter(|i| !i.is_empty()) {
        return match views::find_record(&c.mesh, &s.principal, id).await {
            Ok(index) => Redirect::to(&format!("/ui/evidence/{index}")).into_response(),
            Err(e) => c.failure(Some(s), status_of(&e), e.to_string(), "evidence"),
        };
    }
    let agent = q.agent.as_deref().map(str::trim).filter(|a| !a.is_empty());
    let record_type = q.record_type.as_deref().filter(|t| !t.is_empty());
    let view = views::evidence(&c.mesh, &s.principal, agent, record_type, q.before).await;
    c.page(s, "evidence.html", "evidence", "Evidence", view)
}

async fn record(State(c): State<Arc<Console>>, user: SignedIn, Path(index): Path<u64>) -> Response {
    let s = &user.session;
    let view = views::record(&c.mesh, &s.principal, index).await;
    c.page(
        s,
        "record.html",
        "evidence",
        &format!("Record {index}"),
        view,
    )
}

/// The record with its proof and checkpoint as a JSON file, for checking elsewhere.
async fn record_export(
    State(c): State<Arc<Console>>,
    user: SignedIn,
    Path(index): Path<u64>,
) -> Response {
    let s = &user.session;
    match views::record(&c.mesh, &s.principal, index).await {
        Ok(view) => {
            let mut res = Json(view.proof).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!(
                "attachment; filename=\"meshos-{}-{index}.json\"",
                s.principal.tenant
            )) {
                res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            res
        }
        Err(e) => c.failure(Some(s), status_of(&e), e.to_string(), "evidence"),
    }
}

#[derive(Deserialize)]
struct PolicyQuery {
    verdict: Option<String>,
}

async fn policy(
    State(c): State<Arc<Console>>,
    user: SignedIn,
    Query(q): Query<PolicyQuery>,
) -> Response {
    let s = &user.session;
    let verdict = q.verdict.as_deref().filter(|v| !v.is_empty());
    let view = views::policy(&c.mesh, &s.principal, verdict).await;
    let lint = match c.lint.status(c.mesh.bundle().current()) {
        LintState::Running => json!({ "state": "running" }),
        LintState::Done(report) => json!({ "state": "done", "report": report }),
        LintState::Failed(why) => json!({ "state": "failed", "message": why }),
    };
    match view {
        Ok(view) => c.render(
            "policy.html",
            json!({ "user": user_frame(s), "nav": "policy", "title": "Policy", "view": view, "lint": lint }),
        ),
        Err(e) => c.failure(Some(s), status_of(&e), e.to_string(), "policy"),
    }
}

async fn static_file(Path(file): Path<String>) -> Response {
    match STATIC_FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn writes_from_another_origin_are_refused() {
        assert!(check_same_origin(&headers(&[("host", "127.0.0.1:7700")])).is_ok());
        assert!(
            check_same_origin(&headers(&[
                ("host", "127.0.0.1:7700"),
                ("origin", "http://127.0.0.1:7700")
            ]))
            .is_ok()
        );
        for origin in ["http://evil.example", "http://127.0.0.1:7701", "null"] {
            assert!(
                check_same_origin(&headers(&[("host", "127.0.0.1:7700"), ("origin", origin)]))
                    .is_err(),
                "{origin}"
            );
        }
        assert!(
            check_same_origin(&headers(&[
                ("host", "127.0.0.1:7700"),
                ("sec-fetch-site", "cross-site")
            ]))
            .is_err()
        );
    }

    #[test]
    fn sign_in_only_returns_to_console_pages() {
        assert_eq!(
            safe_next(Some("/ui/incidents/inc_1")),
            "/ui/incidents/inc_1"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/ui//evil.example",
            "/metrics",
        ] {
            assert_eq!(safe_next(Some(bad)), "/ui/fleet", "{bad}");
        }
        assert_eq!(safe_next(None), "/ui/fleet");
    }
}
