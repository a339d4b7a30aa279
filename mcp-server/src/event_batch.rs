//! The `/v1/events` body formats: a batch is `{"events":[…]}`, a JSON array or JSON lines,
//! each item an [`EventInput`]; errors name the bad item and field.

use meshos_service::EventInput;
use serde::Deserialize;

use crate::checked::parse_named;

#[derive(Deserialize)]
#[serde(untagged)]
enum EventBatch {
    Wrapped { events: Vec<serde_json::Value> },
    Bare(Vec<serde_json::Value>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypedBatch {
    events: Vec<EventInput>,
}

/// A well-formed batch parsed straight into events, without the intermediate JSON values the
/// error-reporting path needs (that costs as much again per event). `None`: not a well-formed
/// `{"events":[…]}` or array; the caller then parses it the slow way to say what is wrong.
fn parse_valid_batch(text: &str) -> Option<Vec<EventInput>> {
    match text.trim_start().as_bytes().first()? {
        b'[' => serde_json::from_str::<Vec<EventInput>>(text).ok(),
        b'{' => serde_json::from_str::<TypedBatch>(text)
            .ok()
            .map(|b| b.events),
        _ => None,
    }
}

/// Parses a batch body: `{"events":[…]}`, a JSON array, or JSON lines, naming the bad item.
pub fn parse_event_batch(body: &[u8]) -> Result<Vec<EventInput>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_string())?;
    if let Some(events) = parse_valid_batch(text) {
        return Ok(events);
    }
    let items: Vec<serde_json::Value> = match serde_json::from_str::<EventBatch>(text) {
        Ok(EventBatch::Wrapped { events }) | Ok(EventBatch::Bare(events)) => events,
        Err(whole_err) => {
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            // JSON lines with a single event: one object that is an event, not a wrapper.
            if let [line] = lines.as_slice()
                && let Ok(serde_json::Value::Object(one)) = serde_json::from_str(line)
                && one.contains_key("agent_id")
            {
                vec![serde_json::Value::Object(one)]
            } else if lines.len() <= 1 {
                return Err(format!(
                    "body is not a JSON event batch ({whole_err}); expected {{\"events\":[…]}}, a JSON array or JSON lines"
                ));
            } else {
                lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1))
                    })
                    .collect::<Result<_, _>>()?
            }
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| parse_named::<EventInput>(v).map_err(|e| format!("events[{i}]: {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_formats_are_accepted_and_errors_name_the_item() {
        let one = r#"{"agent_id":"a","kind":"k","outcome":"ok"}"#;
        assert_eq!(
            parse_event_batch(format!("{{\"events\":[{one}]}}").as_bytes())
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            parse_event_batch(format!("[{one},{one}]").as_bytes())
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            parse_event_batch(format!("{one}\n{one}\n").as_bytes())
                .unwrap()
                .len(),
            2
        );
        let bad = format!("[{one},{{\"agent_id\":\"a\",\"kind\":\"k\",\"outcome\":\"maybe\"}}]");
        let err = parse_event_batch(bad.as_bytes()).unwrap_err();
        assert!(
            err.starts_with("events[1]") && err.contains("outcome"),
            "{err}"
        );
        assert!(parse_event_batch(b"not json").is_err());
        // JSON lines holding a single event (a bug once: read as a malformed wrapper).
        assert_eq!(
            parse_event_batch(format!("{one}\n").as_bytes())
                .unwrap()
                .len(),
            1
        );
        assert_eq!(parse_event_batch(one.as_bytes()).unwrap().len(), 1);
        assert!(parse_event_batch(br#"{"evnts": []}"#).is_err());
    }
}
