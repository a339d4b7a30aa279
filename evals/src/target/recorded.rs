//! Recorded outputs as a target: a JSONL file, one `{"id": ..., "output": ...}` per line, where
//! `output` is either the answer's text or an object with the fields of [`Output`] (all but
//! `text` optional). Answers by item id; a missing id is an error naming it. The file is read
//! once, when the target is opened, and held in memory.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ChatRequest, Target, TargetError, TargetFuture};
use crate::output::{Output, ToolCall};

/// A file of recorded outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedTargetConfig {
    pub path: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: String,
    output: RecordedOutput,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RecordedOutput {
    Text(String),
    Full(FullOutput),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FullOutput {
    #[serde(default)]
    text: String,
    #[serde(default)]
    tool_calls: Vec<ToolCall>,
    #[serde(default)]
    latency_ms: f64,
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cost_usd: f64,
    #[serde(default)]
    model: Option<String>,
}

impl From<RecordedOutput> for Output {
    fn from(r: RecordedOutput) -> Output {
        match r {
            RecordedOutput::Text(text) => Output {
                text,
                ..Default::default()
            },
            RecordedOutput::Full(f) => Output {
                text: f.text,
                tool_calls: f.tool_calls,
                latency_ms: f.latency_ms,
                input_tokens: f.input_tokens,
                output_tokens: f.output_tokens,
                cost_usd: f.cost_usd,
                model: f.model,
            },
        }
    }
}

/// Recorded outputs, by item id.
#[derive(Debug, Clone)]
pub struct RecordedTarget {
    path: PathBuf,
    outputs: HashMap<String, Output>,
}

impl RecordedTarget {
    /// Reads the file. Errors name the file and line; an id recorded twice is an error.
    pub fn open(config: &RecordedTargetConfig) -> Result<Self, TargetError> {
        let path = &config.path;
        let file = std::fs::File::open(path)
            .map_err(|e| TargetError::Config(format!("{}: {e}", path.display())))?;
        let mut outputs = HashMap::new();
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let at = format!("{}:{}", path.display(), n + 1);
            let line = line.map_err(|e| TargetError::Config(format!("{at}: {e}")))?;
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Line = serde_json::from_str(&line)
                .map_err(|e| TargetError::Config(format!("{at}: {e}")))?;
            if outputs.contains_key(&parsed.id) {
                return Err(TargetError::Config(format!(
                    "{at}: id {:?} is recorded twice",
                    parsed.id
                )));
            }
            outputs.insert(parsed.id, parsed.output.into());
        }
        Ok(RecordedTarget {
            path: path.clone(),
            outputs,
        })
    }

    /// The recorded output of an item (a pairwise scorer's baseline reads it without a request).
    pub fn output(&self, item_id: &str) -> Option<&Output> {
        self.outputs.get(item_id)
    }

    /// How many outputs the file holds.
    pub fn len(&self) -> usize {
        self.outputs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }
}

impl Target for RecordedTarget {
    fn identity(&self) -> String {
        format!("recorded {}", self.path.display())
    }

    fn complete<'a>(&'a self, request: &'a ChatRequest) -> TargetFuture<'a> {
        let answer =
            self.outputs
                .get(&request.item_id)
                .cloned()
                .ok_or_else(|| TargetError::MissingItem {
                    item_id: request.item_id.clone(),
                });
        Box::pin(std::future::ready(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(lines: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
        f.write_all(lines.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        f
    }

    #[tokio::test]
    async fn answers_by_id_and_names_missing_ids() {
        let f = file_with(
            "{\"id\":\"a\",\"output\":\"alpha\"}\n\n{\"id\":\"b\",\"output\":{\"text\":\"beta\",\"tool_calls\":[{\"name\":\"t\",\"arguments\":{\"x\":1}}],\"cost_usd\":0.5}}\n",
        );
        let target = RecordedTarget::open(&RecordedTargetConfig {
            path: f.path().to_path_buf(),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(target.len(), 2);
        let ask = |id: &str| ChatRequest {
            item_id: id.into(),
            ..Default::default()
        };
        let a = target.complete(&ask("a")).await;
        assert_eq!(a.map(|o| o.text).ok(), Some("alpha".into()));
        let b = target
            .complete(&ask("b"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.tool_calls[0].name, "t");
        assert_eq!(b.cost_usd, 0.5);
        assert_eq!(
            target.complete(&ask("zzz")).await,
            Err(TargetError::MissingItem {
                item_id: "zzz".into()
            })
        );
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let f = file_with("{\"id\":\"a\",\"output\":\"x\"}\n{\"id\":\"a\",\"output\":\"y\"}\n");
        let path = f.path().to_path_buf();
        let err = RecordedTarget::open(&RecordedTargetConfig { path: path.clone() });
        let message = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains(&format!("{}:2", path.display())),
            "{message}"
        );
        assert!(message.contains("twice"), "{message}");

        let f = file_with("{\"id\":\"a\"}\n");
        let err = RecordedTarget::open(&RecordedTargetConfig {
            path: f.path().to_path_buf(),
        });
        let message = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains(":1: missing field `output`"), "{message}");
    }
}
