//! Suites: what to evaluate, as a YAML file — a dataset, a target, a prompt template and
//! scorers — loaded into a validated [`Suite`] with its digest.
//!
//! ```yaml
//! id: support-bot
//! description: Answers to common support questions
//! agent_id: support-bot          # whose trust the results feed
//! dataset: datasets/support-bot.jsonl   # or an inline list of items
//! target:
//!   type: openai                 # openai | http | recorded (crate::target's configurations)
//!   base_url: http://127.0.0.1:8080/v1
//!   model: gpt-4o-mini
//!   api_key_env: OPENAI_API_KEY
//!   price: { input_per_million_usd: 0.15, output_per_million_usd: 0.6 }
//!   temperature: 0               # sent with every request, as max_tokens and seed
//! prompt:
//!   system: You answer for Acme support.
//!   user: "{{question}}"
//! tools: []                      # optional OpenAI tool definitions offered to the target
//! scorers:
//!   - type: normalized
//!     mode: contains
//!     expected: answer
//! sample: { size: 20, seed: 7 }  # optional
//! store_raw: false
//! concurrency: 4
//! timeout_ms: 60000
//! retries: 2
//! ```
//!
//! A loaded suite feeds the runner: [`Suite::runner_target`] (files resolved),
//! [`Suite::chat_requests`] (one per selected item) and [`Suite::run_config`].
//!
//! Loading checks everything that can be checked without calling the target: every placeholder
//! of the prompt exists in every item, every expected field a scorer reads exists in every item,
//! regexes and schemas compile, names are unique. Errors name the file, line, column and field.
//! Files a suite names (dataset, schemas, recorded outputs) are relative to the suite's file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dataset::{
    Dataset, DatasetSource, Item, ItemOrigin, item_from_object, kind_of, parse_csv, parse_jsonl,
    sha256_hex,
};
use crate::error::{SuiteError, split_yaml_error};
use crate::prompt::{PromptTemplate, TemplateError};
use crate::run::{RetryPolicy, RunConfig, canonical_json, seeded_sample};
use crate::scorers::{Scorer, ScorerSpec, expected_calls};
pub use crate::target::TargetConfig;
use crate::target::{
    ChatMessage, ChatRequest, OpenAiTargetConfig, Price, RecordedTarget, RecordedTargetConfig,
};
use crate::yaml_lines::locate;

/// Defaults and bounds of the run settings.
pub const DEFAULT_CONCURRENCY: u32 = 4;
pub const MAX_CONCURRENCY: u32 = 256;
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;
pub const MAX_TIMEOUT_MS: u64 = 600_000;
pub const DEFAULT_RETRIES: u32 = 2;
pub const MAX_RETRIES: u32 = 10;
/// The longest scorer name.
pub const MAX_SCORER_NAME_LEN: usize = 64;

/// What a chat target is sent with every request, beside the messages (written in an `openai`
/// target: `temperature`, `max_tokens`, `seed`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
}

/// The kind of a target as written in a suite (`type: openai | http | recorded`).
pub fn target_kind(target: &TargetConfig) -> &'static str {
    match target {
        TargetConfig::OpenAi(_) => "openai",
        TargetConfig::Http(_) => "http",
        TargetConfig::Recorded(_) => "recorded",
    }
}

/// The model a target names, if it names one.
pub fn target_model(target: &TargetConfig) -> Option<&str> {
    match target {
        TargetConfig::OpenAi(t) => Some(&t.model),
        _ => None,
    }
}

/// Run on a seeded random sample of `size` items instead of all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleSpec {
    pub size: usize,
    pub seed: u64,
}

/// A loaded, validated suite.
#[derive(Debug, Clone)]
pub struct Suite {
    id: String,
    description: String,
    agent_id: String,
    dataset: Dataset,
    /// As written: a recorded target's path is relative to the suite file.
    target: TargetConfig,
    request: RequestSettings,
    tools: Option<Vec<Value>>,
    prompt: Option<PromptTemplate>,
    scorers: Vec<Scorer>,
    sample: Option<SampleSpec>,
    store_raw: bool,
    concurrency: u32,
    timeout_ms: u64,
    retries: u32,
    file: String,
    base_dir: PathBuf,
    digest: String,
}

