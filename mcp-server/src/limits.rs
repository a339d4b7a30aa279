//! Every limit on what a client controls, in one place: the config file's `[limits]` table,
//! its defaults, and the typed limits each layer enforces.
//!
//! The defaults keep a default server under 256 MB whatever one request, one token or a flood
//! of connections sends (the README's table gives each limit with its figure). Each key is
//! optional; a zero is refused at start-up, naming the key, since a zero limit would refuse
//! everything rather than nothing.
//!
//! ```toml
//! [limits]
//! max_batch_events = 10000          # events in one POST /v1/events or one OTLP chunk
//! max_cost_usd = 10000              # per event or estimate
//! max_tokens = 1000000000           # per event or estimate
//! max_latency_ms = 86400000         # per event
//! max_attributes_bytes = 65536      # one event's attributes, as JSON
//! max_live_agents = 20000           # agents whose live trust state is kept in memory
//! max_request_body_bytes = 2097152  # REST bodies (/v1/events, /v1/policy/check, …)
//! max_mcp_body_bytes = 4194304      # one JSON-RPC message on POST /mcp or one meshos mcp line
//! max_events_decoded_bytes = 8388608  # a gzip/deflate /v1/events body, inflated
//! max_otlp_body_bytes = 8388608     # an OTLP export on the wire
//! max_otlp_decoded_bytes = 67108864 # an OTLP export, inflated
//! max_otlp_spans = 20000            # spans in one OTLP export
//! max_otlp_elements = 200000        # messages/values of any kind in one OTLP export
//! max_inflight_body_bytes = 184549376 # bodies being read and decoded at once, all clients
//! body_wait_ms = 10000              # how long a body waits for room before a 503
//! max_sessions_per_token = 64       # open MCP sessions per token
//! max_sessions = 2000               # open MCP sessions in all
//! max_connections = 2048            # open TCP connections (the rest wait in the backlog)
//! header_read_timeout_ms = 10000    # to send a request's whole header block
//! idle_timeout_ms = 300000          # with no byte read or written
//! ```

use std::time::Duration;

use anyhow::bail;
use meshos_service::Limits;
use meshos_trust::otlp::DecodeLimits;
use serde::Deserialize;

use crate::conn_limits::ConnectionLimits;
use crate::sessions::SessionLimits;

/// The file's `[limits]` table: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub max_batch_events: Option<usize>,
    pub max_cost_usd: Option<f64>,
    pub max_tokens: Option<i64>,
    pub max_latency_ms: Option<f64>,
    pub max_attributes_bytes: Option<usize>,
    pub max_live_agents: Option<usize>,
    pub max_request_body_bytes: Option<usize>,
    pub max_mcp_body_bytes: Option<usize>,
    pub max_events_decoded_bytes: Option<usize>,
    pub max_otlp_body_bytes: Option<usize>,
    pub max_otlp_decoded_bytes: Option<usize>,
    pub max_otlp_spans: Option<usize>,
    pub max_otlp_elements: Option<usize>,
    pub max_inflight_body_bytes: Option<usize>,
    pub body_wait_ms: Option<u64>,
    pub max_sessions_per_token: Option<usize>,
    pub max_sessions: Option<usize>,
    pub max_connections: Option<usize>,
    pub header_read_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
}

