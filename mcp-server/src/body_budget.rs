//! Room for request bodies, and for decoding them, shared by every connection.
//!
//! Per-request limits bound one body; they do not bound two thousand connections each sending
//! one at the same time (2,048 × 2 MiB is 4 GiB), nor what decoding costs: 128 gzip bodies of
//! 30 KB each inflated and parsed took 4.4 GB. Before its body is read, a request reserves its
//! declared `Content-Length` (or, with none, its route's limit) from one budget; before it is
//! decoded, an ingest handler reserves what decoding will take (estimated from the inflated
//! size, and for OTLP from the spans and elements counted on the encoded bytes). Both are given
//! back when the handler answers. A request that finds no room within the configured wait gets
//! a 503 with `Retry-After`; one that could never fit gets a 413. Either way nothing of it was
//! stored.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::limits::BodyLimits;

/// The budget is counted in KiB so that a `u32` of permits covers any sane configuration.
const UNIT: usize = 1024;

pub struct BodyBudget {
    room: Semaphore,
    limits: BodyLimits,
}

/// Why decoding room was not given.
#[derive(Debug)]
pub enum NoRoom {
    /// More than the whole budget: the request can never be decoded here.
    TooLarge { needed: usize, budget: usize },
    /// Not within the wait.
    Busy { needed: usize, budget: usize },
}

impl NoRoom {
    pub fn into_response(self) -> Response {
        match self {
            NoRoom::TooLarge { needed, budget } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                axum::Json(serde_json::json!({ "error": format!(
                    "decoding this request would take about {needed} bytes of memory, more than the server's budget of {budget} ([limits] max_inflight_body_bytes); send fewer or smaller items per request"
                )})),
            )
                .into_response(),
            NoRoom::Busy { needed, budget } => busy(needed, budget),
        }
    }
}

fn busy(needed: usize, budget: usize) -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({ "error": format!(
            "the server is reading and decoding other requests; there was no room for this one's {needed} bytes (budget {budget}) in time; retry later"
        )})),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    // The body may be unread: the connection cannot carry another request.
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Decoding room, given back when dropped.
pub struct DecodingRoom<'a> {
    /// Held for its `Drop`, which returns the room.
    _permit: Option<tokio::sync::SemaphorePermit<'a>>,
    bytes: usize,
}

/// Decodes at least this large hand their freed memory back to the operating system when they
/// end. glibc's allocator keeps freed memory in per-thread arenas: one large batch after another,
/// each decoded on whichever worker thread ran it, ratcheted the server's RSS far past what was
/// ever in use at once (128 inflated event batches, one at a time: 1.2 GB).
const TRIM_AFTER_BYTES: usize = 16 << 20;

impl Drop for DecodingRoom<'_> {
    fn drop(&mut self) {
        if self.bytes >= TRIM_AFTER_BYTES {
            release_freed_memory();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_freed_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_freed_memory() {}

impl BodyBudget {
    /// Reserves `bytes` more for decoding a request whose body is already held.
    pub async fn reserve_decoding(&self, bytes: usize) -> Result<DecodingRoom<'_>, NoRoom> {
        let budget = self.limits.inflight_bytes;
        if bytes == 0 {
            return Ok(DecodingRoom {
                _permit: None,
                bytes,
            });
        }
        if bytes > budget {
            return Err(NoRoom::TooLarge {
                needed: bytes,
                budget,
            });
        }
        match tokio::time::timeout(self.limits.wait, self.room.acquire_many(units(bytes))).await {
            Ok(Ok(permit)) => Ok(DecodingRoom {
                _permit: Some(permit),
                bytes,
            }),
            _ => Err(NoRoom::Busy {
                needed: bytes,
                budget,
            }),
        }
    }

    pub fn new(limits: BodyLimits) -> BodyBudget {
        BodyBudget {
            room: Semaphore::new(units(limits.inflight_bytes) as usize),
            limits,
        }
    }

    /// The most a request to `path` may send: what it reserves when it declares no length,
    /// and the most it reserves when it declares more (it will be refused at that limit).
    fn route_limit(&self, path: &str) -> usize {
        if path.starts_with("/v1/traces") {
            self.limits.otlp_bytes
        } else if path.starts_with("/mcp") {
            self.limits.mcp_bytes
        } else {
            self.limits.request_bytes
        }
    }

    /// Bytes `req` reserves: nothing for a request that says it has no body.
    pub fn reservation(&self, req: &Request) -> usize {
        let limit = self.route_limit(req.uri().path());
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        match declared {
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX).min(limit),
            None if req.headers().contains_key(header::TRANSFER_ENCODING) => limit,
            None => 0,
        }
    }
}