/// The suite file as parsed, before its tagged parts are read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    id: String,
    description: String,
    agent_id: String,
    dataset: serde_yaml::Value,
    target: serde_yaml::Value,
    #[serde(default)]
    prompt: Option<PromptTemplate>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    scorers: Vec<serde_yaml::Value>,
    #[serde(default)]
    sample: Option<SampleSpec>,
    #[serde(default)]
    store_raw: bool,
    #[serde(default = "default_concurrency")]
    concurrency: u32,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_retries")]
    retries: u32,
}

fn default_concurrency() -> u32 {
    DEFAULT_CONCURRENCY
}
fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}
fn default_retries() -> u32 {
    DEFAULT_RETRIES
}

/// Errors while loading one suite file: knows the file's name and text, so every error can
/// point at a line.
struct Loader<'a> {
    file: &'a str,
    text: &'a str,
    base_dir: &'a Path,
}

impl Loader<'_> {
    /// An error about `field`, at the line where the field is written.
    fn at(&self, field: &str, message: impl Into<String>) -> SuiteError {
        SuiteError::invalid(self.file, locate(self.text, field), field, message)
    }

    /// A file the suite names, relative to the suite's directory, with a label for errors.
    fn resolve(&self, rel: &str) -> (PathBuf, String) {
        let path = self.base_dir.join(rel);
        let label = path.display().to_string();
        (path, label)
    }

    fn read(&self, field: &str, rel: &str) -> Result<(String, String), SuiteError> {
        if rel.trim().is_empty() {
            return Err(self.at(field, "names no file"));
        }
        let (path, label) = self.resolve(rel);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| self.at(field, format!("cannot read `{label}`: {e}")))?;
        Ok((text, label))
    }

    /// A serde_yaml error from parsing the part of the suite at `prefix` (empty: the whole
    /// file), with its field made absolute and pointed at.
    fn yaml_error(&self, prefix: &str, e: &serde_yaml::Error) -> SuiteError {
        let (at, field, message) = split_yaml_error(e);
        let join = |rest: &str| match (prefix.is_empty(), rest.is_empty()) {
            (true, _) => rest.to_string(),
            (false, true) => prefix.to_string(),
            (false, false) => format!("{prefix}.{rest}"),
        };
        let relative = if field == "(document)" {
            String::new()
        } else {
            field
        };
        // `unknown field `x`` and `missing field `x`` name the field only in the message.
        let named = |marker: &str| {
            message
                .strip_prefix(marker)
                .and_then(|r| r.split('`').next())
                .map(str::to_string)
        };
        if let Some(unknown) = named("unknown field `") {
            let path = join(&join_rel(&relative, &unknown));
            let at = if prefix.is_empty() {
                at
            } else {
                locate(self.text, &path)
            };
            return SuiteError::invalid(self.file, at, path, message);
        }
        if let Some(missing) = named("missing field `") {
            let parent = join(&relative);
            let path = join_rel(&parent, &missing);
            let at = if parent.is_empty() {
                None
            } else {
                locate(self.text, &parent)
            };
            return SuiteError::invalid(self.file, at, path, message);
        }
        let path = join(&relative);
        let at = if prefix.is_empty() {
            at
        } else {
            locate(self.text, &path)
        };
        let path = if path.is_empty() {
            "(document)".to_string()
        } else {
            path
        };
        SuiteError::invalid(self.file, at, path, message)
    }
}

fn join_rel(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}.{b}")
    }
}

/// A tagged mapping (`type: …` plus fields) split into its type, its optional `name` and the
/// YAML of its other fields.
fn split_tagged(
    loader: &Loader<'_>,
    path: &str,
    value: &serde_yaml::Value,
    kinds: &[&str],
    what: &str,
) -> Result<(String, Option<String>, serde_yaml::Mapping), SuiteError> {
    let serde_yaml::Value::Mapping(map) = value else {
        return Err(loader.at(
            path,
            format!("expected a mapping with `type: …` ({})", kinds.join(", ")),
        ));
    };
    let mut map = map.clone();
    let kind = match map.remove("type") {
        Some(serde_yaml::Value::String(s)) => s,
        Some(_) => return Err(loader.at(&format!("{path}.type"), "expected a string")),
        None => {
            return Err(loader.at(
                path,
                format!("every {what} needs a `type`: one of {}", kinds.join(", ")),
            ));
        }
    };
    let name = match map.remove("name") {
        None => None,
        Some(serde_yaml::Value::String(s)) => Some(s),
        Some(_) => return Err(loader.at(&format!("{path}.name"), "expected a string")),
    };
    Ok((kind, name, map))
}

