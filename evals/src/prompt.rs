//! Prompt templates: a system and a user message with `{{field}}` placeholders filled from an
//! item's input fields. A deliberately tiny renderer: no logic, no filters, no escaping — the
//! value of a field is inserted as is (strings) or as compact JSON (anything else).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dataset::Item;

/// The messages sent to a chat target for one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub user: String,
}

/// A template filled in for one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedPrompt {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub user: String,
}

/// A problem with a template's text: `{{` without `}}`, or an empty or malformed name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

/// A piece of a parsed template.
enum Part<'a> {
    Text(&'a str),
    Field(&'a str),
}

fn parse(template: &str) -> Result<Vec<Part<'_>>, TemplateError> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        parts.push(Part::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(TemplateError(format!(
                "`{{{{` at byte {} is never closed with `}}}}`",
                template.len() - rest.len() + start
            )));
        };
        let name = after[..end].trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(TemplateError(format!(
                "`{{{{{}}}}}` is not a field name; use letters, digits, `_`, `-` and `.` for a nested field",
                &after[..end]
            )));
        }
        parts.push(Part::Field(name));
        rest = &after[end + 2..];
    }
    parts.push(Part::Text(rest));
    Ok(parts)
}

/// The field names a template text uses, in order of first use.
pub fn placeholders(text: &str) -> Result<Vec<String>, TemplateError> {
    let mut names: Vec<String> = Vec::new();
    for part in parse(text)? {
        if let Part::Field(name) = part
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

fn render_text(text: &str, item: &Item) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    for part in parse(text)? {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Field(name) => match item.input_field(name) {
                Some(Value::String(s)) => out.push_str(&s),
                Some(v) => out.push_str(&v.to_string()),
                None => {
                    return Err(TemplateError(format!(
                        "item `{}` has no input field `{name}`",
                        item.id
                    )));
                }
            },
        }
    }
    Ok(out)
}

impl PromptTemplate {
    /// Every field the template uses (system first, then user), each once.
    pub fn placeholders(&self) -> Result<Vec<String>, TemplateError> {
        let mut names = match &self.system {
            Some(s) => placeholders(s)?,
            None => Vec::new(),
        };
        for n in placeholders(&self.user)? {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        Ok(names)
    }

    /// The messages for one item. Suites check every placeholder against every item at load,
    /// so for a loaded suite this fails only on items built elsewhere.
    pub fn render(&self, item: &Item) -> Result<RenderedPrompt, TemplateError> {
        Ok(RenderedPrompt {
            system: self
                .system
                .as_deref()
                .map(|s| render_text(s, item))
                .transpose()?,
            user: render_text(&self.user, item)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: Value) -> Item {
        crate::dataset::item_from_object(v.as_object().cloned().unwrap_or_default()).unwrap()
    }

    #[test]
    fn fills_fields_strings_as_is_and_other_values_as_json() {
        let t = PromptTemplate {
            system: Some("You help {{ customer.name }}.".into()),
            user: "Q{{id}}: {{question}} {{tags}}".into(),
        };
        let i = item(
            json!({"id": "7", "question": "why?", "customer": {"name": "Ann"}, "tags": ["a", 1]}),
        );
        let r = t.render(&i).unwrap();
        assert_eq!(r.system.as_deref(), Some("You help Ann."));
        assert_eq!(r.user, "Q7: why? [\"a\",1]");
        assert_eq!(
            t.placeholders().unwrap(),
            vec!["customer.name", "id", "question", "tags"]
        );
    }

    #[test]
    fn expected_fields_are_not_reachable() {
        let t = PromptTemplate {
            system: None,
            user: "{{answer}}".into(),
        };
        let i = item(json!({"id": "1", "expected": {"answer": "secret"}}));
        assert_eq!(
            t.render(&i).unwrap_err().0,
            "item `1` has no input field `answer`"
        );
    }

    #[test]
    fn malformed_templates_are_errors() {
        assert!(
            placeholders("hello {{name")
                .unwrap_err()
                .0
                .contains("never closed")
        );
        assert!(
            placeholders("{{ }}")
                .unwrap_err()
                .0
                .contains("not a field name")
        );
        assert!(placeholders("{{a b}}").is_err());
        assert_eq!(placeholders("no fields } {").unwrap(), Vec::<String>::new());
    }
}