/// Limits on request bodies, enforced by the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// A REST body (JSON) on the wire.
    pub request_bytes: usize,
    /// One JSON-RPC message on `POST /mcp`, or one line of `meshos mcp`.
    pub mcp_bytes: usize,
    /// A compressed `/v1/events` body once inflated.
    pub events_decoded_bytes: usize,
    /// An OTLP export on the wire.
    pub otlp_bytes: usize,
    /// An OTLP export once inflated.
    pub otlp_decoded_bytes: usize,
    /// Bytes of request bodies being read at once, across all connections. Each request
    /// reserves its declared length (or its route's limit when it declares none) before its
    /// body is read, so thousands of connections each sending a large body wait for room
    /// instead of being buffered together.
    pub inflight_bytes: usize,
    /// How long a request waits for room among the in-flight bytes before a 503.
    pub wait: Duration,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            request_bytes: 2 << 20,
            mcp_bytes: 4 << 20,
            events_decoded_bytes: 8 << 20,
            otlp_bytes: 8 << 20,
            otlp_decoded_bytes: 64 << 20,
            // Bodies and what decoding them takes (estimated per request): with a server's own
            // ~50 MB, a default server stays within 256 MB however many requests arrive.
            inflight_bytes: 176 << 20,
            wait: Duration::from_secs(10),
        }
    }
}

/// Everything the server limits, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ServerLimits {
    /// Enforced by the service whatever the transport.
    pub service: Limits,
    pub otlp: DecodeLimits,
    pub bodies: BodyLimits,
    pub sessions: SessionLimits,
    pub connections: ConnectionLimits,
}