/// A mapping as YAML text, to be parsed again into a typed struct (so errors name its fields).
fn to_yaml(
    loader: &Loader<'_>,
    path: &str,
    map: &serde_yaml::Mapping,
) -> Result<String, SuiteError> {
    serde_yaml::to_string(map).map_err(|e| loader.at(path, format!("cannot read: {e}")))
}

const TARGET_KINDS: &[&str] = &["openai", "http", "recorded"];

impl Suite {
    /// Reads and validates a suite file and the files it names.
    pub fn load(path: &Path) -> Result<Suite, SuiteError> {
        let label = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SuiteError::io(&label, &e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Suite::parse(&label, &text, base)
    }

    /// Validates a suite's text; `file` names it in errors, `base_dir` is where the files it
    /// names are.
    pub fn parse(file: &str, text: &str, base_dir: &Path) -> Result<Suite, SuiteError> {
        let loader = Loader {
            file,
            text,
            base_dir,
        };
        let raw: RawSuite = serde_yaml::from_str(text).map_err(|e| loader.yaml_error("", &e))?;

        check_suite_id(&loader, &raw.id)?;
        if raw.description.trim().is_empty() {
            return Err(loader.at("description", "say what the suite checks"));
        }
        meshos_types::validate_id("agent_id", &raw.agent_id)
            .map_err(|e| loader.at("agent_id", e.to_string()))?;
        check_run_settings(&loader, &raw)?;

        let (target, request) = parse_target(&loader, &raw.target)?;
        if !matches!(target, TargetConfig::Recorded(_)) && raw.prompt.is_none() {
            return Err(loader.at(
                "target",
                format!(
                    "an `{}` target needs a `prompt` (the messages to send for each item)",
                    target_kind(&target)
                ),
            ));
        }
        if let Some(tools) = &raw.tools {
            check_tools(&loader, tools)?;
        }
        let dataset = load_dataset(&loader, &raw.dataset)?;
        if dataset.is_empty() {
            return Err(loader.at("dataset", "the dataset has no items"));
        }
        if let Some(sample) = raw.sample
            && sample.size == 0
        {
            return Err(loader.at("sample.size", "must be at least 1"));
        }
        if let Some(prompt) = &raw.prompt {
            check_prompt(&loader, prompt, &dataset)?;
        }
        let scorers = load_scorers(&loader, &raw.scorers, &dataset)?;

        let mut suite = Suite {
            id: raw.id,
            description: raw.description,
            agent_id: raw.agent_id,
            dataset,
            target,
            request,
            tools: raw.tools,
            prompt: raw.prompt,
            scorers,
            sample: raw.sample,
            store_raw: raw.store_raw,
            concurrency: raw.concurrency,
            timeout_ms: raw.timeout_ms,
            retries: raw.retries,
            file: file.to_string(),
            base_dir: base_dir.to_path_buf(),
            digest: String::new(),
        };
        let mut canonical = String::new();
        canonical_json(&suite.definition(false), &mut canonical);
        suite.digest = sha256_hex(canonical.as_bytes());
        Ok(suite)
    }

    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn description(&self) -> &str {
        &self.description
    }
    /// The agent whose trust the results feed.
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }
    /// The target as written in the suite (a recorded target's path relative to the suite
    /// file); [`Suite::runner_target`] is the one to build.
    pub fn target(&self) -> &TargetConfig {
        &self.target
    }

    /// The target with the files it names resolved against the suite's directory, ready for
    /// [`TargetConfig::build`].
    pub fn runner_target(&self) -> TargetConfig {
        match &self.target {
            TargetConfig::Recorded(t) => TargetConfig::Recorded(RecordedTargetConfig {
                path: self.base_dir.join(&t.path),
            }),
            other => other.clone(),
        }
    }

    /// The temperature, token limit and seed sent with every request.
    pub fn request_settings(&self) -> RequestSettings {
        self.request
    }

