//! Collects every string of a tool definition with its JSON pointer and what it is (a
//! description, a default, a parameter's name, ...), within the byte and depth bounds: an
//! upstream server is untrusted, and its definition may be built to exhaust the scanner.

use serde_json::Value;

use crate::{Category, Finding, MAX_DEPTH, MAX_SCANNED_BYTES, Severity};

/// What a string is for; the rules read data fields (defaults, enum values) and parameter
/// names more strictly than prose, because instructions have no business there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    /// The tool's `name`.
    ToolName,
    /// The tool's own `description` (the prose a person may read in a client).
    ToolDescription,
    /// A parameter's (or nested schema's) `description`, or any `title`.
    ParamDescription,
    /// A `default`, `enum`, `const`, `examples` or `example` value.
    Value,
    /// The name of a parameter (a key of a `properties` object).
    ParamName,
    /// Any other string (`type`, `format`, `$ref`, annotations, unknown keys).
    Other,
}

#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) pointer: String,
    pub(crate) kind: FieldKind,
    pub(crate) text: String,
}

#[derive(Debug, Default)]
pub(crate) struct Walked {
    pub(crate) fields: Vec<Field>,
    /// `oversized` / `too_deep` findings when a bound stopped the walk.
    pub(crate) limits: Vec<Finding>,
}

struct Walker {
    out: Walked,
    budget: usize,
    oversized: bool,
    too_deep: bool,
}

/// Every string in `tool`, in document order, within [`MAX_SCANNED_BYTES`] and [`MAX_DEPTH`].
pub(crate) fn walk(tool: &Value) -> Walked {
    let mut w = Walker {
        out: Walked::default(),
        budget: MAX_SCANNED_BYTES,
        oversized: false,
        too_deep: false,
    };
    w.value(tool, &mut String::new(), 0, Parent::Root);
    w.out
}

/// Where a value sits, which decides the kind of its strings.
#[derive(Clone, Copy, PartialEq)]
enum Parent<'a> {
    Root,
    Key(&'a str, bool),
    Properties,
}

impl Walker {
    fn take(&mut self, len: usize, pointer: &str) -> bool {
        if self.oversized {
            return false;
        }
        if len > self.budget {
            self.oversized = true;
            self.out.limits.push(Finding {
                rule: "oversized".into(),
                category: Category::HiddenInstructions,
                severity: Severity::High,
                location: pointer.to_string(),
                excerpt: String::new(),
                message: format!(
                    "definition has more than {MAX_SCANNED_BYTES} bytes of text; the scan stopped \
                     here and the rest is unchecked"
                ),
            });
            return false;
        }
        self.budget -= len;
        true
    }

    /// Records one string, if the byte budget allows.
    fn field(&mut self, pointer: &str, kind: FieldKind, text: &str) {
        if self.take(text.len(), pointer) {
            self.out.fields.push(Field {
                pointer: pointer.to_string(),
                kind,
                text: text.to_string(),
            });
        }
    }

    fn value(&mut self, v: &Value, pointer: &mut String, depth: usize, parent: Parent<'_>) {
        if self.oversized {
            return;
        }
        if depth > MAX_DEPTH {
            if !self.too_deep {
                self.too_deep = true;
                self.out.limits.push(Finding {
                    rule: "too_deep".into(),
                    category: Category::HiddenInstructions,
                    severity: Severity::High,
                    location: pointer.clone(),
                    excerpt: String::new(),
                    message: format!(
                        "definition nests deeper than {MAX_DEPTH} levels; deeper parts are unchecked"
                    ),
                });
            }
            return;
        }
        match v {
            Value::String(s) => self.field(pointer, kind_of(parent, depth), s),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&i.to_string());
                    // Array items keep the key they belong to (`enum`, `examples`).
                    let p = match parent {
                        Parent::Key(k, _) => Parent::Key(k, true),
                        other => other,
                    };
                    self.value(item, pointer, depth + 1, p);
                    pointer.truncate(len);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    let len = pointer.len();
                    pointer.push('/');
                    push_escaped(pointer, key);
                    if parent == Parent::Properties {
                        // A parameter's name is text the model reads too (full-schema
                        // poisoning puts the instruction in the name itself).
                        self.field(pointer, FieldKind::ParamName, key);
                        self.value(item, pointer, depth + 1, Parent::Key("", false));
                    } else if key == "properties" && item.is_object() {
                        self.value(item, pointer, depth + 1, Parent::Properties);
                    } else {
                        self.value(item, pointer, depth + 1, Parent::Key(key, false));
                    }
                    pointer.truncate(len);
                }
            }
            _ => {}
        }
    }
}

