//! A tool call's arguments as Cedar sees them. The bundle's schema may declare the common type
//! `ToolArguments`, a record of optional attributes; a call's JSON arguments are converted to
//! it — the declared attributes only, each to its declared type — and reach Cedar as
//! `context.arguments`, so a policy reads `context.arguments.path` typed and schema-validated:
//!
//! ```cedar
//! type ToolArguments = { path?: String, recipients?: Set<String>, amount?: Long };
//! type CheckContext = { ..., arguments?: ToolArguments };
//! ```
//!
//! An argument whose JSON value does not have the declared type makes the request impossible
//! to evaluate, which is a deny naming the argument (fail closed): a policy written for a
//! `String` path must not be skipped by sending a number. Arguments the schema does not
//! declare are left out; no policy can read them.

use std::collections::BTreeMap;

use cedar_policy::{RestrictedExpression, SchemaFragment};
use serde_json::Value;

/// The common type a bundle's schema declares for tool arguments.
pub const ARGUMENTS_TYPE: &str = "ToolArguments";

/// How deep declared records may nest; a schema is written by people, not generated.
const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq)]
enum ArgType {
    String,
    Long,
    Bool,
    Set(Box<ArgType>),
    Record(BTreeMap<String, ArgType>),
}

impl ArgType {
    fn describe(&self) -> String {
        match self {
            ArgType::String => "a string".into(),
            ArgType::Long => "an integer (Long)".into(),
            ArgType::Bool => "a boolean".into(),
            ArgType::Set(e) => format!("an array of {}", e.describe()),
            ArgType::Record(_) => "an object".into(),
        }
    }
}

/// The declared `ToolArguments` record of a bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgumentSchema {
    attributes: BTreeMap<String, ArgType>,
}

/// Why arguments could not be given to Cedar.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "argument {path}: expected {expected} as the bundle's ToolArguments type declares, got {got}"
)]
pub struct ArgumentError {
    /// e.g. `recipients[2]` or `options.mode`.
    pub path: String,
    pub expected: String,
    pub got: String,
}

impl ArgumentSchema {
    /// The `ToolArguments` type of a Cedar schema text, if it declares one. Every attribute
    /// must be optional: a call carries only its own tool's arguments.
    pub(crate) fn from_schema_text(text: &str) -> Result<Option<ArgumentSchema>, String> {
        let (fragment, _warnings) =
            SchemaFragment::from_cedarschema_str(text).map_err(|e| e.to_string())?;
        let json = fragment.to_json_value().map_err(|e| e.to_string())?;
        let Some(namespaces) = json.as_object() else {
            return Ok(None);
        };
        for namespace in namespaces.values() {
            let Some(declared) = namespace
                .get("commonTypes")
                .and_then(|t| t.get(ARGUMENTS_TYPE))
            else {
                continue;
            };
            let common = namespace.get("commonTypes");
            return match parse_type(declared, common, ARGUMENTS_TYPE, 0)? {
                ArgType::Record(attributes) => Ok(Some(ArgumentSchema { attributes })),
                other => Err(format!(
                    "{ARGUMENTS_TYPE} is {}; expected a record type",
                    other.describe()
                )),
            };
        }
        Ok(None)
    }

    /// `arguments` (a JSON object) as the Cedar record `context.arguments`.
    pub fn convert(&self, arguments: &Value) -> Result<RestrictedExpression, ArgumentError> {
        convert_record(&self.attributes, arguments, "")
    }
}

