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
/// Owners' keys for sessions being opened, not yet named by rmcp.
const PENDING: &str = "pending:";

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
                .filter(|id| id.starts_with(PENDING) || sessions.contains_key(id.as_str()))
                .cloned()
                .collect()
        };
        self.owners().retain(|id, _| live.contains(id));
    }

    /// Takes a slot for a session `token` is opening, under the same lock as the limit check
    /// (checking, then opening, then recording let 64 concurrent `initialize`s past a limit of
    /// 64): the slot is a placeholder until rmcp names the session.
    fn reserve(&self, token: &str) -> Result<String, String> {
        let mut owners = self.owners();
        if let Some(why) = Self::limit_reached(&owners, token, self.limits) {
            return Err(why);
        }
        let placeholder = format!("{PENDING}{}", uuid::Uuid::new_v4());
        owners.insert(placeholder.clone(), token.to_string());
        Ok(placeholder)
    }

    /// Why a new session for `token` is refused, if it is.
    fn over_limit(&self, token: &str) -> Option<String> {
        Self::limit_reached(&self.owners(), token, self.limits)
    }

    fn limit_reached(
        owners: &HashMap<String, String>,
        token: &str,
        limits: SessionLimits,
    ) -> Option<String> {
        let mine = owners.values().filter(|o| o.as_str() == token).count();
        if mine >= limits.per_token {
            return Some(format!(
                "this token has {mine} open MCP sessions (limit {}); close one (DELETE /mcp) or let idle ones expire",
                limits.per_token
            ));
        }
        if owners.len() >= limits.total {
            return Some(format!(
                "the server holds {} MCP sessions (limit {}); try again later",
                owners.len(),
                limits.total
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
            let placeholder = match guard.reserve(&token) {
                Ok(p) => p,
                Err(why) => {
                    let mut r = json_reply(StatusCode::TOO_MANY_REQUESTS, why);
                    let headers = r.headers_mut();
                    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
                    // The request's body is left unread: this connection cannot carry another.
                    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
                    return r;
                }
            };
            let response = next.run(req).await;
            let mut owners = guard.owners();
            owners.remove(&placeholder);
            if let Some(id) = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                owners.insert(id.to_string(), token);
            }
            drop(owners);
            response
        }
    }
}