fn kind_of(parent: Parent<'_>, depth: usize) -> FieldKind {
    match parent {
        Parent::Key("name", false) if depth == 1 => FieldKind::ToolName,
        Parent::Key("description", false) if depth == 1 => FieldKind::ToolDescription,
        Parent::Key("description" | "title" | "$comment", _) => FieldKind::ParamDescription,
        Parent::Key("default" | "enum" | "const" | "examples" | "example", _) => FieldKind::Value,
        _ => FieldKind::Other,
    }
}

/// RFC 6901: `~` is `~0`, `/` is `~1`.
fn push_escaped(pointer: &mut String, key: &str) {
    for c in key.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_string_is_found_with_its_pointer_and_kind() {
        let tool = json!({
            "name": "t",
            "description": "d",
            "inputSchema": {"type": "object", "properties": {
                "a/b": {"type": "string", "description": "pd", "default": "dv",
                        "enum": ["e0", "e1"]},
                "n": {"type": "object", "properties": {"deep": {"title": "tt"}}}
            }},
            "annotations": {"title": "at"}
        });
        let w = walk(&tool);
        let find = |p: &str| {
            w.fields
                .iter()
                .find(|f| f.pointer == p)
                .map(|f| (f.kind, f.text.as_str()))
        };
        assert_eq!(find("/name"), Some((FieldKind::ToolName, "t")));
        assert_eq!(
            find("/description"),
            Some((FieldKind::ToolDescription, "d"))
        );
        assert_eq!(
            find("/inputSchema/properties/a~1b"),
            Some((FieldKind::ParamName, "a/b"))
        );
        assert_eq!(
            find("/inputSchema/properties/a~1b/description"),
            Some((FieldKind::ParamDescription, "pd"))
        );
        assert_eq!(
            find("/inputSchema/properties/a~1b/default"),
            Some((FieldKind::Value, "dv"))
        );
        assert_eq!(
            find("/inputSchema/properties/a~1b/enum/1"),
            Some((FieldKind::Value, "e1"))
        );
        assert_eq!(
            find("/inputSchema/properties/n/properties/deep/title"),
            Some((FieldKind::ParamDescription, "tt"))
        );
        assert_eq!(
            find("/annotations/title"),
            Some((FieldKind::ParamDescription, "at"))
        );
        assert!(w.limits.is_empty());
    }

    #[test]
    fn walking_stops_at_the_byte_budget_and_says_so() {
        let big = "x".repeat(MAX_SCANNED_BYTES / 2 + 1);
        let tool = json!({"name": "t", "description": big, "title": big});
        let w = walk(&tool);
        assert_eq!(w.limits.len(), 1);
        assert_eq!(w.limits[0].rule, "oversized");
        let scanned: usize = w.fields.iter().map(|f| f.text.len()).sum();
        assert!(scanned <= MAX_SCANNED_BYTES);
    }

    #[test]
    fn walking_stops_at_the_depth_limit_and_says_so() {
        let mut v = json!("bottom");
        for _ in 0..(MAX_DEPTH + 10) {
            v = json!({ "x": v });
        }
        let w = walk(&v);
        assert_eq!(w.limits.len(), 1);
        assert_eq!(w.limits[0].rule, "too_deep");
        assert!(w.fields.is_empty());
    }
}
