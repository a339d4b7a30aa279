//! Datasets: the items a suite is run on, written inline in the suite or in a JSONL or CSV file
//! beside it, and their digest.
//!
//! Every item has an `id` (unique within the dataset) and input fields; `expected` holds what
//! scorers compare with. In JSONL an item is an object `{"id": …, <inputs>…, "expected": {…}}`;
//! in CSV the header names the fields, `id` is required and a column `expected.<name>` is an
//! expected field (CSV cells are strings: scorers that need a number or a list parse them).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use sha2::{Digest, Sha256};

use crate::error::{Location, SuiteError};
use crate::run::canonical_json;

/// The longest item id accepted (the same bound as other ids in Mesh OS).
pub const MAX_ITEM_ID_LEN: usize = 128;

/// One dataset item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    /// The item's input fields: what prompts are rendered from (and what a judge is shown).
    pub input: Map<String, Value>,
    /// What scorers compare the output with. Never sent to a target.
    #[serde(default)]
    pub expected: Map<String, Value>,
}

impl Item {
    /// The item without its answers: `{"id": …, <inputs>…}`, no `expected`.
    pub fn input_json(&self) -> Value {
        let mut map = self.input.clone();
        map.insert("id".into(), Value::String(self.id.clone()));
        Value::Object(map)
    }

    /// An input field by dotted path (`customer.name` looks into an object field); `id` is the
    /// item's id.
    pub fn input_field(&self, path: &str) -> Option<Value> {
        if path == "id" {
            return Some(Value::String(self.id.clone()));
        }
        lookup(&self.input, path).cloned()
    }

    /// An expected field by dotted path.
    pub fn expected_field(&self, path: &str) -> Option<&Value> {
        lookup(&self.expected, path)
    }
}

fn lookup<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = map.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut current = map.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// Where an item was written, for error messages that point back at it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemOrigin {
    pub file: String,
    /// The line of the item (JSONL line, CSV record, or the `- ` of an inline item).
    pub line: Option<usize>,
}

impl std::fmt::Display for ItemOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}", self.file),
            None => write!(f, "{}", self.file),
        }
    }
}

/// Where a dataset came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DatasetSource {
    Inline,
    Jsonl { path: String },
    Csv { path: String },
}

/// A loaded dataset: items in file order, with unique ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub source: DatasetSource,
    items: Vec<Item>,
    origins: Vec<ItemOrigin>,
    digest: String,
}