/// A type of the schema's JSON form; `common` resolves names of other common types.
fn parse_type(
    t: &Value,
    common: Option<&Value>,
    at: &str,
    depth: usize,
) -> Result<ArgType, String> {
    if depth > MAX_DEPTH {
        return Err(format!("{at}: records nest deeper than {MAX_DEPTH} levels"));
    }
    let kind = t.get("type").and_then(Value::as_str).unwrap_or("");
    let named = |name: &str| -> Result<ArgType, String> {
        let name = name.trim_start_matches("__cedar::");
        match name {
            "String" => Ok(ArgType::String),
            "Long" => Ok(ArgType::Long),
            "Bool" | "Boolean" => Ok(ArgType::Bool),
            other => match common.and_then(|c| c.get(other)) {
                Some(inner) => parse_type(inner, common, at, depth + 1),
                None => Err(format!(
                    "{at}: type {other} is not supported in {ARGUMENTS_TYPE}; expected String, Long, Bool, Set or a record"
                )),
            },
        }
    };
    match kind {
        "String" | "Long" | "Boolean" | "Bool" => named(kind),
        "EntityOrCommon" => named(t.get("name").and_then(Value::as_str).unwrap_or("")),
        "Set" => {
            let element = t
                .get("element")
                .ok_or(format!("{at}: a Set without an element type"))?;
            Ok(ArgType::Set(Box::new(parse_type(
                element,
                common,
                at,
                depth + 1,
            )?)))
        }
        "Record" => {
            let mut attributes = BTreeMap::new();
            if let Some(attrs) = t.get("attributes").and_then(Value::as_object) {
                for (name, attr) in attrs {
                    let path = format!("{at}.{name}");
                    if attr.get("required").and_then(Value::as_bool) != Some(false) {
                        return Err(format!(
                            "{path} is required; every attribute of {ARGUMENTS_TYPE} must be optional (`{name}?: …`), since a call carries only its own tool's arguments"
                        ));
                    }
                    attributes.insert(name.clone(), parse_type(attr, common, &path, depth + 1)?);
                }
            }
            Ok(ArgType::Record(attributes))
        }
        other => Err(format!(
            "{at}: type {other:?} is not supported in {ARGUMENTS_TYPE}; expected String, Long, Bool, Set or a record"
        )),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a fractional number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn mismatch(path: &str, expected: &ArgType, got: &Value) -> ArgumentError {
    ArgumentError {
        path: if path.is_empty() {
            "(the arguments)".into()
        } else {
            path.to_string()
        },
        expected: expected.describe(),
        got: json_kind(got).into(),
    }
}

fn convert_record(
    attributes: &BTreeMap<String, ArgType>,
    value: &Value,
    path: &str,
) -> Result<RestrictedExpression, ArgumentError> {
    let Some(object) = value.as_object() else {
        return Err(mismatch(path, &ArgType::Record(BTreeMap::new()), value));
    };
    let mut fields = Vec::new();
    for (name, ty) in attributes {
        match object.get(name) {
            // Absent and null are the same to a policy: `context.arguments has name` is false.
            None | Some(Value::Null) => {}
            Some(v) => {
                let at = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                fields.push((name.clone(), convert(ty, v, &at)?));
            }
        }
    }
    // Names come from a map, so none repeats and the record always builds.
    RestrictedExpression::new_record(fields).map_err(|e| ArgumentError {
        path: path.to_string(),
        expected: "a record".into(),
        got: e.to_string(),
    })
}

fn convert(ty: &ArgType, value: &Value, path: &str) -> Result<RestrictedExpression, ArgumentError> {
    match (ty, value) {
        (ArgType::String, Value::String(s)) => Ok(RestrictedExpression::new_string(s.clone())),
        (ArgType::Long, Value::Number(n)) => n
            .as_i64()
            .map(RestrictedExpression::new_long)
            .ok_or_else(|| mismatch(path, ty, value)),
        (ArgType::Bool, Value::Bool(b)) => Ok(RestrictedExpression::new_bool(*b)),
        (ArgType::Set(element), Value::Array(items)) => {
            let converted = items
                .iter()
                .enumerate()
                .map(|(i, item)| convert(element, item, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(RestrictedExpression::new_set(converted))
        }
        (ArgType::Record(attributes), Value::Object(_)) => convert_record(attributes, value, path),
        // One recipient where the schema declares a set of them: a set of one, so a tool that
        // takes `to: "a@b"` is governed by the same policy as one that takes `to: ["a@b"]`.
        (ArgType::Set(element), v) if !matches!(v, Value::Array(_) | Value::Object(_)) => {
            Ok(RestrictedExpression::new_set([convert(element, v, path)?]))
        }
        _ => Err(mismatch(path, ty, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: &str = r#"
        namespace MeshOS {
          type Options = { mode?: String, dry_run?: Bool };
          type ToolArguments = {
            path?: String,
            recipients?: Set<String>,
            amount?: Long,
            options?: Options,
          };
          entity Agent;
        }
    "#;

    fn schema() -> ArgumentSchema {
        ArgumentSchema::from_schema_text(SCHEMA).unwrap().unwrap()
    }

    #[test]
    fn declared_arguments_convert_to_their_types_and_the_rest_is_left_out() {
        let s = schema();
        let args = json!({
            "path": "/etc/passwd",
            "recipients": ["a@example.com", "b@example.com"],
            "amount": 12,
            "options": {"mode": "append", "ignored": 1},
            "undeclared": {"anything": [1, 2]},
            "body": null
        });
        let converted = s.convert(&args).unwrap();
        let text = format!("{converted:?}");
        assert!(
            text.contains("/etc/passwd") && text.contains("b@example.com"),
            "{text}"
        );
        assert!(
            !text.contains("undeclared") && !text.contains("ignored"),
            "{text}"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_naming_the_argument() {
        let s = schema();
        let err = s.convert(&json!({"path": 7})).unwrap_err();
        assert_eq!(err.path, "path");
        assert!(err.to_string().contains("expected a string"), "{err}");
        let err = s.convert(&json!({"recipients": ["a", 3]})).unwrap_err();
        assert_eq!(err.path, "recipients[1]");
        // A single value where a set is declared is a set of one; an object is not.
        assert!(s.convert(&json!({"recipients": "a@example.com"})).is_ok());
        assert!(s.convert(&json!({"recipients": {"a": 1}})).is_err());
        let err = s.convert(&json!({"amount": 1.5})).unwrap_err();
        assert!(err.to_string().contains("fractional"), "{err}");
        let err = s
            .convert(&json!({"options": {"dry_run": "yes"}}))
            .unwrap_err();
        assert_eq!(err.path, "options.dry_run");
        assert!(s.convert(&json!(["not", "an", "object"])).is_err());
    }

    #[test]
    fn a_required_attribute_or_an_unsupported_type_is_a_bundle_error() {
        let required = "namespace N { type ToolArguments = { path: String }; entity A; }";
        let err = ArgumentSchema::from_schema_text(required).unwrap_err();
        assert!(err.contains("must be optional"), "{err}");
        let entity = "namespace N { entity A; type ToolArguments = { who?: A }; }";
        assert!(ArgumentSchema::from_schema_text(entity).is_err());
        let none = "namespace N { entity A; }";
        assert_eq!(ArgumentSchema::from_schema_text(none).unwrap(), None);
    }
}