    /// Tool definitions (OpenAI chat format) offered to the target with every request.
    pub fn tools(&self) -> Option<&[Value]> {
        self.tools.as_deref()
    }
    pub fn prompt(&self) -> Option<&PromptTemplate> {
        self.prompt.as_ref()
    }
    pub fn scorers(&self) -> &[Scorer] {
        &self.scorers
    }
    pub fn sample(&self) -> Option<SampleSpec> {
        self.sample
    }
    /// Whether raw inputs and outputs may be stored with the results.
    pub fn store_raw(&self) -> bool {
        self.store_raw
    }
    pub fn concurrency(&self) -> u32 {
        self.concurrency
    }
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }
    pub fn retries(&self) -> u32 {
        self.retries
    }
    /// The file the suite was loaded from, as given.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// A file named in the suite, resolved against the suite's directory.
    pub fn resolve(&self, rel: &str) -> PathBuf {
        self.base_dir.join(rel)
    }

    /// SHA-256 (hex) of the suite's canonical definition: everything in the file, with the
    /// dataset as its digest and schema files inlined — so a changed dataset row, scorer or
    /// schema changes it, and moving the files does not.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The dataset's digest (see [`Dataset::digest`]).
    pub fn dataset_digest(&self) -> &str {
        self.dataset.digest()
    }

    /// The items a run covers: all of them, or the seeded sample in dataset order.
    pub fn selected_items(&self) -> Vec<&Item> {
        let items = self.dataset.items();
        match self.sample {
            Some(s) => seeded_sample(items.len(), s.size, s.seed)
                .into_iter()
                .filter_map(|i| items.get(i))
                .collect(),
            None => items.iter().collect(),
        }
    }

    /// The scorer names whose smaller values are better (for [`crate::stats::CompareOptions`]).
    pub fn lower_is_better(&self) -> Vec<String> {
        self.scorers
            .iter()
            .filter(|s| !s.spec().higher_is_better())
            .map(|s| s.name().to_string())
            .collect()
    }

    /// How runs of this suite are compared: which scorers are better lower, and the smallest
    /// change of a latency or cost that counts (5% of the scorer's limit).
    pub fn compare_options(&self) -> crate::stats::CompareOptions {
        let min_value_change = self
            .scorers
            .iter()
            .filter_map(|s| match s.spec() {
                crate::scorers::ScorerSpec::Latency(l) => {
                    Some((s.name().to_string(), l.max_ms * 0.05))
                }
                crate::scorers::ScorerSpec::Cost(c) => {
                    Some((s.name().to_string(), c.max_usd * 0.05))
                }
                _ => None,
            })
            .collect();
        crate::stats::CompareOptions {
            lower_is_better: self.lower_is_better(),
            min_value_change,
            ..crate::stats::CompareOptions::default()
        }
    }

    /// What the target is asked for one item: the rendered prompt (system, then user) and
    /// the suite's request settings and tools. A suite without a prompt (recorded targets)
    /// sends no messages.
    pub fn chat_request(&self, item: &Item) -> Result<ChatRequest, TemplateError> {
        let mut messages = Vec::new();
        if let Some(prompt) = &self.prompt {
            let rendered = prompt.render(item)?;
            if let Some(system) = rendered.system {
                messages.push(ChatMessage::new("system", system));
            }
            messages.push(ChatMessage::new("user", rendered.user));
        }
        Ok(ChatRequest {
            item_id: item.id.clone(),
            messages,
            tools: self.tools.clone(),
            temperature: self.request.temperature,
            max_tokens: self.request.max_tokens,
            seed: self.request.seed,
        })
    }

    /// The requests of a run, for [`crate::run::Runner::run`]: one per selected item, in
    /// order. Loading checked every placeholder against every item, so this fails only if
    /// that check was bypassed.
    pub fn chat_requests(&self) -> Result<Vec<ChatRequest>, TemplateError> {
        self.selected_items()
            .into_iter()
            .map(|item| self.chat_request(item))
            .collect()
    }

    /// The runner's settings from the suite's `concurrency`, `timeout_ms` and `retries`
    /// (`retries` more attempts after the first); backoff and the reorder window keep the
    /// runner's defaults.
    pub fn run_config(&self) -> RunConfig {
        let defaults = RunConfig::default();
        RunConfig {
            concurrency: self.concurrency as usize,
            timeout: Duration::from_millis(self.timeout_ms),
            retry: RetryPolicy {
                max_attempts: self.retries + 1,
                ..defaults.retry
            },
            reorder_window: defaults.reorder_window.max(self.concurrency as usize),
        }
    }

    /// The suite as JSON, as it was read (for the MCP resource and the CLI): the dataset as
    /// its source, size and digest.
    pub fn definition_json(&self) -> Value {
        self.definition(true)
    }

    fn definition(&self, with_source: bool) -> Value {
        let mut dataset = serde_json::json!({
            "digest": self.dataset.digest(),
            "items": self.dataset.len(),
        });
        if with_source && let Value::Object(m) = &mut dataset {
            m.insert(
                "source".into(),
                serde_json::to_value(&self.dataset.source).unwrap_or(Value::Null),
            );
        }
        serde_json::json!({
            "id": self.id,
            "description": self.description,
            "agent_id": self.agent_id,
            "dataset": dataset,
            "target": serde_json::to_value(&self.target).unwrap_or(Value::Null),
            "request": serde_json::to_value(self.request).unwrap_or(Value::Null),
            "tools": serde_json::to_value(&self.tools).unwrap_or(Value::Null),
            "prompt": serde_json::to_value(&self.prompt).unwrap_or(Value::Null),
            "scorers": serde_json::to_value(&self.scorers).unwrap_or(Value::Null),
            "sample": serde_json::to_value(self.sample).unwrap_or(Value::Null),
            "store_raw": self.store_raw,
            "concurrency": self.concurrency,
            "timeout_ms": self.timeout_ms,
            "retries": self.retries,
        })
    }
}