impl Dataset {
    /// Builds a dataset from items and where each was written; refuses empty and duplicate ids.
    pub(crate) fn new(
        source: DatasetSource,
        items: Vec<(Item, ItemOrigin)>,
    ) -> Result<Dataset, SuiteError> {
        let mut seen: HashMap<&str, &ItemOrigin> = HashMap::new();
        for (item, origin) in &items {
            check_item_id(&item.id, origin)?;
            if let Some(first) = seen.insert(&item.id, origin) {
                return Err(SuiteError::invalid(
                    &origin.file,
                    origin.line.map(|line| Location { line, column: None }),
                    "id",
                    format!(
                        "duplicate item id `{}` (first at {first}); item ids must be unique",
                        item.id
                    ),
                ));
            }
        }
        let (items, origins): (Vec<Item>, Vec<ItemOrigin>) = items.into_iter().unzip();
        let digest = digest_items(&items);
        Ok(Dataset {
            source,
            items,
            origins,
            digest,
        })
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Where item `index` was written.
    pub fn origin(&self, index: usize) -> Option<&ItemOrigin> {
        self.origins.get(index)
    }

    /// SHA-256 (hex) over the items in order, each as canonical JSON of `{id, input, expected}`
    /// followed by a newline: the same items give the same digest whether written inline, in
    /// JSONL or in CSV.
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

fn digest_items(items: &[Item]) -> String {
    let mut text = String::new();
    for item in items {
        let value = serde_json::json!({
            "id": item.id,
            "input": Value::Object(item.input.clone()),
            "expected": Value::Object(item.expected.clone()),
        });
        canonical_json(&value, &mut text);
        text.push('\n');
    }
    sha256_hex(text.as_bytes())
}

/// Lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn check_item_id(id: &str, origin: &ItemOrigin) -> Result<(), SuiteError> {
    let problem = if id.trim().is_empty() {
        Some("an item needs a non-empty `id`".to_string())
    } else if id.len() > MAX_ITEM_ID_LEN {
        Some(format!(
            "item id is {} bytes long; at most {MAX_ITEM_ID_LEN}",
            id.len()
        ))
    } else if id.chars().any(char::is_control) {
        Some("item id contains a control character".to_string())
    } else {
        None
    };
    match problem {
        Some(message) => Err(SuiteError::invalid(
            &origin.file,
            origin.line.map(|line| Location { line, column: None }),
            "id",
            message,
        )),
        None => Ok(()),
    }
}

/// An item from a JSON object: `id` (a string or an integer), `expected` (an object, optional),
/// everything else input. `Err` is `(field, message)`.
pub(crate) fn item_from_object(mut map: Map<String, Value>) -> Result<Item, (String, String)> {
    let id = match map.remove("id") {
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(other) => {
            return Err((
                "id".into(),
                format!("expected a string, found {}", kind_of(&other)),
            ));
        }
        None => return Err(("id".into(), "every item needs an `id`".into())),
    };
    let expected = match map.remove("expected") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err((
                "expected".into(),
                format!(
                    "expected a mapping of expected fields (e.g. `expected: {{answer: …}}`), found {}",
                    kind_of(&other)
                ),
            ));
        }
    };
    Ok(Item {
        id,
        input: map,
        expected,
    })
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Items from JSONL text: one object per non-blank line.
pub(crate) fn parse_jsonl(file: &str, text: &str) -> Result<Vec<(Item, ItemOrigin)>, SuiteError> {
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let at = |column| {
            Some(Location {
                line: line_no,
                column,
            })
        };
        let value: Value = serde_json::from_str(line).map_err(|e| {
            SuiteError::invalid(
                file,
                at(Some(e.column())),
                "(item)",
                format!("invalid JSON: {e}"),
            )
        })?;
        let Value::Object(map) = value else {
            return Err(SuiteError::invalid(
                file,
                at(None),
                "(item)",
                format!("expected a JSON object per line, found {}", kind_of(&value)),
            ));
        };
        let item = item_from_object(map)
            .map_err(|(field, message)| SuiteError::invalid(file, at(None), field, message))?;
        items.push((
            item,
            ItemOrigin {
                file: file.into(),
                line: Some(line_no),
            },
        ));
    }
    Ok(items)
}

