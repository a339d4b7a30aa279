//! The operator console: web pages under `/ui`, served by `meshos serve`, for watching the
//! fleet, approving heal plans and policy decisions, and auditing the evidence ledger.
//!
//! Owns the pages and their safety: sign-in with a token exchanged for an HttpOnly,
//! SameSite=Strict session cookie (`session.rs`), a CSRF token and an Origin check on every
//! write, a Content-Security-Policy without inline scripts, and role-aware rendering (an auditor
//! is shown no buttons, and the service refuses its writes anyway). What a page shows is
//! gathered by plain functions over the `Mesh` (`views.rs`); handlers (`pages.rs`) only read the
//! request, call one of them and render a template (`render.rs`, templates and static files
//! compiled into the binary, nothing loaded from elsewhere). Charts are inline SVG made on the
//! server (`svg.rs`). A record's inclusion proof and its checkpoint's Ed25519 signature are
//! checked by the page's own script (`static/verify.js`) with the browser's Web Crypto.

mod lint;
mod pages;
mod render;
pub mod session;
pub mod svg;
pub mod views;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use meshos_service::Mesh;
use meshos_types::Principal;

pub use pages::router;

/// Finds the principal of a presented bearer token (the server's token cache and store).
pub trait TokenCheck: Send + Sync + 'static {
    fn principal<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Principal>, String>>;
}

/// Live incident streams open at once (each polls its incident once a second).
const MAX_LIVE_STREAMS: usize = 256;
/// Live streams one session may hold, so one user's tabs cannot take every stream.
const MAX_LIVE_STREAMS_PER_SESSION: usize = 8;

/// The console's state: the service, sessions, templates, the lint of the bundle in force.
pub struct Console {
    mesh: Arc<Mesh>,
    tokens: Arc<dyn TokenCheck>,
    sessions: session::Sessions,
    templates: render::Templates,
    lint: Arc<lint::LintCache>,
    live_streams: Arc<tokio::sync::Semaphore>,
    live_per_session: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

/// One live stream counted against its session; released when the stream ends.
pub(crate) struct LiveSlot {
    counts: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    session: String,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(n) = counts.get_mut(&self.session) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.session);
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("console template {name}: {message}")]
    Template { name: String, message: String },
}

impl Console {
    pub fn new(mesh: Arc<Mesh>, tokens: Arc<dyn TokenCheck>) -> Result<Arc<Console>, ConsoleError> {
        Ok(Arc::new(Console {
            mesh,
            tokens,
            sessions: session::Sessions::default(),
            templates: render::Templates::load()?,
            lint: Arc::new(lint::LintCache::default()),
            live_streams: Arc::new(tokio::sync::Semaphore::new(MAX_LIVE_STREAMS)),
            live_per_session: Arc::default(),
        }))
    }

    /// A live stream for this session, if it and the server have room for one more.
    pub(crate) fn live_slot(&self, session_id: &str) -> Option<LiveSlot> {
        let key = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            session_id.as_bytes(),
        ));
        let mut counts = self
            .live_per_session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if counts.get(&key).copied().unwrap_or(0) >= MAX_LIVE_STREAMS_PER_SESSION {
            return None;
        }
        let permit = self.live_streams.clone().try_acquire_owned().ok()?;
        *counts.entry(key.clone()).or_insert(0) += 1;
        Some(LiveSlot {
            counts: self.live_per_session.clone(),
            session: key,
            _permit: permit,
        })
    }

    pub fn mesh(&self) -> &Arc<Mesh> {
        &self.mesh
    }
}