fn check_suite_id(loader: &Loader<'_>, id: &str) -> Result<(), SuiteError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !id.starts_with(['-', '_']);
    if ok {
        Ok(())
    } else {
        Err(loader.at(
            "id",
            format!("`{id}` is not a suite id; use 1-64 lowercase letters, digits, `-` and `_`"),
        ))
    }
}

fn check_run_settings(loader: &Loader<'_>, raw: &RawSuite) -> Result<(), SuiteError> {
    if !(1..=MAX_CONCURRENCY).contains(&raw.concurrency) {
        return Err(loader.at(
            "concurrency",
            format!("{} is outside 1..={MAX_CONCURRENCY}", raw.concurrency),
        ));
    }
    if !(1..=MAX_TIMEOUT_MS).contains(&raw.timeout_ms) {
        return Err(loader.at(
            "timeout_ms",
            format!("{} is outside 1..={MAX_TIMEOUT_MS}", raw.timeout_ms),
        ));
    }
    if raw.retries > MAX_RETRIES {
        return Err(loader.at(
            "retries",
            format!("{} is more than {MAX_RETRIES}", raw.retries),
        ));
    }
    Ok(())
}

fn parse_target(
    loader: &Loader<'_>,
    value: &serde_yaml::Value,
) -> Result<(TargetConfig, RequestSettings), SuiteError> {
    let (kind, name, mut fields) = split_tagged(loader, "target", value, TARGET_KINDS, "target")?;
    if name.is_some() {
        return Err(loader.at("target.name", "a target has no `name`"));
    }
    let parse = |map: &serde_yaml::Mapping| -> Result<String, SuiteError> {
        to_yaml(loader, "target", map)
    };
    let yaml_error = |e: serde_yaml::Error| loader.yaml_error("target", &e);
    let mut request = RequestSettings::default();
    let target = match kind.as_str() {
        "openai" => {
            // The per-request settings sit beside the endpoint's fields in the suite.
            let mut settings = serde_yaml::Mapping::new();
            for key in ["temperature", "max_tokens", "seed"] {
                if let Some(v) = fields.remove(key) {
                    settings.insert(key.into(), v);
                }
            }
            request = serde_yaml::from_str(&parse(&settings)?).map_err(yaml_error)?;
            TargetConfig::OpenAi(serde_yaml::from_str(&parse(&fields)?).map_err(yaml_error)?)
        }
        "http" => TargetConfig::Http(serde_yaml::from_str(&parse(&fields)?).map_err(yaml_error)?),
        "recorded" => {
            TargetConfig::Recorded(serde_yaml::from_str(&parse(&fields)?).map_err(yaml_error)?)
        }
        other => {
            return Err(loader.at(
                "target.type",
                format!(
                    "unknown target type `{other}`; expected one of {}",
                    TARGET_KINDS.join(", ")
                ),
            ));
        }
    };
    if let Some(t) = request.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(loader.at("target.temperature", format!("{t} is outside 0..=2")));
    }
    if request.max_tokens == Some(0) {
        return Err(loader.at("target.max_tokens", "must be at least 1"));
    }
    match &target {
        TargetConfig::OpenAi(t) => check_openai(loader, "target", t)?,
        TargetConfig::Http(t) => {
            check_url(loader, "target.url", &t.url)?;
            check_price(loader, "target", t.price)?;
            for (name, value) in &t.headers {
                let token = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !token {
                    return Err(loader.at(
                        "target.headers",
                        format!("`{name}` is not an HTTP header name"),
                    ));
                }
                if value.contains(['\r', '\n']) {
                    return Err(loader.at(
                        &format!("target.headers.{name}"),
                        "a header value cannot contain a line break",
                    ));
                }
            }
            if t.max_response_bytes == 0 {
                return Err(loader.at("target.max_response_bytes", "must be at least 1"));
            }
        }
        TargetConfig::Recorded(t) => {
            if t.path.as_os_str().is_empty() {
                return Err(loader.at("target.path", "names no file"));
            }
        }
    }
    Ok((target, request))
}

