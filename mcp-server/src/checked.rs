//! `Checked<T>`: tool arguments that never fail to deserialise at the protocol level.
//!
//! rmcp turns an argument that does not match the input type into a JSON-RPC error, which
//! clients surface as a crash rather than a message. Mesh OS promises a tool result with
//! `isError: true` naming the field instead, so tools take `Parameters<Checked<T>>`: the schema
//! is `T`'s, and a mismatch becomes `Err(message with the field path)`.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

pub struct Checked<T>(pub Result<T, String>);

/// Parses a JSON value as `T`, naming the offending field on failure.
pub fn parse_named<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." || path.is_empty() {
            format!("invalid arguments: {}", e.inner())
        } else {
            format!("invalid {path}: {}", e.inner())
        }
    })
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Checked<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(Checked(parse_named(value)))
    }
}

impl<T: JsonSchema> JsonSchema for Checked<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshos_service::EventInput;

    #[test]
    fn errors_name_the_field() {
        let missing: Checked<EventInput> =
            serde_json::from_value(serde_json::json!({"kind": "x", "outcome": "ok"})).unwrap();
        assert!(missing.0.unwrap_err().contains("agent_id"));
        let bad: Checked<EventInput> = serde_json::from_value(
            serde_json::json!({"agent_id": "a", "kind": "x", "outcome": "maybe"}),
        )
        .unwrap();
        let msg = bad.0.unwrap_err();
        assert!(
            msg.contains("outcome") && msg.contains("violation"),
            "{msg}"
        );
    }

    #[test]
    fn an_unknown_content_source_names_the_field_and_the_accepted_values() {
        let bad: Checked<meshos_service::PolicyCheckInput> = serde_json::from_value(
            serde_json::json!({"agent_id": "a", "action": "x", "content": "hi", "content_source": "web"}),
        )
        .unwrap();
        let msg = bad.0.unwrap_err();
        for expected in [
            "content_source",
            "user",
            "tool_result",
            "retrieved_document",
        ] {
            assert!(msg.contains(expected), "{msg}");
        }
        let good: Checked<meshos_service::PolicyCheckInput> = serde_json::from_value(
            serde_json::json!({"agent_id": "a", "action": "x", "content_source": "retrieved_document"}),
        )
        .unwrap();
        assert_eq!(
            good.0.unwrap().content_source,
            Some(meshos_service::ContentSource::RetrievedDocument)
        );
    }
}