fn units(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

/// The middleware. Runs after the bearer check: a client without a token reserves nothing.
pub async fn reserve_body_room(
    State(budget): State<Arc<BodyBudget>>,
    req: Request,
    next: Next,
) -> Response {
    let bytes = budget.reservation(&req);
    if bytes == 0 {
        return next.run(req).await;
    }
    let wanted = units(bytes);
    match tokio::time::timeout(budget.limits.wait, budget.room.acquire_many(wanted)).await {
        Ok(Ok(_room)) => next.run(req).await,
        _ => busy(bytes, budget.limits.inflight_bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::routing::post;
    use tower::ServiceExt;

    fn request(path: &str, length: Option<usize>) -> Request {
        let mut b = Request::builder().method("POST").uri(path);
        if let Some(n) = length {
            b = b.header(header::CONTENT_LENGTH, n.to_string());
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn a_request_reserves_its_declared_length_capped_at_its_route_limit() {
        let budget = BodyBudget::new(BodyLimits::default());
        assert_eq!(budget.reservation(&request("/v1/events", Some(5000))), 5000);
        assert_eq!(
            budget.reservation(&request("/v1/events", Some(1 << 30))),
            BodyLimits::default().request_bytes
        );
        assert_eq!(
            budget.reservation(&request("/v1/traces", Some(1 << 30))),
            BodyLimits::default().otlp_bytes
        );
        assert_eq!(budget.reservation(&request("/v1/events", None)), 0);
        let mut chunked = request("/mcp", None);
        chunked.headers_mut().insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        assert_eq!(
            budget.reservation(&chunked),
            BodyLimits::default().mcp_bytes
        );
    }

    /// Two bodies that together exceed the budget: the second waits for the first, and gets
    /// a 503 when the first holds its room past the wait.
    #[tokio::test]
    async fn bodies_past_the_budget_wait_and_then_get_a_503() {
        let limits = BodyLimits {
            inflight_bytes: 8 * UNIT,
            wait: Duration::from_millis(200),
            ..BodyLimits::default()
        };
        let budget = Arc::new(BodyBudget::new(limits));
        let app = Router::new()
            .route(
                "/v1/events",
                post(|body: Bytes| async move {
                    tokio::time::sleep(Duration::from_millis(600)).await;
                    body.len().to_string()
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                budget.clone(),
                reserve_body_room,
            ));
        let body = vec![b'x'; 6 * UNIT];
        let send = |app: Router| {
            let body = body.clone();
            async move {
                app.oneshot(
                    Request::builder()
                        .method("POST")
                        .uri("/v1/events")
                        .header(header::CONTENT_LENGTH, body.len().to_string())
                        .body(Body::from(body))
                        .unwrap(),
                )
                .await
                .unwrap()
            }
        };
        let first = tokio::spawn(send(app.clone()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = send(app.clone()).await;
        assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(second.headers()[header::RETRY_AFTER], "1");
        assert_eq!(first.await.unwrap().status(), StatusCode::OK);
        // The first gave its room back: the next one is served.
        assert_eq!(send(app).await.status(), StatusCode::OK);
    }

    /// Decoding room comes from the same budget: what is held for decoding is not there for
    /// another body, a request larger than the whole budget is refused outright, and the room
    /// comes back when the holder is done.
    #[tokio::test]
    async fn decoding_room_shares_the_budget_and_is_given_back() {
        let budget = BodyBudget::new(BodyLimits {
            inflight_bytes: 8 * UNIT,
            wait: Duration::from_millis(100),
            ..BodyLimits::default()
        });
        assert!(matches!(
            budget.reserve_decoding(9 * UNIT).await,
            Err(NoRoom::TooLarge { .. })
        ));
        let held = budget.reserve_decoding(6 * UNIT).await.unwrap();
        assert!(matches!(
            budget.reserve_decoding(4 * UNIT).await,
            Err(NoRoom::Busy { .. })
        ));
        drop(held);
        assert!(budget.reserve_decoding(8 * UNIT).await.is_ok());
    }
}