fn check_price(loader: &Loader<'_>, at: &str, price: Option<Price>) -> Result<(), SuiteError> {
    if let Some(p) = price {
        for (name, v) in [
            ("input_per_million_usd", p.input_per_million_usd),
            ("output_per_million_usd", p.output_per_million_usd),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(loader.at(
                    &format!("{at}.price.{name}"),
                    format!("{v} is not a price ≥ 0"),
                ));
            }
        }
    }
    Ok(())
}

fn check_url(loader: &Loader<'_>, field: &str, url: &str) -> Result<(), SuiteError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !url.contains(char::is_whitespace) => Ok(()),
        _ => Err(loader.at(field, format!("`{url}` is not an http:// or https:// URL"))),
    }
}

/// Checks an OpenAI-compatible endpoint written at `at` (`target`, `scorers[1].model.endpoint`).
fn check_openai(loader: &Loader<'_>, at: &str, t: &OpenAiTargetConfig) -> Result<(), SuiteError> {
    check_url(loader, &format!("{at}.base_url"), &t.base_url)?;
    if t.model.trim().is_empty() {
        return Err(loader.at(&format!("{at}.model"), "names no model"));
    }
    if let Some(env) = &t.api_key_env
        && (env.is_empty()
            || env.starts_with(|c: char| c.is_ascii_digit())
            || !env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(loader.at(
            &format!("{at}.api_key_env"),
            format!("`{env}` is not an environment variable name"),
        ));
    }
    if t.max_response_bytes == 0 {
        return Err(loader.at(&format!("{at}.max_response_bytes"), "must be at least 1"));
    }
    check_price(loader, at, t.price)
}

/// Tool definitions in the OpenAI chat format: `{type: function, function: {name, …}}`.
fn check_tools(loader: &Loader<'_>, tools: &[Value]) -> Result<(), SuiteError> {
    for (i, tool) in tools.iter().enumerate() {
        let at = format!("tools[{i}]");
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return Err(loader.at(&at, "expected `type: function` (OpenAI tool definitions)"));
        }
        let named = tool
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        if !named {
            return Err(loader.at(&format!("{at}.function"), "needs a `name`"));
        }
    }
    Ok(())
}