/// A configured count or size, or the default; zero is refused.
fn positive(value: Option<usize>, default: usize, key: &str) -> anyhow::Result<usize> {
    match value {
        Some(0) => bail!("[limits] {key} must be at least 1, got 0"),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

fn positive_ms(value: Option<u64>, default: Duration, key: &str) -> anyhow::Result<Duration> {
    match value {
        Some(0) => bail!("[limits] {key} must be at least 1, got 0"),
        Some(ms) => Ok(Duration::from_millis(ms)),
        None => Ok(default),
    }
}

fn positive_f64(value: Option<f64>, default: f64, key: &str) -> anyhow::Result<f64> {
    match value {
        Some(v) if !(v.is_finite() && v > 0.0) => {
            bail!("[limits] {key} must be a positive number, got {v}")
        }
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

impl ServerLimits {
    /// The defaults overridden by the file's `[limits]` and `max_content_bytes` (flag, variable
    /// or the file's top level).
    pub fn resolve(file: LimitsFile, max_content_bytes: usize) -> anyhow::Result<ServerLimits> {
        let d = ServerLimits::default();
        let max_tokens = match file.max_tokens {
            Some(t) if t < 1 => bail!("[limits] max_tokens must be at least 1, got {t}"),
            Some(t) => t,
            None => d.service.max_tokens,
        };
        let bodies = BodyLimits {
            request_bytes: positive(
                file.max_request_body_bytes,
                d.bodies.request_bytes,
                "max_request_body_bytes",
            )?,
            mcp_bytes: positive(
                file.max_mcp_body_bytes,
                d.bodies.mcp_bytes,
                "max_mcp_body_bytes",
            )?,
            events_decoded_bytes: positive(
                file.max_events_decoded_bytes,
                d.bodies.events_decoded_bytes,
                "max_events_decoded_bytes",
            )?,
            otlp_bytes: positive(
                file.max_otlp_body_bytes,
                d.bodies.otlp_bytes,
                "max_otlp_body_bytes",
            )?,
            otlp_decoded_bytes: positive(
                file.max_otlp_decoded_bytes,
                d.bodies.otlp_decoded_bytes,
                "max_otlp_decoded_bytes",
            )?,
            inflight_bytes: positive(
                file.max_inflight_body_bytes,
                d.bodies.inflight_bytes,
                "max_inflight_body_bytes",
            )?,
            wait: positive_ms(file.body_wait_ms, d.bodies.wait, "body_wait_ms")?,
        };
        let largest_body = bodies
            .request_bytes
            .max(bodies.mcp_bytes)
            .max(bodies.otlp_bytes);
        if bodies.inflight_bytes < largest_body {
            bail!(
                "[limits] max_inflight_body_bytes ({}) is smaller than the largest body one request may send ({largest_body}); such a request could never be read",
                bodies.inflight_bytes
            );
        }
        Ok(ServerLimits {
            service: Limits {
                max_content_bytes,
                max_batch_events: positive(
                    file.max_batch_events,
                    d.service.max_batch_events,
                    "max_batch_events",
                )?,
                max_cost_usd: positive_f64(
                    file.max_cost_usd,
                    d.service.max_cost_usd,
                    "max_cost_usd",
                )?,
                max_tokens,
                max_latency_ms: positive_f64(
                    file.max_latency_ms,
                    d.service.max_latency_ms,
                    "max_latency_ms",
                )?,
                max_attributes_bytes: positive(
                    file.max_attributes_bytes,
                    d.service.max_attributes_bytes,
                    "max_attributes_bytes",
                )?,
                max_live_agents: positive(
                    file.max_live_agents,
                    d.service.max_live_agents,
                    "max_live_agents",
                )?,
            },
            otlp: DecodeLimits {
                max_spans: positive(file.max_otlp_spans, d.otlp.max_spans, "max_otlp_spans")?,
                max_elements: positive(
                    file.max_otlp_elements,
                    d.otlp.max_elements,
                    "max_otlp_elements",
                )?,
            },
            bodies,
            sessions: SessionLimits {
                per_token: positive(
                    file.max_sessions_per_token,
                    d.sessions.per_token,
                    "max_sessions_per_token",
                )?,
                total: positive(file.max_sessions, d.sessions.total, "max_sessions")?,
            },
            connections: ConnectionLimits {
                max_connections: positive(
                    file.max_connections,
                    d.connections.max_connections,
                    "max_connections",
                )?,
                header_timeout: positive_ms(
                    file.header_read_timeout_ms,
                    d.connections.header_timeout,
                    "header_read_timeout_ms",
                )?,
                idle_timeout: positive_ms(
                    file.idle_timeout_ms,
                    d.connections.idle_timeout,
                    "idle_timeout_ms",
                )?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(text: &str) -> anyhow::Result<ServerLimits> {
        let file: LimitsFile = toml::from_str(text)?;
        ServerLimits::resolve(file, 1 << 20)
    }

    #[test]
    fn an_empty_table_is_the_defaults() {
        assert_eq!(from_toml("").unwrap(), ServerLimits::default());
    }

    #[test]
    fn each_key_overrides_its_default_only() {
        let limits = from_toml(
            "max_sessions_per_token = 3\nheader_read_timeout_ms = 1500\nmax_otlp_spans = 7\nmax_cost_usd = 5.5",
        )
        .unwrap();
        assert_eq!(limits.sessions.per_token, 3);
        assert_eq!(limits.sessions.total, SessionLimits::default().total);
        assert_eq!(
            limits.connections.header_timeout,
            Duration::from_millis(1500)
        );
        assert_eq!(limits.otlp.max_spans, 7);
        assert_eq!(limits.service.max_cost_usd, 5.5);
        assert_eq!(limits.service.max_content_bytes, 1 << 20);
    }

    #[test]
    fn zero_negative_and_unknown_keys_are_refused_by_name() {
        let err = from_toml("max_connections = 0").unwrap_err().to_string();
        assert!(err.contains("max_connections must be at least 1"), "{err}");
        let err = from_toml("max_cost_usd = -1.0").unwrap_err().to_string();
        assert!(
            err.contains("max_cost_usd must be a positive number"),
            "{err}"
        );
        let err = from_toml("max_tokens = 0").unwrap_err().to_string();
        assert!(err.contains("max_tokens"), "{err}");
        let err = format!("{:#}", from_toml("max_conections = 5").unwrap_err());
        assert!(err.contains("max_conections"), "{err}");
    }

    #[test]
    fn an_inflight_budget_smaller_than_one_body_is_refused() {
        let err = from_toml("max_inflight_body_bytes = 1000")
            .unwrap_err()
            .to_string();
        assert!(err.contains("could never be read"), "{err}");
    }
}
