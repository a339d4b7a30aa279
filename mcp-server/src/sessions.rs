//! MCP sessions over HTTP: bound to the token that opened them, and limited in number.
//!
//! rmcp keeps a session per `initialize` until it has been idle for five minutes, about 73 KB
//! each, and serves any request that names its id. Unbounded, one token could open sessions
//! until the server ran out of memory; unbound, another tenant's token holding a session id
//! received that session's notifications and could delete it. This layer sits between the
//! bearer check and rmcp: it records which token opened each session, answers a request that
//! names another token's session as if the session did not exist, and refuses a new session
//! past the per-token or total limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use meshos_types::Principal;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

const SESSION_HEADER: &str = "mcp-session-id";

/// Limits on open MCP sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub per_token: usize,
    pub total: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        // 2,000 sessions of ~73 KB stay well under the server's 256 MB goal.
        SessionLimits {
            per_token: 64,
            total: 2_000,
        }
    }
}

/// Who opened each session rmcp holds.
pub struct SessionGuard {
    manager: Arc<LocalSessionManager>,
    owners: Mutex<HashMap<String, String>>,
    limits: SessionLimits,
}

impl SessionGuard {
    pub fn new(manager: Arc<LocalSessionManager>, limits: SessionLimits) -> SessionGuard {
        SessionGuard {
            manager,
            owners: Mutex::new(HashMap::new()),
            limits,
        }
    }

    fn owners(&self) -> MutexGuard<'_, HashMap<String, String>> {
        match self.owners.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Forgets sessions rmcp no longer holds (closed, or expired after idling).
    async fn prune(&self) {
        let live: Vec<String> = {
            let sessions = self.manager.sessions.read().await;
            self.owners()
                .keys()
                .filter(|id| sessions.contains_key(id.as_str()))
                .cloned()
                .collect()
        };
        self.owners().retain(|id, _| live.contains(id));
    }

    /// Why a new session for `token` is refused, if it is.
    fn over_limit(&self, token: &str) -> Option<String> {
        let owners = self.owners();
        let mine = owners.values().filter(|o| o.as_str() == token).count();
        if mine >= self.limits.per_token {
            return Some(format!(
                "this token has {mine} open MCP sessions (limit {}); close one (DELETE /mcp) or let idle ones expire",
                self.limits.per_token
            ));
        }
        if owners.len() >= self.limits.total {
            return Some(format!(
                "the server holds {} MCP sessions (limit {}); try again later",
                owners.len(),
                self.limits.total
            ));
        }
        None
    }
}

fn json_reply(status: StatusCode, message: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// The middleware: run after the bearer check (it needs the `Principal`).
pub async fn guard_sessions(
    State(guard): State<Arc<SessionGuard>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(token) = req
        .extensions()
        .get::<Principal>()
        .map(|p| p.token_id.clone())
    else {
        return json_reply(StatusCode::UNAUTHORIZED, "no principal".into());
    };
    let named = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match named {
        Some(id) => {
            let owner = guard.owners().get(&id).cloned();
            if owner.as_deref().is_some_and(|o| o != token) {
                // Not the opener: the session does not exist for this token.
                return json_reply(StatusCode::NOT_FOUND, "session not found".into());
            }
            let deleting = req.method() == Method::DELETE;
            let response = next.run(req).await;
            if deleting && response.status().is_success() {
                guard.owners().remove(&id);
            }
            response
        }
        None => {
            if guard.over_limit(&token).is_some() {
                guard.prune().await;
            }
            if let Some(why) = guard.over_limit(&token) {
                let mut r = json_reply(StatusCode::TOO_MANY_REQUESTS, why);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
                return r;
            }
            let response = next.run(req).await;
            if let Some(id) = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                guard.owners().insert(id.to_string(), token);
            }
            response
        }
    }
}