fn load_dataset(loader: &Loader<'_>, value: &serde_yaml::Value) -> Result<Dataset, SuiteError> {
    match value {
        serde_yaml::Value::String(rel) => {
            let lower = rel.to_ascii_lowercase();
            let jsonl = lower.ends_with(".jsonl") || lower.ends_with(".ndjson");
            if !jsonl && !lower.ends_with(".csv") {
                return Err(loader.at(
                    "dataset",
                    format!("`{rel}`: expected a .jsonl or .csv file (or an inline list of items)"),
                ));
            }
            let (text, label) = loader.read("dataset", rel)?;
            if jsonl {
                let items = parse_jsonl(&label, &text)?;
                Dataset::new(DatasetSource::Jsonl { path: rel.clone() }, items)
            } else {
                let items = parse_csv(&label, &text)?;
                Dataset::new(DatasetSource::Csv { path: rel.clone() }, items)
            }
        }
        serde_yaml::Value::Sequence(list) => {
            let lines = crate::yaml_lines::item_lines(loader.text, "dataset");
            let mut items = Vec::with_capacity(list.len());
            for (i, entry) in list.iter().enumerate() {
                let path = format!("dataset[{i}]");
                let json = serde_json::to_value(entry)
                    .map_err(|e| loader.at(&path, format!("cannot read the item: {e}")))?;
                let Value::Object(map) = json else {
                    return Err(loader.at(
                        &path,
                        format!("expected a mapping, found {}", kind_of(&json)),
                    ));
                };
                let item = item_from_object(map)
                    .map_err(|(field, message)| loader.at(&format!("{path}.{field}"), message))?;
                let line = lines.get(i).copied();
                items.push((
                    item,
                    ItemOrigin {
                        file: loader.file.to_string(),
                        line,
                    },
                ));
            }
            Dataset::new(DatasetSource::Inline, items)
        }
        _ => Err(loader.at(
            "dataset",
            "expected a list of items or the path of a .jsonl or .csv file",
        )),
    }
}

