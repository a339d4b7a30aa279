//! Trust signals as every crate sees them: a drift detector's alarm ([`DriftSignal`]) and an SLA
//! breach or recovery ([`SlaAlert`]). `meshos-trust` raises them, the store keeps them, the healer
//! turns them into symptoms and the server returns them; their JSON is the MCP/REST output
//! (`signal_id`/`alert_id`, `at` in RFC 3339, `consumed`).

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// An SLA breach.
pub const SLA_BREACH: &str = "sla.breach";
/// An SLA recovery.
pub const SLA_RECOVERY: &str = "sla.recovery";

/// A drift detector's alarm on one metric of one agent.
///
/// The detector sees one agent's samples, not whose they are: a signal it raises has empty
/// `id`, `tenant` and `agent_id` until the caller names it ([`DriftSignal::of`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "DriftSignalJson", try_from = "DriftSignalJson")]
pub struct DriftSignal {
    pub id: String,
    pub tenant: String,
    pub agent_id: String,
    /// `latency`, `error_rate`, `cost_per_1k_tokens`, `violation_rate` or `token_use`.
    pub metric: String,
    /// `cusum`.
    pub detector: String,
    /// `up` or `down`.
    pub direction: String,
    /// Baseline in the metric's own unit.
    pub baseline_mean: f64,
    /// Baseline standard deviation on the detector's scale.
    pub baseline_sd: f64,
    /// Mean since the change began, in the unit of `baseline_mean`.
    pub observed_mean: f64,
    /// Shift in baseline standard deviations.
    pub shift_sigmas: f64,
    /// Samples since the change began.
    pub samples: u64,
    pub explanation: String,
    pub at_ms: i64,
    /// When the healer took it up.
    pub consumed_at_ms: Option<i64>,
}

impl DriftSignal {
    /// The signal, named: its id and whose telemetry raised it.
    pub fn of(self, id: String, tenant: &str, agent_id: &str) -> DriftSignal {
        DriftSignal {
            id,
            tenant: tenant.to_string(),
            agent_id: agent_id.to_string(),
            ..self
        }
    }

    /// Whether the metric went down (faster, cheaper, fewer errors).
    pub fn is_down(&self) -> bool {
        self.direction == "down"
    }
}

/// The JSON of a [`DriftSignal`]: the MCP/REST output's field names.
#[derive(Serialize, Deserialize, JsonSchema)]
struct DriftSignalJson {
    signal_id: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    agent_id: String,
    /// `latency`, `error_rate`, `cost_per_1k_tokens`, `violation_rate` or `token_use`.
    metric: String,
    detector: String,
    /// `up` or `down`.
    direction: String,
    baseline_mean: f64,
    baseline_sd: f64,
    observed_mean: f64,
    /// Shift in baseline standard deviations.
    shift_sigmas: f64,
    #[serde(default)]
    samples: u64,
    explanation: String,
    /// RFC 3339.
    at: String,
    /// Whether the healer has taken it up.
    consumed: bool,
    /// When the healer took it up (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consumed_at: Option<String>,
}

impl From<DriftSignal> for DriftSignalJson {
    fn from(s: DriftSignal) -> Self {
        DriftSignalJson {
            signal_id: s.id,
            tenant: s.tenant,
            agent_id: s.agent_id,
            metric: s.metric,
            detector: s.detector,
            direction: s.direction,
            baseline_mean: s.baseline_mean,
            baseline_sd: s.baseline_sd,
            observed_mean: s.observed_mean,
            shift_sigmas: s.shift_sigmas,
            samples: s.samples,
            explanation: s.explanation,
            at: crate::rfc3339_ms(s.at_ms),
            consumed: s.consumed_at_ms.is_some(),
            consumed_at: s.consumed_at_ms.map(crate::rfc3339_ms),
        }
    }
}

impl TryFrom<DriftSignalJson> for DriftSignal {
    type Error = String;
    fn try_from(j: DriftSignalJson) -> Result<Self, String> {
        let consumed_at_ms = match (j.consumed, j.consumed_at) {
            (_, Some(at)) => Some(parse_rfc3339("consumed_at", &at)?),
            (false, None) => None,
            (true, None) => return Err("consumed_at: missing for a consumed signal".into()),
        };
        Ok(DriftSignal {
            id: j.signal_id,
            tenant: j.tenant,
            agent_id: j.agent_id,
            metric: j.metric,
            detector: j.detector,
            direction: j.direction,
            baseline_mean: j.baseline_mean,
            baseline_sd: j.baseline_sd,
            observed_mean: j.observed_mean,
            shift_sigmas: j.shift_sigmas,
            samples: j.samples,
            explanation: j.explanation,
            at_ms: parse_rfc3339("at", &j.at)?,
            consumed_at_ms,
        })
    }
}