/// Items from CSV text with a header row; `expected.<name>` columns are expected fields.
pub(crate) fn parse_csv(file: &str, text: &str) -> Result<Vec<(Item, ItemOrigin)>, SuiteError> {
    let csv_error = |e: csv::Error| {
        let line = e.position().map(|p| p.line() as usize);
        SuiteError::invalid(
            file,
            line.map(|line| Location { line, column: None }),
            "(csv)",
            e.to_string(),
        )
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(csv_error)?.clone();
    let header_at = Some(Location {
        line: 1,
        column: None,
    });
    let mut seen = std::collections::HashSet::new();
    for h in &headers {
        if h.trim().is_empty() || h == "expected." {
            return Err(SuiteError::invalid(
                file,
                header_at,
                "(header)",
                "an empty column name",
            ));
        }
        if !seen.insert(h) {
            return Err(SuiteError::invalid(
                file,
                header_at,
                h,
                format!("column `{h}` appears twice"),
            ));
        }
    }
    if !headers.iter().any(|h| h == "id") {
        return Err(SuiteError::invalid(
            file,
            header_at,
            "id",
            "the header has no `id` column; every item needs an id",
        ));
    }
    let mut items = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map(|p| p.line() as usize);
        let mut input = Map::new();
        let mut expected = Map::new();
        let mut id = String::new();
        for (name, cell) in headers.iter().zip(record.iter()) {
            if name == "id" {
                id = cell.to_string();
            } else if let Some(field) = name.strip_prefix("expected.") {
                expected.insert(field.to_string(), Value::String(cell.to_string()));
            } else {
                input.insert(name.to_string(), Value::String(cell.to_string()));
            }
        }
        items.push((
            Item {
                id,
                input,
                expected,
            },
            ItemOrigin {
                file: file.into(),
                line,
            },
        ));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_items_split_id_inputs_and_expected() {
        let items = parse_jsonl(
            "d.jsonl",
            "{\"id\": \"a\", \"q\": \"hi\", \"expected\": {\"answer\": \"yo\"}}\n\n{\"id\": 7, \"q\": \"x\"}\n",
        )
        .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].0.id, "a");
        assert_eq!(items[0].0.input["q"], "hi");
        assert_eq!(items[0].0.expected["answer"], "yo");
        assert_eq!(items[1].0.id, "7");
        assert_eq!(items[1].1.line, Some(3));
        assert_eq!(
            items[0].0.input_json(),
            serde_json::json!({"id": "a", "q": "hi"})
        );
    }

    #[test]
    fn jsonl_errors_name_the_line() {
        let e = parse_jsonl("d.jsonl", "{\"id\": \"a\"}\n{\"id\": \"b\",\n").unwrap_err();
        assert_eq!(e.line(), Some(2));
        assert!(e.to_string().starts_with("d.jsonl:2:"), "{e}");
        let e = parse_jsonl("d.jsonl", "{\"q\": 1}\n").unwrap_err();
        assert_eq!(e.to_string(), "d.jsonl:1: id: every item needs an `id`");
        let e = parse_jsonl("d.jsonl", "{\"id\": \"a\", \"expected\": 3}\n").unwrap_err();
        assert_eq!(e.field(), Some("expected"));
        let e = parse_jsonl("d.jsonl", "[1]\n").unwrap_err();
        assert!(e.to_string().contains("expected a JSON object"), "{e}");
    }

    #[test]
    fn csv_columns_map_to_inputs_and_expected_fields() {
        let items = parse_csv(
            "d.csv",
            "id,text,expected.name\nr1,\"Hello, Ann\",Ann\nr2,\"multi\nline\",Bob\nr3,x,Cy\n",
        )
        .unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].0.input["text"], "Hello, Ann");
        assert_eq!(items[0].0.expected["name"], "Ann");
        assert_eq!(items[1].0.input["text"], "multi\nline");
        assert_eq!(items[0].1.line, Some(2));
        assert_eq!(items[2].1.line, Some(5));
    }

    #[test]
    fn csv_without_an_id_column_or_with_ragged_rows_is_refused() {
        let e = parse_csv("d.csv", "name\nx\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.csv:1: id: the header has no `id` column; every item needs an id"
        );
        let e = parse_csv("d.csv", "id,a\n1,2\n3\n").unwrap_err();
        assert_eq!(e.line(), Some(3), "{e}");
        let e = parse_csv("d.csv", "id,a,a\n1,2,3\n").unwrap_err();
        assert_eq!(e.field(), Some("a"));
    }

    #[test]
    fn duplicate_ids_name_both_places() {
        let items = parse_jsonl(
            "d.jsonl",
            "{\"id\": \"a\"}\n{\"id\": \"b\"}\n{\"id\": \"a\"}\n",
        )
        .unwrap();
        let e = Dataset::new(DatasetSource::Inline, items).unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.jsonl:3: id: duplicate item id `a` (first at d.jsonl:1); item ids must be unique"
        );
    }

    #[test]
    fn the_digest_depends_on_content_not_on_the_file_format() {
        let jsonl = parse_jsonl(
            "d.jsonl",
            "{\"id\": \"r1\", \"text\": \"x\", \"expected\": {\"name\": \"Ann\"}}\n",
        )
        .unwrap();
        let csv = parse_csv("d.csv", "text,id,expected.name\nx,r1,Ann\n").unwrap();
        let a = Dataset::new(DatasetSource::Inline, jsonl).unwrap();
        let b = Dataset::new(DatasetSource::Inline, csv).unwrap();
        assert_eq!(a.digest(), b.digest());
        let other = parse_csv("d.csv", "text,id,expected.name\nx,r1,Bob\n").unwrap();
        let c = Dataset::new(DatasetSource::Inline, other).unwrap();
        assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn digests_are_hex_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn fields_are_found_by_dotted_path() {
        let item = item_from_object(
            serde_json::json!({"id": "a", "customer": {"name": "Ann"}, "expected": {"total": {"usd": 3}}})
                .as_object()
                .cloned()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(item.input_field("customer.name"), Some("Ann".into()));
        assert_eq!(item.input_field("id"), Some("a".into()));
        assert_eq!(
            item.expected_field("total.usd"),
            Some(&serde_json::json!(3))
        );
        assert_eq!(item.input_field("nope"), None);
    }
}
