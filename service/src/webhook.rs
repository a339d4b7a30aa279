//! Outbound webhooks for alerts (SLA breach and recovery): signing, delivery over HTTP(S) and
//! retries. Owns no alert logic and no storage; the caller decides what to send, to which
//! endpoints (`WebhookEndpoint::accepts`), and records the returned `Delivery`.
//!
//! **What a receiver gets.** A `POST` whose body is the JSON payload, with headers
//! - `Content-Type: application/json`
//! - `X-Meshos-Delivery: <uuid>` — the same on every retry of one delivery, so receivers can
//!   drop duplicates (a retry can follow a request the receiver did process, e.g. when its
//!   answer timed out);
//! - `X-Meshos-Timestamp: <unix seconds>` — when this attempt was signed;
//! - `X-Meshos-Signature: sha256=<hex>` — HMAC-SHA256, keyed with the endpoint's shared secret
//!   (the bytes of the configured environment variable), over `"{timestamp}.{body}"`: the
//!   timestamp header's value, a dot, and the raw body bytes exactly as received.
//!
//! **How a receiver verifies.** Read the raw body before parsing it; recompute the HMAC over
//! `timestamp + "." + body`; compare with the header in constant time (`verify_signature` does
//! both); then reject timestamps more than a few minutes from its own clock, which stops
//! replays of a captured request. Each retry is signed afresh with a new timestamp, so a
//! delayed retry still passes a freshness check.
//!
//! **Retries.** Connection failures, timeouts and other transport errors, HTTP 408, 429 and 5xx
//! are retried up to `max_attempts` in all, waiting `base_delay · 2^(n-1)` (half of it random
//! jitter, so many senders do not retry in lockstep), at least a `Retry-After: <seconds>` the
//! receiver asked for, and never more than `max_delay`. Other statuses (4xx, and 3xx: redirects
//! are not followed, so a signed alert never lands at an address nobody configured) fail at
//! once. `deliver` returns only when the delivery is settled, which can take tens of seconds:
//! run it in a spawned task, not in the scoring path.

// The trust runtime that sends SLA alerts is wired in separately; until then only the tests
// and the config call into this module.

use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde::Serialize;
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-meshos-signature";
pub const TIMESTAMP_HEADER: &str = "x-meshos-timestamp";
pub const DELIVERY_HEADER: &str = "x-meshos-delivery";

/// How much of a failed response's body goes into the failure reason.
const REASON_BODY_BYTES: usize = 256;

/// An HMAC key. Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    pub fn new(key: impl Into<Vec<u8>>) -> WebhookSecret {
        WebhookSecret(key.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// One configured receiver.
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    /// http or https.
    pub url: reqwest::Url,
    pub secret: WebhookSecret,
    /// Only this tenant's alerts; `None` receives every tenant's.
    pub tenant: Option<String>,
    /// Only these event names (e.g. `sla.breach`); `None` receives every event.
    pub events: Option<Vec<String>>,
}

impl WebhookEndpoint {
    /// Whether this endpoint wants `event` about `tenant`.
    pub fn accepts(&self, tenant: &str, event: &str) -> bool {
        self.tenant.as_deref().is_none_or(|t| t == tenant)
            && self
                .events
                .as_ref()
                .is_none_or(|events| events.iter().any(|e| e == event))
    }
}

/// Delivery limits shared by all endpoints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeliveryOptions {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Wait before the first retry; doubles on each further retry.
    pub base_delay: Duration,
    /// Cap on any single wait, including one asked for with `Retry-After`.
    pub max_delay: Duration,
    /// Whole-request limit for one attempt (connect, send, response headers).
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The settled result of one delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub url: String,
    /// The `X-Meshos-Delivery` id sent on every attempt.
    pub id: String,
    pub attempts: u32,
    pub outcome: DeliveryOutcome,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// A 2xx answer.
    Delivered { status: u16 },
    /// The last attempt's failure (and, if retries ran out, how many were made).
    Failed { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("webhook max_attempts must be at least 1")]
    NoAttempts,
}

/// Sends signed webhooks with retries; cheap to clone, share one per process.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    options: DeliveryOptions,
}

