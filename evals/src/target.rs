//! Targets: what answers an eval item. One trait, [`Target`], and three kinds behind it — an
//! OpenAI-compatible chat endpoint ([`OpenAiTarget`], through async-openai), an agent's own HTTP
//! endpoint ([`HttpTarget`]) and a file of recorded outputs ([`RecordedTarget`]).
//!
//! This module owns the request a target is sent ([`ChatRequest`]), the errors a target can fail
//! with ([`TargetError`], each saying whether a retry may help and what `Retry-After` asked for)
//! and the HTTP details shared by the HTTP targets: one TLS set-up (rustls with ring, the platform's
//! trust store), bounded response bodies, `Retry-After` parsing and `${VAR}` references in
//! configuration. A target makes exactly one attempt per call: retries, timeouts, concurrency and
//! caching belong to [`crate::run`].

mod http;
mod openai;
mod recorded;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use http::{HttpTarget, HttpTargetConfig};
pub(crate) use openai::OpenAiEndpoint;
pub use openai::{OpenAiTarget, OpenAiTargetConfig};
pub use recorded::{RecordedTarget, RecordedTargetConfig};

use crate::output::Output;

/// The most a target reads of a successful answer unless its configuration says otherwise.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;
/// How much of an error response's body is kept (for the error message).
const ERROR_BODY_LIMIT: usize = 2048;

/// One message of a chat request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// What a target is asked for one item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The dataset item this request is for (sent to agents and used by recorded targets; not
    /// sent to a model).
    pub item_id: String,
    pub messages: Vec<ChatMessage>,
    /// Tool definitions in the OpenAI chat format (`{"type": "function", "function": {..}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
}

/// Price of a model in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_million_usd: f64,
    pub output_per_million_usd: f64,
}

impl Price {
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.input_per_million_usd
            + output_tokens as f64 * self.output_per_million_usd)
            / 1_000_000.0
    }
}

/// Why one attempt at a target failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TargetError {
    /// The configuration names an environment variable that is not set.
    #[error("environment variable {var} is not set (named by {field})")]
    MissingEnv { var: String, field: String },
    /// The configuration is unusable (bad URL, bad header, unreadable file...).
    #[error("invalid target configuration: {0}")]
    Config(String),
    /// The request cannot be sent as it is (unknown role, malformed tool definition...).
    #[error("invalid request for item {item_id}: {message}")]
    Request { item_id: String, message: String },
    /// The server answered with a non-success status.
    #[error("HTTP {status}{}: {body}", retry_after.map(|d| format!(" (Retry-After {} ms)", d.as_millis())).unwrap_or_default())]
    Status {
        status: u16,
        /// What the server's `Retry-After` asked for, if it sent one.
        retry_after: Option<Duration>,
        /// The start of the response body.
        body: String,
    },
    /// Connecting, sending or reading failed (a retry may help).
    #[error("transport error: {0}")]
    Transport(String),
    /// The answer is larger than the configured limit.
    #[error("response body exceeds {limit} bytes")]
    TooLarge { limit: u64 },
    /// The answer could not be understood.
    #[error("malformed response: {0}")]
    Decode(String),
    /// A recorded target has no output for this item.
    #[error("no recorded output for item {item_id}")]
    MissingItem { item_id: String },
    /// The attempt took longer than the runner's per-request timeout.
    #[error("timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The run was cancelled while this attempt was pending.
    #[error("cancelled")]
    Cancelled,
}

impl TargetError {
    /// Whether another attempt may succeed: 429, 5xx, 408 and transport failures. Timeouts are
    /// decided by the runner's policy, not here.
    pub fn is_retryable(&self) -> bool {
        match self {
            TargetError::Status { status, .. } => {
                *status == 429 || *status == 408 || (500..=599).contains(status)
            }
            TargetError::Transport(_) => true,
            _ => false,
        }
    }

    /// What the server's `Retry-After` asked for, if anything.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TargetError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short stable name for the kind of failure (stored with a failed item).
    pub fn kind(&self) -> &'static str {
        match self {
            TargetError::MissingEnv { .. } => "missing_env",
            TargetError::Config(_) => "config",
            TargetError::Request { .. } => "request",
            TargetError::Status { .. } => "status",
            TargetError::Transport(_) => "transport",
            TargetError::TooLarge { .. } => "too_large",
            TargetError::Decode(_) => "decode",
            TargetError::MissingItem { .. } => "missing_item",
            TargetError::Timeout(_) => "timeout",
            TargetError::Cancelled => "cancelled",
        }
    }
}

/// The future a target returns for one attempt.
pub type TargetFuture<'a> = Pin<Box<dyn Future<Output = Result<Output, TargetError>> + Send + 'a>>;

/// Something that answers chat requests, one attempt per call.
pub trait Target: Send + Sync {
    /// What identifies this target's answers for caching: kind, endpoint, model and every setting
    /// that changes an answer (never a secret).
    fn identity(&self) -> String;

    /// Whether the item id is part of what the target is sent (agents, recorded files), so two
    /// items with the same messages may get different answers. Models never see it.
    fn answers_depend_on_item_id(&self) -> bool {
        true
    }

    /// One attempt at answering `request`.
    fn complete<'a>(&'a self, request: &'a ChatRequest) -> TargetFuture<'a>;
}

impl<T: Target + ?Sized> Target for Arc<T> {
    fn identity(&self) -> String {
        (**self).identity()
    }
    fn answers_depend_on_item_id(&self) -> bool {
        (**self).answers_depend_on_item_id()
    }
    fn complete<'a>(&'a self, request: &'a ChatRequest) -> TargetFuture<'a> {
        (**self).complete(request)
    }
}