impl JsonSchema for DriftSignal {
    fn schema_name() -> Cow<'static, str> {
        "DriftSignal".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        DriftSignalJson::json_schema(generator)
    }
}

/// An SLA breach or recovery of one agent's trust score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SlaAlert {
    #[serde(rename = "alert_id")]
    pub id: String,
    #[serde(default)]
    pub tenant: String,
    pub agent_id: String,
    /// `sla.breach` or `sla.recovery`.
    pub kind: String,
    pub score: f64,
    pub threshold: f64,
    /// Which SLA rule set the threshold, e.g. `team billing`.
    pub scope: String,
    /// RFC 3339.
    #[serde(rename = "at", with = "rfc3339")]
    #[schemars(with = "String")]
    pub at_ms: i64,
    /// Webhook delivery outcomes (a JSON array, empty until deliveries finish).
    pub deliveries: serde_json::Value,
}

impl SlaAlert {
    pub fn is_breach(&self) -> bool {
        self.kind == SLA_BREACH
    }
}

fn parse_rfc3339(field: &str, text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{field}: {text:?} is not an RFC 3339 time ({e})"))
}

/// Unix milliseconds as RFC 3339 text.
mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::rfc3339_ms(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_rfc3339("at", &text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn signal() -> DriftSignal {
        DriftSignal {
            id: "sig_1".into(),
            tenant: "acme".into(),
            agent_id: "a1".into(),
            metric: "latency".into(),
            detector: "cusum".into(),
            direction: "up".into(),
            baseline_mean: 100.0,
            baseline_sd: 0.1,
            observed_mean: 300.0,
            shift_sigmas: 6.0,
            samples: 12,
            explanation: "latency drifted up".into(),
            at_ms: 1_700_000_000_000,
            consumed_at_ms: Some(1_700_000_000_500),
        }
    }

    /// The field names the MCP and REST outputs have always used.
    #[test]
    fn a_signal_is_the_output_json_and_reads_back() {
        let s = signal();
        let v = serde_json::to_value(&s).unwrap();
        for field in [
            "signal_id",
            "metric",
            "detector",
            "direction",
            "baseline_mean",
            "baseline_sd",
            "observed_mean",
            "shift_sigmas",
            "explanation",
            "at",
            "consumed",
        ] {
            assert!(v.get(field).is_some(), "{field} missing from {v}");
        }
        assert_eq!(v["at"], json!("2023-11-14T22:13:20.000Z"));
        assert_eq!(v["consumed"], json!(true));
        assert_eq!(serde_json::from_value::<DriftSignal>(v).unwrap(), s);
        let schema = serde_json::to_value(schemars::schema_for!(DriftSignal)).unwrap();
        assert!(schema["properties"].get("signal_id").is_some(), "{schema}");
    }

    #[test]
    fn a_consumed_signal_without_its_time_is_refused() {
        let mut v = serde_json::to_value(signal()).unwrap();
        v.as_object_mut().unwrap().remove("consumed_at");
        let err = serde_json::from_value::<DriftSignal>(v).unwrap_err();
        assert!(err.to_string().contains("consumed_at"), "{err}");
    }

    #[test]
    fn an_alert_is_the_output_json_and_reads_back() {
        let a = SlaAlert {
            id: "alr_1".into(),
            tenant: "acme".into(),
            agent_id: "a1".into(),
            kind: SLA_BREACH.into(),
            score: 40.0,
            threshold: 70.0,
            scope: "fleet".into(),
            at_ms: 1_700_000_000_000,
            deliveries: json!([]),
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["alert_id"], json!("alr_1"));
        assert_eq!(v["at"], json!("2023-11-14T22:13:20.000Z"));
        assert!(a.is_breach());
        assert_eq!(serde_json::from_value::<SlaAlert>(v).unwrap(), a);
    }
}