/// What one attempt came to.
enum Attempt {
    Delivered(u16),
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    Fatal(String),
}

impl WebhookSender {
    pub fn new(options: DeliveryOptions) -> Result<WebhookSender, WebhookError> {
        if options.max_attempts == 0 {
            return Err(WebhookError::NoAttempts);
        }
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("meshos-webhook/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(WebhookError::Client)?;
        Ok(WebhookSender { client, options })
    }

    /// Posts `payload` to `endpoint`, retrying as the module doc describes, and reports how it
    /// ended. Never panics and never returns early: every failure is in the outcome.
    pub async fn deliver(
        &self,
        endpoint: &WebhookEndpoint,
        payload: &serde_json::Value,
    ) -> Delivery {
        self.deliver_as(endpoint, payload, &uuid::Uuid::new_v4().to_string())
            .await
    }

    /// [`WebhookSender::deliver`] under a delivery id the caller chose: a heal action's
    /// idempotency key, so a replayed action reaches the receiver with the id it already saw.
    pub async fn deliver_as(
        &self,
        endpoint: &WebhookEndpoint,
        payload: &serde_json::Value,
        id: &str,
    ) -> Delivery {
        let id = id.to_string();
        let url = endpoint.url.to_string();
        let settled = |attempts, outcome| Delivery {
            url: url.clone(),
            id: id.clone(),
            attempts,
            outcome,
        };
        let body = match serde_json::to_vec(payload) {
            Ok(body) => body,
            Err(e) => {
                let reason = format!("payload is not serialisable as JSON: {e}");
                return settled(0, DeliveryOutcome::Failed { reason });
            }
        };
        let mut attempt = 1;
        loop {
            match self.attempt(endpoint, &id, &body).await {
                Attempt::Delivered(status) => {
                    return settled(attempt, DeliveryOutcome::Delivered { status });
                }
                Attempt::Fatal(reason) => {
                    return settled(attempt, DeliveryOutcome::Failed { reason });
                }
                Attempt::Retryable {
                    reason,
                    retry_after,
                } => {
                    if attempt >= self.options.max_attempts {
                        let reason = if attempt > 1 {
                            format!("{reason} (gave up after {attempt} attempts)")
                        } else {
                            reason
                        };
                        return settled(attempt, DeliveryOutcome::Failed { reason });
                    }
                    let wait = retry_delay(
                        attempt,
                        retry_after,
                        &self.options,
                        rand::thread_rng().r#gen(),
                    );
                    tracing::debug!(%url, delivery = %id, attempt, %reason, ?wait, "webhook attempt failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(&self, endpoint: &WebhookEndpoint, id: &str, body: &[u8]) -> Attempt {
        let timestamp = (meshos_types::now_ms() / 1000).to_string();
        let signature = sign(endpoint.secret.as_bytes(), &timestamp, body);
        let sent = self
            .client
            .post(endpoint.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(DELIVERY_HEADER, id)
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(SIGNATURE_HEADER, signature)
            .body(body.to_vec())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            // A builder error is our request being unsendable (e.g. the URL); it will not improve.
            Err(e) if e.is_builder() => return Attempt::Fatal(error_chain(&e.without_url())),
            Err(e) => {
                return Attempt::Retryable {
                    reason: error_chain(&e.without_url()),
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Delivered(status.as_u16());
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(parse_retry_after);
        let reason = describe_failure(status, response).await;
        if status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error()
        {
            Attempt::Retryable {
                reason,
                retry_after,
            }
        } else if status.is_redirection() {
            Attempt::Fatal(format!(
                "{reason}; redirects are not followed, configure the final URL"
            ))
        } else {
            Attempt::Fatal(reason)
        }
    }
}

/// "HTTP 503 Service Unavailable: <start of the body>".
async fn describe_failure(status: StatusCode, mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < REASON_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            // The status is the answer; a body we cannot read adds nothing to it.
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(REASON_BODY_BYTES);
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {text}")
    }
}

/// reqwest's own message is one level deep ("error sending request"); the cause is below it.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// `Retry-After` in seconds; the HTTP-date form is ignored (the backoff applies instead).
fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    value
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The wait after failed attempt `attempt` (from 1). `unit_jitter` in [0, 1) picks where in
/// the upper half of the exponential delay the wait falls.
fn retry_delay(
    attempt: u32,
    retry_after: Option<Duration>,
    options: &DeliveryOptions,
    unit_jitter: f64,
) -> Duration {
    let exponential = options
        .base_delay
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(options.max_delay);
    let jittered = exponential.mul_f64(0.5 + 0.5 * unit_jitter.clamp(0.0, 1.0));
    jittered
        .max(retry_after.unwrap_or(Duration::ZERO))
        .min(options.max_delay)
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Meshos-Signature` value for a body signed at `timestamp`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Checks an `X-Meshos-Signature` header against the raw body and the `X-Meshos-Timestamp`
/// value, comparing in constant time. Does not judge the timestamp's age; receivers should.
/// What a receiver does; here for the tests that play receiver.
#[cfg(test)]
pub fn verify_signature(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_digest) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(digest) = hex::decode(hex_digest) else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&digest).is_ok()
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::response::IntoResponse;
    use axum::routing::post;
    use serde_json::json;

    use super::*;

    const SECRET: &[u8] = b"s3cret-shared-with-the-receiver";

    /// What the test receiver saw of one request.
    #[derive(Debug, Clone)]
    struct Received {
        headers: HeaderMap,
        body: Bytes,
    }

    impl Received {
        fn header(&self, name: &str) -> String {
            self.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        }
    }

    /// Status and optional Retry-After the receiver answers with, in order; 200 once used up.
    #[derive(Default)]
    struct Receiver {
        script: Mutex<VecDeque<(u16, Option<&'static str>)>>,
        received: Mutex<Vec<Received>>,
    }

    async fn receive(
        State(receiver): State<Arc<Receiver>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> impl IntoResponse {
        receiver
            .received
            .lock()
            .unwrap()
            .push(Received { headers, body });
        let (status, retry_after) = receiver
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or((200, None));
        let mut headers = HeaderMap::new();
        if let Some(value) = retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from_static(value));
        }
        (
            StatusCode::from_u16(status).unwrap(),
            headers,
            "receiver says no",
        )
    }

    /// A real HTTP server on a free loopback port, answering per `script`.
    async fn start_receiver(script: &[(u16, Option<&'static str>)]) -> (Arc<Receiver>, SocketAddr) {
        let receiver = Arc::new(Receiver {
            script: Mutex::new(script.iter().copied().collect()),
            ..Default::default()
        });
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, addr)
    }

    fn endpoint(url: &str) -> WebhookEndpoint {
        WebhookEndpoint {
            url: url.parse().unwrap(),
            secret: WebhookSecret::new(SECRET),
            tenant: None,
            events: None,
        }
    }

    fn fast_options(max_attempts: u32) -> DeliveryOptions {
        DeliveryOptions {
            max_attempts,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }

    fn fast(max_attempts: u32) -> WebhookSender {
        WebhookSender::new(fast_options(max_attempts)).unwrap()
    }

    fn payload() -> serde_json::Value {
        json!({"event": "sla.breach", "tenant": "acme", "agent_id": "bot-1", "score": 41.5, "threshold": 70.0})
    }

    #[tokio::test]
    async fn the_body_is_signed_and_verifies_only_with_the_secret() {
        let (receiver, addr) = start_receiver(&[]).await;
        let delivery = fast(3)
            .deliver(&endpoint(&format!("http://{addr}/hook")), &payload())
            .await;
        assert_eq!(delivery.outcome, DeliveryOutcome::Delivered { status: 200 });
        assert_eq!(delivery.attempts, 1);

        let got = receiver.received.lock().unwrap()[0].clone();
        assert_eq!(got.header("content-type"), "application/json");
        assert_eq!(got.header(DELIVERY_HEADER), delivery.id);
        let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(body, payload());
        let (ts, sig) = (got.header(TIMESTAMP_HEADER), got.header(SIGNATURE_HEADER));
        assert!(ts.parse::<i64>().is_ok(), "{ts}");
        assert!(sig.starts_with("sha256="), "{sig}");
        assert!(verify_signature(SECRET, &ts, &got.body, &sig));
        assert!(!verify_signature(b"another secret", &ts, &got.body, &sig));
        // The timestamp is part of what is signed, so it cannot be swapped for a fresher one.
        let other_ts = (ts.parse::<i64>().unwrap() + 60).to_string();
        assert!(!verify_signature(SECRET, &other_ts, &got.body, &sig));
        let mut tampered = got.body.to_vec();
        tampered[2] ^= 1;
        assert!(!verify_signature(SECRET, &ts, &tampered, &sig));
        assert!(!verify_signature(
            SECRET,
            &ts,
            &got.body,
            sig.trim_start_matches("sha256=")
        ));
        assert!(!verify_signature(SECRET, &ts, &got.body, "sha256=zz"));
    }

    #[tokio::test]
    async fn server_errors_are_retried_with_the_same_delivery_id() {
        let (receiver, addr) = start_receiver(&[(503, None), (503, None)]).await;
        let delivery = fast(5)
            .deliver(&endpoint(&format!("http://{addr}/hook")), &payload())
            .await;
        assert_eq!(delivery.outcome, DeliveryOutcome::Delivered { status: 200 });
        assert_eq!(delivery.attempts, 3);
        let received = receiver.received.lock().unwrap().clone();
        assert_eq!(received.len(), 3);
        for r in &received {
            assert_eq!(r.header(DELIVERY_HEADER), delivery.id);
            assert!(verify_signature(
                SECRET,
                &r.header(TIMESTAMP_HEADER),
                &r.body,
                &r.header(SIGNATURE_HEADER)
            ));
        }
    }

    #[tokio::test]
    async fn a_client_error_is_not_retried() {
        let (receiver, addr) = start_receiver(&[(400, None)]).await;
        let delivery = fast(5)
            .deliver(&endpoint(&format!("http://{addr}/hook")), &payload())
            .await;
        assert_eq!(delivery.attempts, 1);
        assert_eq!(
            delivery.outcome,
            DeliveryOutcome::Failed {
                reason: "HTTP 400 Bad Request: receiver says no".into()
            }
        );
        assert_eq!(receiver.received.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed() {
        let (receiver, addr) = start_receiver(&[(302, None)]).await;
        let delivery = fast(5)
            .deliver(&endpoint(&format!("http://{addr}/hook")), &payload())
            .await;
        assert_eq!(delivery.attempts, 1);
        let DeliveryOutcome::Failed { reason } = delivery.outcome else {
            panic!("{delivery:?}")
        };
        assert!(
            reason.contains("302") && reason.contains("redirects are not followed"),
            "{reason}"
        );
        assert_eq!(receiver.received.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn too_many_requests_and_request_timeout_are_retried() {
        let (receiver, addr) = start_receiver(&[(429, Some("1")), (408, None)]).await;
        // A cap above the Retry-After, so the one-second wait asked for is honoured in full.
        let sender = WebhookSender::new(DeliveryOptions {
            max_delay: Duration::from_secs(2),
            ..fast_options(5)
        })
        .unwrap();
        let delivery = sender
            .deliver(&endpoint(&format!("http://{addr}/hook")), &payload())
            .await;
        assert_eq!(delivery.outcome, DeliveryOutcome::Delivered { status: 200 });
        assert_eq!(delivery.attempts, 3);
        assert_eq!(receiver.received.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn retries_run_out_on_persistent_errors() {
        let (receiver, addr) = start_receiver(&[(500, None); 4]).await;
        let delivery = fast(3)
            .deliver(&endpoint(&format!("http://{addr}/hook")), &payload())
            .await;
        assert_eq!(delivery.attempts, 3);
        assert_eq!(
            delivery.outcome,
            DeliveryOutcome::Failed {
                reason:
                    "HTTP 500 Internal Server Error: receiver says no (gave up after 3 attempts)"
                        .into()
            }
        );
        assert_eq!(receiver.received.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn an_unreachable_receiver_fails_after_all_attempts() {
        // A port that was just free and is now closed: connections are refused.
        let addr = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        let delivery = fast(4)
            .deliver(&endpoint(&format!("http://{addr}/hook")), &payload())
            .await;
        assert_eq!(delivery.attempts, 4);
        let DeliveryOutcome::Failed { reason } = delivery.outcome else {
            panic!("{delivery:?}")
        };
        assert!(reason.contains("onnect"), "{reason}");
        assert!(reason.ends_with("(gave up after 4 attempts)"), "{reason}");
        assert!(
            !reason.contains(&addr.to_string()),
            "the URL stays out of the reason: {reason}"
        );
    }

    #[tokio::test]
    async fn a_receiver_that_never_answers_times_out_and_is_retried() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(Mutex::new(0u32));
        let count = accepted.clone();
        // Accepts and holds connections without ever answering.
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                *count.lock().unwrap() += 1;
                held.push(socket);
            }
        });
        let sender = WebhookSender::new(DeliveryOptions {
            max_attempts: 2,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            timeout: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(5),
        })
        .unwrap();
        let delivery = sender
            .deliver(&endpoint(&format!("http://{addr}/hook")), &payload())
            .await;
        assert_eq!(delivery.attempts, 2);
        let DeliveryOutcome::Failed { reason } = delivery.outcome else {
            panic!("{delivery:?}")
        };
        assert!(reason.contains("timed out"), "{reason}");
        assert_eq!(*accepted.lock().unwrap(), 2);
    }

    #[tokio::test]
    async fn https_urls_are_spoken_over_tls() {
        // A bare TCP listener records the first bytes the client sends for an https URL: a TLS
        // handshake record (0x16, version 3.x), not plain HTTP and not a refusal to try.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let first_bytes = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 3];
            tokio::io::AsyncReadExt::read_exact(&mut socket, &mut buf)
                .await
                .unwrap();
            buf
        });
        let delivery = fast(1)
            .deliver(&endpoint(&format!("https://{addr}/hook")), &payload())
            .await;
        assert!(matches!(delivery.outcome, DeliveryOutcome::Failed { .. }));
        let bytes = first_bytes.await.unwrap();
        assert_eq!((bytes[0], bytes[1]), (0x16, 0x03), "{bytes:?}");
    }

    #[test]
    fn retry_after_sets_a_floor_and_max_delay_a_ceiling() {
        let options = DeliveryOptions {
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            ..DeliveryOptions::default()
        };
        // Exponential, with the jitter spanning the upper half.
        assert_eq!(
            retry_delay(1, None, &options, 0.0),
            Duration::from_millis(250)
        );
        assert_eq!(
            retry_delay(1, None, &options, 1.0),
            Duration::from_millis(500)
        );
        assert_eq!(retry_delay(3, None, &options, 1.0), Duration::from_secs(2));
        assert_eq!(
            retry_delay(30, None, &options, 1.0),
            Duration::from_secs(60)
        );
        // The receiver's Retry-After wins when longer, but not beyond the cap.
        let seven = Some(Duration::from_secs(7));
        assert_eq!(retry_delay(1, seven, &options, 0.5), Duration::from_secs(7));
        let hour = Some(Duration::from_secs(3600));
        assert_eq!(retry_delay(1, hour, &options, 0.5), Duration::from_secs(60));
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static(" 7 ")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
    }

    #[test]
    fn endpoints_filter_by_tenant_and_event() {
        let mut e = endpoint("http://127.0.0.1:1/hook");
        assert!(e.accepts("acme", "sla.breach"));
        e.tenant = Some("acme".into());
        e.events = Some(vec!["sla.breach".into()]);
        assert!(e.accepts("acme", "sla.breach"));
        assert!(!e.accepts("globex", "sla.breach"));
        assert!(!e.accepts("acme", "sla.recovery"));
        assert!(!format!("{e:?}").contains("s3cret"));
    }

    #[test]
    fn zero_attempts_is_rejected() {
        let err = WebhookSender::new(DeliveryOptions {
            max_attempts: 0,
            ..DeliveryOptions::default()
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "webhook max_attempts must be at least 1");
    }
}