/// Configuration of any target, as a suite names it (`kind: openai | http | recorded`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetConfig {
    #[serde(rename = "openai")]
    OpenAi(OpenAiTargetConfig),
    Http(HttpTargetConfig),
    Recorded(RecordedTargetConfig),
}

impl TargetConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            TargetConfig::OpenAi(_) => "openai",
            TargetConfig::Http(_) => "http",
            TargetConfig::Recorded(_) => "recorded",
        }
    }

    /// The model asked, for the targets that name one.
    pub fn model(&self) -> Option<&str> {
        match self {
            TargetConfig::OpenAi(c) => Some(&c.model),
            TargetConfig::Http(_) | TargetConfig::Recorded(_) => None,
        }
    }

    /// Builds the target: reads the environment variables and files the configuration names.
    pub fn build(&self) -> Result<Arc<dyn Target>, TargetError> {
        Ok(match self {
            TargetConfig::OpenAi(c) => Arc::new(OpenAiTarget::new(c.clone())?),
            TargetConfig::Http(c) => Arc::new(HttpTarget::new(c.clone())?),
            TargetConfig::Recorded(c) => Arc::new(RecordedTarget::open(c)?),
        })
    }
}

/// The reqwest client every outbound HTTP client of Mesh OS uses (the eval targets, the
/// gateway's HTTP upstreams): rustls with the ring provider and the platform
/// verifier (the OS trust store), HTTP/1.1, no proxy lookup from the environment beyond reqwest's
/// defaults, no overall timeout (the runner times each attempt).
pub fn http_client() -> Result<reqwest_013::Client, TargetError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TargetError::Config(format!("TLS: {e}")))?
        .with_platform_verifier()
        .map_err(|e| TargetError::Config(format!("TLS trust store: {e}")))?
        .with_no_client_auth();
    reqwest_013::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| TargetError::Config(format!("HTTP client: {e}")))
}

/// Reads a response body, failing once it passes `limit` bytes.
pub(crate) async fn read_body_limited(
    mut response: reqwest_013::Response,
    limit: u64,
) -> Result<Vec<u8>, TargetError> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(TargetError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(TargetError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Turns a non-success response into [`TargetError::Status`], keeping `Retry-After` and the
/// start of the body (at most [`ERROR_BODY_LIMIT`] bytes are read).
pub(crate) async fn status_error(mut response: reqwest_013::Response) -> TargetError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest_013::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_LIMIT);
    TargetError::Status {
        status,
        retry_after,
        body: String::from_utf8_lossy(&body).trim().to_string(),
    }
}

pub(crate) fn transport_error(e: reqwest_013::Error) -> TargetError {
    // The full chain says why (connection refused, reset...): reqwest's own message alone does not.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_decode() {
        TargetError::Decode(message)
    } else {
        TargetError::Transport(message)
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). A date in
/// the past is a zero wait; anything else unparseable is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // Not in the RFC, but sent by some gateways: fractional seconds.
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Replaces every `${NAME}` in `value` with the environment variable `NAME`; a missing variable
/// is an error naming it and the field that referred to it. `$$` is a literal `$`.
pub(crate) fn expand_env(value: &str, field: &str) -> Result<String, TargetError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail.find('}').ok_or_else(|| {
                TargetError::Config(format!("{field}: unterminated ${{ in {value:?}"))
            })?;
            let var = &tail[..end];
            out.push_str(&read_env(var, field)?);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Reads an environment variable a configuration field names.
pub(crate) fn read_env(var: &str, field: &str) -> Result<String, TargetError> {
    std::env::var(var).map_err(|_| TargetError::MissingEnv {
        var: var.to_string(),
        field: field.to_string(),
    })
}

fn default_max_response_bytes() -> u64 {
    DEFAULT_MAX_RESPONSE_BYTES
}

/// Parses tool-call arguments: JSON when they are, the raw string otherwise.
pub(crate) fn parse_arguments(raw: &str) -> serde_json::Value {
    if raw.trim().is_empty() {
        return serde_json::Value::Object(Default::default());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn env_references() {
        // SAFETY-free: a variable name unique to this test.
        let var = "MESHOS_EVALS_TEST_EXPAND_ENV";
        assert_eq!(expand_env("plain", "f").ok(), Some("plain".to_string()));
        assert_eq!(expand_env("a$$b", "f").ok(), Some("a$b".to_string()));
        let missing = expand_env(&format!("Bearer ${{{var}_MISSING}}"), "headers.x");
        assert_eq!(
            missing,
            Err(TargetError::MissingEnv {
                var: format!("{var}_MISSING"),
                field: "headers.x".into()
            })
        );
        assert!(matches!(
            expand_env("${OPEN", "f"),
            Err(TargetError::Config(_))
        ));
    }

    #[test]
    fn retryable_errors() {
        let status = |s| TargetError::Status {
            status: s,
            retry_after: None,
            body: String::new(),
        };
        assert!(status(429).is_retryable());
        assert!(status(503).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!status(401).is_retryable());
        assert!(TargetError::Transport("reset".into()).is_retryable());
        assert!(!TargetError::Decode("x".into()).is_retryable());
        assert!(!TargetError::Timeout(Duration::from_secs(1)).is_retryable());
    }

    #[test]
    fn target_config_is_tagged_by_kind() {
        let c: TargetConfig = serde_json::from_value(serde_json::json!({
            "kind": "openai", "base_url": "http://127.0.0.1:1/v1", "model": "m"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(c, TargetConfig::OpenAi(_)));
        let c: TargetConfig = serde_json::from_value(serde_json::json!({
            "kind": "recorded", "path": "x.jsonl"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(c, TargetConfig::Recorded(_)));
    }
}