fn check_prompt(
    loader: &Loader<'_>,
    prompt: &PromptTemplate,
    dataset: &Dataset,
) -> Result<(), SuiteError> {
    let parts = [
        ("prompt.system", prompt.system.as_deref()),
        ("prompt.user", Some(prompt.user.as_str())),
    ];
    for (field, text) in parts {
        let Some(text) = text else { continue };
        let names = crate::prompt::placeholders(text).map_err(|e| loader.at(field, e.0))?;
        for name in names {
            for (i, item) in dataset.items().iter().enumerate() {
                if item.input_field(&name).is_none() {
                    let origin = dataset
                        .origin(i)
                        .map(|o| format!(" ({o})"))
                        .unwrap_or_default();
                    let hint = if item.expected_field(&name).is_some() {
                        "; expected fields are not available to prompts"
                    } else {
                        ""
                    };
                    return Err(loader.at(
                        field,
                        format!(
                            "unknown placeholder `{{{{{name}}}}}`: item `{}`{origin} has no input field `{name}`{hint}",
                            item.id
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn load_scorers(
    loader: &Loader<'_>,
    raw: &[serde_yaml::Value],
    dataset: &Dataset,
) -> Result<Vec<Scorer>, SuiteError> {
    if raw.is_empty() {
        return Err(loader.at("scorers", "a suite needs at least one scorer"));
    }
    let mut scorers: Vec<Scorer> = Vec::with_capacity(raw.len());
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, value) in raw.iter().enumerate() {
        let at = format!("scorers[{i}]");
        let (kind, name, fields) = split_tagged(loader, &at, value, ScorerSpec::KINDS, "scorer")?;
        let fields = to_yaml(loader, &at, &fields)?;
        let mut spec = ScorerSpec::from_yaml_fields(&kind, &fields)
            .map_err(|e| loader.yaml_error(&at, &e))?
            .ok_or_else(|| {
                loader.at(
                    &format!("{at}.type"),
                    format!(
                        "unknown scorer type `{kind}`; expected one of {}",
                        ScorerSpec::KINDS.join(", ")
                    ),
                )
            })?;
        let name = name.unwrap_or_else(|| spec.kind().to_string());
        check_scorer_name(loader, &at, &name)?;
        if let Some(first) = names.insert(name.clone(), i) {
            return Err(loader.at(
                &format!("{at}.name"),
                format!(
                    "scorers[{first}] is already named `{name}`; give each scorer a unique `name`"
                ),
            ));
        }
        let baseline = resolve_scorer_files(loader, &at, &mut spec, dataset)?;
        check_expected_fields(loader, &at, &spec, dataset)?;
        let scorer = Scorer::new(name, spec, baseline)
            .map_err(|e| loader.at(&format!("{at}.{}", e.field), e.message))?;
        scorers.push(scorer);
    }
    Ok(scorers)
}

fn check_scorer_name(loader: &Loader<'_>, at: &str, name: &str) -> Result<(), SuiteError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_SCORER_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(loader.at(
            &format!("{at}.name"),
            format!("`{name}` is not a scorer name; use 1-{MAX_SCORER_NAME_LEN} letters, digits, `_`, `-`, `.`"),
        ))
    }
}

/// Reads the files a scorer names: a `schema_path` is inlined into `schema`, a pairwise
/// `baseline` is opened (and must answer every item). Checks a judge model's endpoint.
fn resolve_scorer_files(
    loader: &Loader<'_>,
    at: &str,
    spec: &mut ScorerSpec,
    dataset: &Dataset,
) -> Result<Option<Arc<RecordedTarget>>, SuiteError> {
    match spec {
        ScorerSpec::JsonSchema(s) => {
            match (&s.schema, &s.schema_path) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(loader.at(
                        &format!("{at}.schema"),
                        "give exactly one of `schema` (inline) and `schema_path` (a file)",
                    ));
                }
                (None, Some(rel)) => {
                    let field = format!("{at}.schema_path");
                    let (text, label) = loader.read(&field, rel)?;
                    // YAML is a superset of JSON: one parser reads both.
                    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| {
                        loader.at(&field, format!("`{label}` is not JSON or YAML: {e}"))
                    })?;
                    let json = serde_json::to_value(yaml)
                        .map_err(|e| loader.at(&field, format!("`{label}`: {e}")))?;
                    s.schema = Some(json);
                }
                (Some(_), None) => {}
            }
            Ok(None)
        }
        ScorerSpec::Pairwise(p) => {
            if let Some(model) = &p.model {
                check_openai(loader, &format!("{at}.model.endpoint"), &model.endpoint)?;
            }
            let Some(rel) = &p.baseline else {
                return Ok(None);
            };
            let field = format!("{at}.baseline");
            if rel.trim().is_empty() {
                return Err(loader.at(&field, "names no file"));
            }
            let (path, _) = loader.resolve(rel);
            let baseline = RecordedTarget::open(&RecordedTargetConfig { path })
                .map_err(|e| loader.at(&field, e.to_string()))?;
            if let Some((i, item)) = dataset
                .items()
                .iter()
                .enumerate()
                .find(|(_, item)| baseline.output(&item.id).is_none())
            {
                let origin = dataset
                    .origin(i)
                    .map(|o| format!(" ({o})"))
                    .unwrap_or_default();
                return Err(loader.at(
                    &field,
                    format!("`{rel}` has no output for item `{}`{origin}", item.id),
                ));
            }
            Ok(Some(Arc::new(baseline)))
        }
        ScorerSpec::Judge(j) => {
            if let Some(model) = &j.model {
                check_openai(loader, &format!("{at}.model.endpoint"), &model.endpoint)?;
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Every item has the expected fields the scorer reads, in a form it can use.
fn check_expected_fields(
    loader: &Loader<'_>,
    at: &str,
    spec: &ScorerSpec,
    dataset: &Dataset,
) -> Result<(), SuiteError> {
    let key = match spec {
        ScorerSpec::Judge(_) | ScorerSpec::Pairwise(_) => "reference",
        _ => "expected",
    };
    let field = format!("{at}.{key}");
    for name in spec.expected_fields() {
        for (i, item) in dataset.items().iter().enumerate() {
            let origin = dataset
                .origin(i)
                .map(|o| format!(" ({o})"))
                .unwrap_or_default();
            let Some(value) = item.expected_field(name) else {
                return Err(loader.at(
                    &field,
                    format!("item `{}`{origin} has no expected field `{name}`", item.id),
                ));
            };
            let problem = match spec {
                ScorerSpec::ToolCalls(_) => expected_calls(value).err(),
                ScorerSpec::Numeric(_) => {
                    let number = match value {
                        Value::Number(_) => true,
                        Value::String(s) => s
                            .trim()
                            .replace(',', "")
                            .parse::<f64>()
                            .is_ok_and(f64::is_finite),
                        _ => false,
                    };
                    (!number)
                        .then(|| format!("`{}` is not a number", crate::scorers::value_text(value)))
                }
                _ => None,
            };
            if let Some(problem) = problem {
                return Err(loader.at(
                    &field,
                    format!(
                        "item `{}`{origin}: expected field `{name}`: {problem}",
                        item.id
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "suite_tests.rs"]
mod tests;
