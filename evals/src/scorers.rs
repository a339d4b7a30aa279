//! Scorers: what a suite checks in each answer, as configuration ([`ScorerSpec`], the one place
//! the scorer kinds are defined) and as loaded, ready-to-run scorers ([`Scorer`], regexes and
//! schemas compiled once).
//!
//! Every scorer maps (item, [`Output`]) to a [`Score`]. All but two are pure functions of those.
//! The two that need the outside world reach it only through a trait the caller supplies:
//! `policy_check` through [`OutputCheck`] (the service implements it with the real policy
//! engine) and `judge` / `pairwise` through [`Judge`] (implemented over an OpenAI-compatible
//! model by the runner). No scorer does I/O of its own.
//!
//! `value` is always a finite number: 0..1 for match-like scorers (1/0, or a share such as the
//! tool calls matched, or a judge's grade) and the measured number for `latency`
//! (milliseconds) and `cost` (dollars); see [`ScorerSpec::higher_is_better`] for which way is
//! better.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use meshos_types::{Finding, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

use crate::dataset::Item;
use crate::judge_client::{JudgeConfig, Scale};
use crate::output::{Output, ToolCall};
use crate::prompt::RenderedPrompt;
use crate::target::RecordedTarget;

/// A boxed, sendable future: what the I/O traits return, so they stay object-safe
/// (`&dyn Judge`) without an extra dependency.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The longest regex pattern accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 4096;
/// The compiled size limit of a regex (the `regex` crate's `size_limit`); a pattern over it is
/// refused at load rather than allowed to blow up memory.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One scorer's verdict on one answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The scorer's name (its `name`, or its type when unnamed).
    pub scorer: String,
    pub passed: bool,
    /// 0..1 for match-like scorers, the measured number for `latency` and `cost`; always finite.
    pub value: f64,
    /// Why, in a sentence a person can read.
    pub detail: String,
}

/// Every score one item got in a run: what reports and comparisons read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemScores {
    pub item_id: String,
    pub scores: Vec<Score>,
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

fn answer() -> String {
    "answer".into()
}
fn tool_calls_field() -> String {
    "tool_calls".into()
}
fn yes() -> bool {
    true
}
fn half() -> f64 {
    0.5
}
fn unit_scale() -> Scale {
    Scale::Unit
}
fn eval_output_action() -> String {
    "eval.output".into()
}
fn all_policy_checks() -> Vec<PolicyCheckKind> {
    vec![
        PolicyCheckKind::NoPii,
        PolicyCheckKind::NoInjection,
        PolicyCheckKind::Allowed,
    ]
}

/// What a scorer checks, as written in a suite (`type: …` plus the kind's fields).
///
/// Fields shared by several kinds: `expected` names the item's expected field to compare with;
/// `pointer` is a JSON Pointer (RFC 6901): the answer is parsed as JSON (a surrounding Markdown
/// code fence is allowed) and the value there is compared instead of the whole text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ScorerSpec {
    Exact(ExactSpec),
    #[serde(alias = "normalised")]
    Normalized(NormalizedSpec),
    Regex(RegexSpec),
    ContainsAny(ContainsSpec),
    ContainsAll(ContainsSpec),
    JsonSchema(JsonSchemaSpec),
    Numeric(NumericSpec),
    ToolCalls(ToolCallsSpec),
    Latency(LatencySpec),
    Cost(CostSpec),
    PolicyCheck(PolicyCheckSpec),
    Judge(JudgeSpec),
    Pairwise(PairwiseSpec),
}

/// The answer (or the value at `pointer`) equals the expected field, both trimmed unless
/// `trim: false`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExactSpec {
    #[serde(default = "answer")]
    pub expected: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    #[serde(default = "yes")]
    pub trim: bool,
}

/// Equal (or containing, `mode: contains`) after normalising both sides (see [`normalize`]):
/// Unicode NFKC, lower case, punctuation removed, whitespace collapsed; each step can be turned
/// off (`unicode`, `case`, `punctuation`, `whitespace`: false).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizedSpec {
    #[serde(default = "answer")]
    pub expected: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    #[serde(default)]
    pub mode: MatchMode,
    #[serde(default = "yes")]
    pub unicode: bool,
    #[serde(default = "yes")]
    pub case: bool,
    #[serde(default = "yes")]
    pub punctuation: bool,
    #[serde(default = "yes")]
    pub whitespace: bool,
}

impl NormalizedSpec {
    pub fn normalization(&self) -> Normalization {
        Normalization {
            unicode: self.unicode,
            case: self.case,
            punctuation: self.punctuation,
            whitespace: self.whitespace,
        }
    }
}

/// Which normalisation steps [`normalize`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Normalization {
    /// Unicode NFKC (full-width letters, ligatures, compatibility characters).
    pub unicode: bool,
    pub case: bool,
    pub punctuation: bool,
    pub whitespace: bool,
}

impl Default for Normalization {
    fn default() -> Self {
        Normalization {
            unicode: true,
            case: true,
            punctuation: true,
            whitespace: true,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    #[default]
    Equals,
    Contains,
}

/// The answer matches (or, with `must_match: false`, does not match) a regex (`regex` crate
/// syntax; `(?i)` for case-insensitive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegexSpec {
    pub pattern: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    #[serde(default = "yes")]
    pub must_match: bool,
}

/// The answer contains any / all of the given strings (`values`), or of the strings in an
/// expected field (`expected`: a list, or a string holding a JSON list). Case-insensitive unless
/// `case_sensitive: true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    #[serde(default)]
    pub case_sensitive: bool,
}

/// The answer is JSON valid against a JSON Schema given inline (`schema`) or in a file
/// (`schema_path`, JSON or YAML, relative to the suite file). Remote and file `$ref`s are not
/// resolved. After loading, `schema` holds the schema whichever way it was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSchemaSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_path: Option<String>,
}

/// The number in the answer (at `pointer`, or the whole text, or else the first number written
/// in it) is within `abs_tol` or within `rel_tol` × |expected| of the expected field. Neither
/// given: exactly equal. `value` is 1 or 0 (the error is in the detail): an answer without a
/// number has no error to measure, and a score's value must always be a finite number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericSpec {
    #[serde(default = "answer")]
    pub expected: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abs_tol: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel_tol: Option<f64>,
}

/// The answer's tool calls match the expected field's list of `{name, arguments?}` (a list, or a
/// string holding a JSON list). `arguments`: `exact` (equal JSON), `subset` (every expected key,
/// recursively, with an equal value) or `ignore`; a call written without `arguments` matches on
/// its name. `order`: `any` (a best one-to-one matching) or `exact` (in sequence).
/// `allow_extra`: calls beyond the expected ones do not fail the item. `value` is the share of
/// expected calls matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCallsSpec {
    #[serde(default = "tool_calls_field")]
    pub expected: String,
    #[serde(default)]
    pub arguments: ArgumentMatch,
    #[serde(default)]
    pub order: CallOrder,
    #[serde(default)]
    pub allow_extra: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgumentMatch {
    #[default]
    Exact,
    Subset,
    Ignore,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOrder {
    #[default]
    Any,
    Exact,
}

/// The answer took at most `max_ms`; `value` is the latency in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    pub max_ms: f64,
}

/// The answer cost at most `max_usd`; `value` is its cost in US dollars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostSpec {
    pub max_usd: f64,
}

/// The answer (text and tool-call arguments) passes the policy engine: `no_pii` (no personal
/// data or secret found), `no_injection` (the injection screen did not flag it), `allowed` (the
/// decision for `action` is `allow`). All three by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyCheckSpec {
    #[serde(default = "all_policy_checks")]
    pub checks: Vec<PolicyCheckKind>,
    /// The action the check is made for (what policies match on).
    #[serde(default = "eval_output_action")]
    pub action: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyCheckKind {
    NoPii,
    NoInjection,
    Allowed,
}

/// An LLM grades the answer against a rubric on `scale` (`unit`: 0–1, the default, or
/// `likert5`: 1–5), mapped to 0..1; the item passes at `pass_threshold` (on 0..1) or above.
/// `reference` names an expected field shown to the judge as the reference answer. `model`: the
/// judge (endpoint, temperature, seed, retries), else the deployment's default judge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeSpec {
    pub rubric: String,
    #[serde(default = "unit_scale")]
    pub scale: Scale,
    #[serde(default = "half")]
    pub pass_threshold: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<JudgeConfig>,
}

/// An LLM compares the answer with another answer to the same item, asked twice with the two
/// answers' positions swapped (position bias cancels out: a preference that flips with the
/// order counts as a tie). The other answer is an expected field (`reference`) or a baseline's
/// recorded outputs (`baseline`, a recorded-target JSONL file relative to the suite file, with
/// an output for every item). `value`: 1 preferred in both orders, 0.75 preferred in one and a
/// tie in the other, 0.5 a tie or inconsistent, 0.25, 0 the other preferred in both; it passes
/// at 0.5 or above (not worse than the other answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairwiseSpec {
    pub rubric: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<JudgeConfig>,
}

impl ScorerSpec {
    /// The `type` as written in a suite.
    pub fn kind(&self) -> &'static str {
        match self {
            ScorerSpec::Exact(_) => "exact",
            ScorerSpec::Normalized(_) => "normalized",
            ScorerSpec::Regex(_) => "regex",
            ScorerSpec::ContainsAny(_) => "contains_any",
            ScorerSpec::ContainsAll(_) => "contains_all",
            ScorerSpec::JsonSchema(_) => "json_schema",
            ScorerSpec::Numeric(_) => "numeric",
            ScorerSpec::ToolCalls(_) => "tool_calls",
            ScorerSpec::Latency(_) => "latency",
            ScorerSpec::Cost(_) => "cost",
            ScorerSpec::PolicyCheck(_) => "policy_check",
            ScorerSpec::Judge(_) => "judge",
            ScorerSpec::Pairwise(_) => "pairwise",
        }
    }

    /// The spec of kind `kind` from the YAML of its other fields (without `type` and `name`);
    /// `Ok(None)` for an unknown kind. Each kind's fields are parsed on their own so errors
    /// name the field inside the scorer (`pattern: invalid type …`).
    pub fn from_yaml_fields(
        kind: &str,
        fields: &str,
    ) -> Result<Option<ScorerSpec>, serde_yaml::Error> {
        fn parse<T: serde::de::DeserializeOwned>(fields: &str) -> Result<T, serde_yaml::Error> {
            serde_yaml::from_str(fields)
        }
        Ok(Some(match kind {
            "exact" => ScorerSpec::Exact(parse(fields)?),
            "normalized" | "normalised" => ScorerSpec::Normalized(parse(fields)?),
            "regex" => ScorerSpec::Regex(parse(fields)?),
            "contains_any" => ScorerSpec::ContainsAny(parse(fields)?),
            "contains_all" => ScorerSpec::ContainsAll(parse(fields)?),
            "json_schema" => ScorerSpec::JsonSchema(parse(fields)?),
            "numeric" => ScorerSpec::Numeric(parse(fields)?),
            "tool_calls" => ScorerSpec::ToolCalls(parse(fields)?),
            "latency" => ScorerSpec::Latency(parse(fields)?),
            "cost" => ScorerSpec::Cost(parse(fields)?),
            "policy_check" => ScorerSpec::PolicyCheck(parse(fields)?),
            "judge" => ScorerSpec::Judge(parse(fields)?),
            "pairwise" => ScorerSpec::Pairwise(parse(fields)?),
            _ => return Ok(None),
        }))
    }

    /// Every `type` a suite may use.
    pub const KINDS: &'static [&'static str] = &[
        "exact",
        "normalized",
        "regex",
        "contains_any",
        "contains_all",
        "json_schema",
        "numeric",
        "tool_calls",
        "latency",
        "cost",
        "policy_check",
        "judge",
        "pairwise",
    ];

    /// Whether a larger `value` is better. False for `latency` and `cost`; comparisons read it
    /// to decide which direction is a regression.
    pub fn higher_is_better(&self) -> bool {
        !matches!(self, ScorerSpec::Latency(_) | ScorerSpec::Cost(_))
    }

    /// What scoring needs beyond the item and the output.
    pub fn needs(&self) -> Needs {
        match self {
            ScorerSpec::PolicyCheck(_) => Needs::OutputCheck,
            ScorerSpec::Judge(_) | ScorerSpec::Pairwise(_) => Needs::Judge,
            _ => Needs::Nothing,
        }
    }

    /// The expected fields every item must have for this scorer (checked when a suite loads).
    pub fn expected_fields(&self) -> Vec<&str> {
        match self {
            ScorerSpec::Exact(s) => vec![&s.expected],
            ScorerSpec::Normalized(s) => vec![&s.expected],
            ScorerSpec::Numeric(s) => vec![&s.expected],
            ScorerSpec::ToolCalls(s) => vec![&s.expected],
            ScorerSpec::ContainsAny(s) | ScorerSpec::ContainsAll(s) => {
                s.expected.iter().map(String::as_str).collect()
            }
            ScorerSpec::Judge(s) => s.reference.iter().map(String::as_str).collect(),
            ScorerSpec::Pairwise(s) => s.reference.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// What a scorer needs beyond the item and the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// An [`OutputCheck`] (the policy engine).
    OutputCheck,
    /// A [`Judge`] (an LLM).
    Judge,
}

// ---------------------------------------------------------------------------------------------
// The I/O traits
// ---------------------------------------------------------------------------------------------

/// Why a check through [`OutputCheck`] or [`Judge`] gave no verdict.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CheckError {
    /// Worth retrying: a timeout, a 429 or 5xx, a dropped connection.
    #[error("{0}")]
    Transient(String),
    /// Not worth retrying: a refused request, an unparseable answer from the judge.
    #[error("{0}")]
    Permanent(String),
}

/// What the `policy_check` scorer asks the policy engine about an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputCheckRequest<'a> {
    /// The agent whose answer it is (the suite's `agent_id`): the policies of its path apply.
    pub agent_id: &'a str,
    pub action: &'a str,
    pub item_id: &'a str,
    /// The answer's text, then each tool call as `name arguments` on its own line.
    pub content: &'a str,
}

/// The policy engine's answer about an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputCheckVerdict {
    pub decision: Verdict,
    /// Personal data and secrets found.
    pub findings: Vec<Finding>,
    /// Whether the prompt-injection screen flagged the content.
    pub injection_flagged: bool,
    /// The deciding policies and why (for the score's detail).
    #[serde(default)]
    pub reasons: Vec<String>,
}

/// The policy engine, as the `policy_check` scorer sees it. The service implements it with
/// the bundle in force; tests with a stub.
pub trait OutputCheck: Send + Sync {
    fn check<'a>(
        &'a self,
        request: OutputCheckRequest<'a>,
    ) -> BoxFuture<'a, Result<OutputCheckVerdict, CheckError>>;
}

/// Tokens and dollars a scorer's calls spent (judge calls; zero for every other scorer), for
/// the run's cost accounting and budgets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

impl std::ops::AddAssign for Spend {
    fn add_assign(&mut self, other: Spend) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost_usd += other.cost_usd;
    }
}

/// What the `judge` scorer asks the judge model.
#[derive(Debug, Clone)]
pub struct GradeRequest<'a> {
    pub spec: &'a JudgeSpec,
    pub item: &'a Item,
    /// The prompt the target was sent, when the suite has one.
    pub prompt: Option<&'a RenderedPrompt>,
    pub output: &'a Output,
    /// The reference answer (the expected field named by `reference`).
    pub reference: Option<String>,
}

/// A judge's grade: `score` mapped to 0..=1 from the spec's scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grade {
    pub score: f64,
    pub reasoning: String,
    #[serde(default)]
    pub spend: Spend,
}

/// What the `pairwise` scorer asks the judge model: which of two answers to the same item is
/// better, asked in both orders (the implementation shows them once each way).
#[derive(Debug, Clone)]
pub struct PairwiseRequest<'a> {
    pub spec: &'a PairwiseSpec,
    pub item: &'a Item,
    pub prompt: Option<&'a RenderedPrompt>,
    /// The answer being scored.
    pub candidate: &'a Output,
    /// The answer it is compared with (the reference or the baseline's).
    pub other: &'a Output,
}

/// Which answer a judge preferred in one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preference {
    Candidate,
    Other,
    Tie,
}

/// A judge's preferences in both orders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairwiseJudgement {
    /// With the candidate shown first.
    pub candidate_first: Preference,
    /// With the other answer shown first.
    pub other_first: Preference,
    pub reasoning: String,
    #[serde(default)]
    pub spend: Spend,
}

/// An LLM judge. [`crate::judging`] implements it over [`crate::judge_client::JudgeClient`]
/// (structured output, retries); tests implement it with stubs. The value of a pairwise
/// comparison is computed here from the two orders' preferences.
pub trait Judge: Send + Sync {
    fn grade<'a>(&'a self, request: GradeRequest<'a>) -> BoxFuture<'a, Result<Grade, CheckError>>;
    fn compare<'a>(
        &'a self,
        request: PairwiseRequest<'a>,
    ) -> BoxFuture<'a, Result<PairwiseJudgement, CheckError>>;
}

/// What scoring one item may use beyond the item and the output.
#[derive(Clone, Copy, Default)]
pub struct ScoreContext<'a> {
    /// The suite's agent (whose policies `policy_check` applies).
    pub agent_id: &'a str,
    pub prompt: Option<&'a RenderedPrompt>,
    pub output_check: Option<&'a dyn OutputCheck>,
    pub judge: Option<&'a dyn Judge>,
}

/// A scorer that could not give a score (its check failed or is not available). The item is
/// neither passed nor failed on this scorer: runs record it as an error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("scorer `{scorer}`: {error}")]
pub struct ScoreError {
    pub scorer: String,
    pub error: CheckError,
}

// ---------------------------------------------------------------------------------------------
// Loaded scorers
// ---------------------------------------------------------------------------------------------

/// A scorer ready to run: its spec and whatever was compiled from it at load.
#[derive(Debug, Clone)]
pub struct Scorer {
    name: String,
    spec: ScorerSpec,
    compiled: Compiled,
}

#[derive(Clone)]
enum Compiled {
    Nothing,
    Regex(regex::Regex),
    Schema(Arc<jsonschema::Validator>),
    Baseline(Arc<RecordedTarget>),
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Compiled::Nothing => write!(f, "Nothing"),
            Compiled::Regex(r) => write!(f, "Regex({})", r.as_str()),
            Compiled::Schema(_) => write!(f, "Schema"),
            Compiled::Baseline(b) => write!(f, "Baseline({} outputs)", b.len()),
        }
    }
}

/// A problem with a scorer's configuration: the field (relative to the scorer) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ScorerConfigError {
    pub field: String,
    pub message: String,
}

fn config_error(field: &str, message: impl Into<String>) -> ScorerConfigError {
    ScorerConfigError {
        field: field.into(),
        message: message.into(),
    }
}

impl Serialize for Scorer {
    /// As written in a suite: `{type, name, …fields}`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut value = serde_json::to_value(&self.spec).map_err(serde::ser::Error::custom)?;
        if let Value::Object(map) = &mut value {
            map.insert("name".into(), Value::String(self.name.clone()));
        }
        value.serialize(serializer)
    }
}

impl Scorer {
    /// Compiles a scorer. A `json_schema` spec must carry its schema inline by now (a suite
    /// reads `schema_path` first); a `pairwise` spec with `baseline` needs the baseline's
    /// outputs, loaded by the suite.
    pub fn new(
        name: impl Into<String>,
        spec: ScorerSpec,
        baseline: Option<Arc<RecordedTarget>>,
    ) -> Result<Scorer, ScorerConfigError> {
        let compiled = compile(&spec, baseline)?;
        Ok(Scorer {
            name: name.into(),
            spec,
            compiled,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn spec(&self) -> &ScorerSpec {
        &self.spec
    }

    pub fn needs(&self) -> Needs {
        self.spec.needs()
    }

    /// The score of a scorer that needs nothing beyond the item and the output; `None` for
    /// `policy_check`, `judge` and `pairwise` (use [`Scorer::score`]).
    pub fn score_pure(&self, item: &Item, output: &Output) -> Option<Score> {
        let (passed, value, detail) = match &self.spec {
            ScorerSpec::Exact(s) => exact(s, item, output),
            ScorerSpec::Normalized(s) => normalized(s, item, output),
            ScorerSpec::Regex(s) => match &self.compiled {
                Compiled::Regex(re) => regex_match(s, re, output),
                _ => (false, 0.0, "internal: regex not compiled".into()),
            },
            ScorerSpec::ContainsAny(s) => contains(s, false, item, output),
            ScorerSpec::ContainsAll(s) => contains(s, true, item, output),
            ScorerSpec::JsonSchema(_) => match &self.compiled {
                Compiled::Schema(v) => json_schema(v, output),
                _ => (false, 0.0, "internal: schema not compiled".into()),
            },
            ScorerSpec::Numeric(s) => numeric(s, item, output),
            ScorerSpec::ToolCalls(s) => tool_calls(s, item, output),
            ScorerSpec::Latency(s) => (
                output.latency_ms <= s.max_ms,
                output.latency_ms,
                format!("{:.0} ms (limit {} ms)", output.latency_ms, s.max_ms),
            ),
            ScorerSpec::Cost(s) => (
                output.cost_usd <= s.max_usd,
                output.cost_usd,
                format!("${:.6} (limit ${})", output.cost_usd, s.max_usd),
            ),
            ScorerSpec::PolicyCheck(_) | ScorerSpec::Judge(_) | ScorerSpec::Pairwise(_) => {
                return None;
            }
        };
        Some(self.make(passed, value, detail))
    }

    /// The score of any scorer, with what its calls spent; `policy_check`, `judge` and
    /// `pairwise` call the context's [`OutputCheck`] or [`Judge`].
    pub async fn score(
        &self,
        item: &Item,
        output: &Output,
        ctx: &ScoreContext<'_>,
    ) -> Result<Scored, ScoreError> {
        if let Some(score) = self.score_pure(item, output) {
            return Ok(Scored {
                score,
                spend: Spend::default(),
            });
        }
        let fail = |error: CheckError| ScoreError {
            scorer: self.name.clone(),
            error,
        };
        let missing = |what: &str| {
            fail(CheckError::Permanent(format!(
                "needs {what}, and none was given to the run"
            )))
        };
        match &self.spec {
            ScorerSpec::PolicyCheck(spec) => {
                let checker = ctx
                    .output_check
                    .ok_or_else(|| missing("the policy engine"))?;
                let content = policy_content(output);
                let verdict = checker
                    .check(OutputCheckRequest {
                        agent_id: ctx.agent_id,
                        action: &spec.action,
                        item_id: &item.id,
                        content: &content,
                    })
                    .await
                    .map_err(fail)?;
                let (passed, detail) = policy_outcome(spec, &verdict);
                Ok(Scored {
                    score: self.make(passed, f64::from(u8::from(passed)), detail),
                    spend: Spend::default(),
                })
            }
            ScorerSpec::Judge(spec) => {
                let judge = ctx.judge.ok_or_else(|| missing("a judge model"))?;
                let reference = spec
                    .reference
                    .as_deref()
                    .and_then(|f| item.expected_field(f))
                    .map(value_text);
                let grade = judge
                    .grade(GradeRequest {
                        spec,
                        item,
                        prompt: ctx.prompt,
                        output,
                        reference,
                    })
                    .await
                    .map_err(fail)?;
                if !(grade.score.is_finite() && (0.0..=1.0).contains(&grade.score)) {
                    return Err(fail(CheckError::Permanent(format!(
                        "the judge returned score {}, outside 0..1",
                        grade.score
                    ))));
                }
                let passed = grade.score >= spec.pass_threshold;
                Ok(Scored {
                    score: self.make(
                        passed,
                        grade.score,
                        format!(
                            "judge score {:.2} (pass at {}): {}",
                            grade.score,
                            spec.pass_threshold,
                            clip(&grade.reasoning, 300)
                        ),
                    ),
                    spend: grade.spend,
                })
            }
            ScorerSpec::Pairwise(spec) => {
                let judge = ctx.judge.ok_or_else(|| missing("a judge model"))?;
                let other = match (&spec.reference, &self.compiled) {
                    (Some(field), _) => item.expected_field(field).map(|v| Output {
                        text: value_text(v),
                        ..Output::default()
                    }),
                    (None, Compiled::Baseline(outputs)) => outputs.output(&item.id).cloned(),
                    _ => None,
                };
                let Some(other) = other else {
                    return Err(fail(CheckError::Permanent(format!(
                        "no answer to compare with for item `{}`",
                        item.id
                    ))));
                };
                let judgement = judge
                    .compare(PairwiseRequest {
                        spec,
                        item,
                        prompt: ctx.prompt,
                        candidate: output,
                        other: &other,
                    })
                    .await
                    .map_err(fail)?;
                let (value, detail) =
                    pairwise_outcome(judgement.candidate_first, judgement.other_first);
                Ok(Scored {
                    score: self.make(
                        value >= 0.5,
                        value,
                        format!("{detail}: {}", clip(&judgement.reasoning, 200)),
                    ),
                    spend: judgement.spend,
                })
            }
            _ => Err(fail(CheckError::Permanent("internal: unscored".into()))),
        }
    }

    fn make(&self, passed: bool, value: f64, detail: String) -> Score {
        Score {
            scorer: self.name.clone(),
            passed,
            value,
            detail,
        }
    }
}

/// A score and what producing it spent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub score: Score,
    pub spend: Spend,
}

/// Scores one item with every scorer, in order.
pub async fn score_all(
    scorers: &[Scorer],
    item: &Item,
    output: &Output,
    ctx: &ScoreContext<'_>,
) -> Vec<Result<Scored, ScoreError>> {
    let mut out = Vec::with_capacity(scorers.len());
    for s in scorers {
        out.push(s.score(item, output, ctx).await);
    }
    out
}

fn compile(
    spec: &ScorerSpec,
    baseline: Option<Arc<RecordedTarget>>,
) -> Result<Compiled, ScorerConfigError> {
    let check_pointer = |p: &Option<String>| match p {
        Some(p) if !(p.is_empty() || p.starts_with('/')) => Err(config_error(
            "pointer",
            format!("`{p}` is not a JSON Pointer; it starts with `/` (e.g. `/customer/email`)"),
        )),
        _ => Ok(()),
    };
    let check_field = |field: &str, value: &str| {
        if value.trim().is_empty() {
            Err(config_error(field, "names no field"))
        } else {
            Ok(())
        }
    };
    match spec {
        ScorerSpec::Exact(s) => {
            check_field("expected", &s.expected)?;
            check_pointer(&s.pointer)?;
        }
        ScorerSpec::Normalized(s) => {
            check_field("expected", &s.expected)?;
            check_pointer(&s.pointer)?;
        }
        ScorerSpec::Regex(s) => {
            check_pointer(&s.pointer)?;
            if s.pattern.len() > MAX_PATTERN_LEN {
                return Err(config_error(
                    "pattern",
                    format!("{} bytes long; at most {MAX_PATTERN_LEN}", s.pattern.len()),
                ));
            }
            let re = regex::RegexBuilder::new(&s.pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| config_error("pattern", format!("invalid regex: {e}")))?;
            return Ok(Compiled::Regex(re));
        }
        ScorerSpec::ContainsAny(s) | ScorerSpec::ContainsAll(s) => {
            check_pointer(&s.pointer)?;
            match (&s.values, &s.expected) {
                (Some(values), None) => {
                    if values.is_empty() {
                        return Err(config_error("values", "give at least one string"));
                    }
                    if let Some(i) = values.iter().position(String::is_empty) {
                        return Err(config_error(
                            &format!("values[{i}]"),
                            "an empty string is contained in every answer",
                        ));
                    }
                }
                (None, Some(field)) => check_field("expected", field)?,
                _ => {
                    return Err(config_error(
                        "values",
                        "give exactly one of `values` (a list of strings) and `expected` (an expected field)",
                    ));
                }
            }
        }
        ScorerSpec::JsonSchema(s) => {
            let Some(schema) = &s.schema else {
                return Err(config_error(
                    "schema",
                    "give the schema inline (`schema`) or as a file (`schema_path`)",
                ));
            };
            let validator = jsonschema::validator_for(schema).map_err(|e| {
                config_error(
                    if s.schema_path.is_some() {
                        "schema_path"
                    } else {
                        "schema"
                    },
                    format!("not a valid JSON Schema: {e}"),
                )
            })?;
            return Ok(Compiled::Schema(Arc::new(validator)));
        }
        ScorerSpec::Numeric(s) => {
            check_field("expected", &s.expected)?;
            check_pointer(&s.pointer)?;
            for (field, tol) in [("abs_tol", s.abs_tol), ("rel_tol", s.rel_tol)] {
                if let Some(t) = tol
                    && !(t.is_finite() && t >= 0.0)
                {
                    return Err(config_error(field, format!("{t} is not a number ≥ 0")));
                }
            }
        }
        ScorerSpec::ToolCalls(s) => check_field("expected", &s.expected)?,
        ScorerSpec::Latency(s) => {
            if !(s.max_ms.is_finite() && s.max_ms > 0.0) {
                return Err(config_error(
                    "max_ms",
                    format!("{} is not a number > 0", s.max_ms),
                ));
            }
        }
        ScorerSpec::Cost(s) => {
            if !(s.max_usd.is_finite() && s.max_usd >= 0.0) {
                return Err(config_error(
                    "max_usd",
                    format!("{} is not a number ≥ 0", s.max_usd),
                ));
            }
        }
        ScorerSpec::PolicyCheck(s) => {
            if s.checks.is_empty() {
                return Err(config_error(
                    "checks",
                    "give at least one of no_pii, no_injection, allowed",
                ));
            }
            if s.action.trim().is_empty() {
                return Err(config_error("action", "names no action"));
            }
        }
        ScorerSpec::Judge(s) => {
            if s.rubric.trim().is_empty() {
                return Err(config_error("rubric", "say what a good answer is"));
            }
            if !(0.0..=1.0).contains(&s.pass_threshold) {
                return Err(config_error(
                    "pass_threshold",
                    format!("{} is outside 0..1", s.pass_threshold),
                ));
            }
        }
        ScorerSpec::Pairwise(s) => {
            if s.rubric.trim().is_empty() {
                return Err(config_error("rubric", "say what makes one answer better"));
            }
            match (&s.reference, &s.baseline) {
                (Some(field), None) => check_field("reference", field)?,
                (None, Some(_)) => {
                    return match baseline {
                        Some(outputs) => Ok(Compiled::Baseline(outputs)),
                        None => Err(config_error(
                            "baseline",
                            "the baseline's outputs were not loaded",
                        )),
                    };
                }
                _ => {
                    return Err(config_error(
                        "reference",
                        "give exactly one of `reference` (an expected field) and `baseline` (recorded outputs)",
                    ));
                }
            }
        }
    }
    Ok(Compiled::Nothing)
}

// ---------------------------------------------------------------------------------------------
// The pure scorers
// ---------------------------------------------------------------------------------------------

type Outcome = (bool, f64, String);

fn pass(passed: bool, detail: String) -> Outcome {
    (passed, f64::from(u8::from(passed)), detail)
}

/// A value as text: strings as they are, anything else as compact JSON (so `42` from a JSON
/// answer equals the CSV cell `"42"`).
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// At most `max` characters of `s`, with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The answer parsed as JSON; a Markdown code fence around it (```` ```json … ``` ````) is
/// allowed because chat models add one unasked.
pub fn answer_json(text: &str) -> Result<Value, String> {
    let t = text.trim();
    let body = match t.strip_prefix("```") {
        Some(rest) => {
            let rest = rest.split_once('\n').map(|(_, r)| r).unwrap_or("");
            rest.trim_end().strip_suffix("```").unwrap_or(rest)
        }
        None => t,
    };
    serde_json::from_str(body).map_err(|e| format!("the answer is not JSON ({e})"))
}

/// The part of the answer a scorer looks at: the whole text, or the value at `pointer`.
fn selected(output: &Output, pointer: &Option<String>) -> Result<Value, String> {
    match pointer {
        None => Ok(Value::String(output.text.clone())),
        Some(p) => {
            let json = answer_json(&output.text)?;
            json.pointer(p)
                .cloned()
                .ok_or_else(|| format!("the answer has no value at `{p}`"))
        }
    }
}

fn expected_value<'a>(item: &'a Item, field: &str) -> Result<&'a Value, String> {
    item.expected_field(field)
        .ok_or_else(|| format!("item `{}` has no expected field `{field}`", item.id))
}

fn exact(s: &ExactSpec, item: &Item, output: &Output) -> Outcome {
    let (actual, expected) = match (
        selected(output, &s.pointer),
        expected_value(item, &s.expected),
    ) {
        (Ok(a), Ok(e)) => (value_text(&a), value_text(e)),
        (Err(why), _) | (_, Err(why)) => return pass(false, why),
    };
    let (a, e) = if s.trim {
        (actual.trim(), expected.trim())
    } else {
        (actual.as_str(), expected.as_str())
    };
    if a == e {
        pass(true, "exact match".into())
    } else {
        pass(
            false,
            format!("expected `{}`, got `{}`", clip(e, 80), clip(a, 80)),
        )
    }
}

/// `text` normalised: NFKC, lower case, punctuation removed, whitespace runs as one space.
///
/// Punctuation is ASCII punctuation (Python's `string.punctuation`, as in SQuAD's answer
/// normaliser: symbols such as `$` and `%` go too), the General Punctuation block
/// (U+2010–U+2027: dashes, curly quotes, bullets, ellipsis) and « » ¡ ¿ 、 。; it is removed, not
/// replaced by a space, so `e-mail` equals `email`.
pub fn normalize(text: &str, n: &Normalization) -> String {
    let mut s: String = if n.unicode {
        text.nfkc().collect()
    } else {
        text.to_string()
    };
    if n.case {
        s = s.to_lowercase();
    }
    if n.punctuation {
        s.retain(|c| !is_punctuation(c));
    }
    if n.whitespace {
        s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    s
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || ('\u{2010}'..='\u{2027}').contains(&c)
        || matches!(c, '«' | '»' | '¡' | '¿' | '、' | '。')
}

fn normalized(s: &NormalizedSpec, item: &Item, output: &Output) -> Outcome {
    let (actual, expected) = match (
        selected(output, &s.pointer),
        expected_value(item, &s.expected),
    ) {
        (Ok(a), Ok(e)) => (value_text(&a), value_text(e)),
        (Err(why), _) | (_, Err(why)) => return pass(false, why),
    };
    let n = s.normalization();
    let a = normalize(&actual, &n);
    let e = normalize(&expected, &n);
    let ok = match s.mode {
        MatchMode::Equals => a == e,
        // An expected text that normalises to nothing would be "contained" in anything.
        MatchMode::Contains => !e.is_empty() && a.contains(&e),
    };
    let verb = match s.mode {
        MatchMode::Equals => "equals",
        MatchMode::Contains => "contains",
    };
    if ok {
        pass(true, format!("normalised answer {verb} `{}`", clip(&e, 80)))
    } else {
        pass(
            false,
            format!(
                "normalised answer `{}` does not {} `{}`",
                clip(&a, 80),
                verb.trim_end_matches('s'),
                clip(&e, 80)
            ),
        )
    }
}

fn regex_match(s: &RegexSpec, re: &regex::Regex, output: &Output) -> Outcome {
    let text = match selected(output, &s.pointer) {
        Ok(v) => value_text(&v),
        Err(why) => return pass(false, why),
    };
    let found = re.find(&text);
    match (found, s.must_match) {
        (Some(m), true) => pass(true, format!("matched `{}`", clip(m.as_str(), 80))),
        (None, true) => pass(false, format!("no match for /{}/", clip(re.as_str(), 80))),
        (Some(m), false) => pass(
            false,
            format!("must not match, but matched `{}`", clip(m.as_str(), 80)),
        ),
        (None, false) => pass(
            true,
            format!("no match for /{}/, as required", clip(re.as_str(), 80)),
        ),
    }
}

/// A list of strings from an expected field: a list, or a string holding a JSON list.
fn string_list(v: &Value) -> Result<Vec<String>, String> {
    let parsed;
    let list = match v {
        Value::Array(a) => a,
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).map_err(|_| {
                "expected a list of strings (or a JSON list in a string)".to_string()
            })?;
            match &parsed {
                Value::Array(a) => a,
                _ => return Err("expected a list of strings".into()),
            }
        }
        _ => return Err("expected a list of strings".into()),
    };
    Ok(list.iter().map(value_text).collect())
}

fn contains(s: &ContainsSpec, all: bool, item: &Item, output: &Output) -> Outcome {
    let text = match selected(output, &s.pointer) {
        Ok(v) => value_text(&v),
        Err(why) => return pass(false, why),
    };
    let wanted = match (&s.values, &s.expected) {
        (Some(v), _) => v.clone(),
        (None, Some(field)) => match expected_value(item, field).and_then(string_list) {
            Ok(v) => v,
            Err(why) => return pass(false, format!("expected field `{field}`: {why}")),
        },
        (None, None) => Vec::new(),
    };
    let fold = |t: &str| {
        if s.case_sensitive {
            t.to_string()
        } else {
            t.to_lowercase()
        }
    };
    let haystack = fold(&text);
    let (found, missing): (Vec<&String>, Vec<&String>) = wanted
        .iter()
        .partition(|w| !w.is_empty() && haystack.contains(&fold(w)));
    let quoted = |v: &[&String]| {
        v.iter()
            .map(|w| format!("`{}`", clip(w, 40)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if all {
        let value = if wanted.is_empty() {
            0.0
        } else {
            found.len() as f64 / wanted.len() as f64
        };
        let passed = !wanted.is_empty() && missing.is_empty();
        let detail = if passed {
            format!("contains all {} strings", wanted.len())
        } else {
            format!("missing {}", quoted(&missing))
        };
        (passed, value, detail)
    } else if found.is_empty() {
        pass(false, format!("contains none of {}", quoted(&missing)))
    } else {
        pass(true, format!("contains {}", quoted(&found)))
    }
}

fn json_schema(validator: &jsonschema::Validator, output: &Output) -> Outcome {
    let json = match answer_json(&output.text) {
        Ok(j) => j,
        Err(why) => return pass(false, why),
    };
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .take(3)
        .map(|e| {
            let at = e.instance_path().as_str().to_string();
            format!("{}: {e}", if at.is_empty() { "/".to_string() } else { at })
        })
        .collect();
    if errors.is_empty() {
        pass(true, "valid against the schema".into())
    } else {
        pass(false, clip(&errors.join("; "), 400))
    }
}

/// A number from JSON: a number, or a string holding one.
fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_number(s.trim()),
        _ => None,
    }
}

fn parse_number(s: &str) -> Option<f64> {
    s.replace(',', "")
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
}

/// The first number written in a text: an optional sign, digits (with `,` thousands groups),
/// an optional fraction and exponent.
fn first_number(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let starts =
            b[i].is_ascii_digit() || (b[i] == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit));
        if !starts {
            i += 1;
            continue;
        }
        let start = if i > 0 && (b[i - 1] == b'-' || b[i - 1] == b'+') {
            i - 1
        } else {
            i
        };
        let mut j = i;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        // Thousands groups: `,ddd` repeated.
        while j + 3 < b.len()
            && b[j] == b','
            && b[j + 1..j + 4].iter().all(u8::is_ascii_digit)
            && b.get(j + 4).is_none_or(|c| !c.is_ascii_digit())
        {
            j += 4;
        }
        if j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
            j += 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
        }
        if j < b.len() && (b[j] == b'e' || b[j] == b'E') {
            let mut k = j + 1;
            if k < b.len() && (b[k] == b'-' || b[k] == b'+') {
                k += 1;
            }
            if k < b.len() && b[k].is_ascii_digit() {
                while k < b.len() && b[k].is_ascii_digit() {
                    k += 1;
                }
                j = k;
            }
        }
        return parse_number(&text[start..j]);
    }
    None
}

fn numeric(s: &NumericSpec, item: &Item, output: &Output) -> Outcome {
    let expected = match expected_value(item, &s.expected) {
        Ok(v) => match number_of(v) {
            Some(x) => x,
            None => {
                return pass(
                    false,
                    format!("expected field `{}` is not a number", s.expected),
                );
            }
        },
        Err(why) => return pass(false, why),
    };
    let actual = match &s.pointer {
        Some(_) => match selected(output, &s.pointer) {
            Ok(v) => number_of(&v),
            Err(why) => return pass(false, why),
        },
        None => parse_number(output.text.trim()).or_else(|| first_number(&output.text)),
    };
    let Some(actual) = actual else {
        return pass(false, "no number in the answer".into());
    };
    let error = (actual - expected).abs();
    let passed = if s.abs_tol.is_none() && s.rel_tol.is_none() {
        error == 0.0
    } else {
        s.abs_tol.is_some_and(|t| error <= t)
            || s.rel_tol.is_some_and(|t| error <= t * expected.abs())
    };
    pass(
        passed,
        format!("got {actual}, expected {expected} (error {error})"),
    )
}

/// An expected tool call: a name, and arguments unless any arguments do.
#[derive(Debug, Clone, PartialEq)]
struct ExpectedCall {
    name: String,
    arguments: Option<Value>,
}

/// The expected tool calls of an item: a list of `{name, arguments?}`, or a string holding one.
pub(crate) fn expected_calls(v: &Value) -> Result<Vec<(String, Option<Value>)>, String> {
    let parsed;
    let list = match v {
        Value::Array(a) => a,
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s)
                .map_err(|e| format!("not a JSON list of tool calls ({e})"))?;
            parsed.as_array().ok_or("expected a list of tool calls")?
        }
        _ => return Err("expected a list of `{name, arguments}`".into()),
    };
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("call {i} has no `name`"))?;
            Ok((name.to_string(), c.get("arguments").map(parse_arguments)))
        })
        .collect()
}

/// Arguments as JSON: OpenAI sends them as a JSON string; a string that does not parse stays one.
fn parse_arguments(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        other => other.clone(),
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// `expected` ⊆ `actual`: every key of an expected object present with a matching value,
/// recursively; lists and scalars equal.
fn json_subset(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|w| json_subset(v, w))),
        _ => json_equal(expected, actual),
    }
}

fn call_matches(mode: ArgumentMatch, expected: &ExpectedCall, actual: &ToolCall) -> bool {
    if expected.name != actual.name {
        return false;
    }
    let Some(want) = &expected.arguments else {
        return true;
    };
    let got = parse_arguments(&actual.arguments);
    match mode {
        ArgumentMatch::Exact => json_equal(want, &got),
        ArgumentMatch::Subset => json_subset(want, &got),
        ArgumentMatch::Ignore => true,
    }
}

/// The size of a maximum one-to-one matching (Kuhn's augmenting paths; lists are short).
fn max_matching(adjacent: &[Vec<usize>], right: usize) -> usize {
    fn augment(
        u: usize,
        adj: &[Vec<usize>],
        seen: &mut [bool],
        owner: &mut [Option<usize>],
    ) -> bool {
        for &v in &adj[u] {
            if seen[v] {
                continue;
            }
            seen[v] = true;
            if owner[v].is_none_or(|w| augment(w, adj, seen, owner)) {
                owner[v] = Some(u);
                return true;
            }
        }
        false
    }
    let mut owner = vec![None; right];
    (0..adjacent.len())
        .filter(|&u| augment(u, adjacent, &mut vec![false; right], &mut owner))
        .count()
}

fn tool_calls(s: &ToolCallsSpec, item: &Item, output: &Output) -> Outcome {
    let expected = match expected_value(item, &s.expected).and_then(expected_calls) {
        Ok(calls) => calls
            .into_iter()
            .map(|(name, arguments)| ExpectedCall { name, arguments })
            .collect::<Vec<_>>(),
        Err(why) => return pass(false, format!("expected field `{}`: {why}", s.expected)),
    };
    let actual = &output.tool_calls;
    let m = |e: &ExpectedCall, a: &ToolCall| call_matches(s.arguments, e, a);
    let matched = match s.order {
        CallOrder::Any => {
            let adjacent: Vec<Vec<usize>> = expected
                .iter()
                .map(|e| (0..actual.len()).filter(|&j| m(e, &actual[j])).collect())
                .collect();
            max_matching(&adjacent, actual.len())
        }
        CallOrder::Exact if s.allow_extra => {
            // Expected calls as a subsequence of the actual ones; taking the earliest match is
            // optimal for subsequences.
            let mut next = 0;
            for a in actual {
                if next < expected.len() && m(&expected[next], a) {
                    next += 1;
                }
            }
            next
        }
        CallOrder::Exact => expected
            .iter()
            .zip(actual)
            .take_while(|(e, a)| m(e, a))
            .count(),
    };
    let extra = actual.len().saturating_sub(matched);
    let passed = matched == expected.len() && (s.allow_extra || actual.len() == expected.len());
    let value = if expected.is_empty() {
        f64::from(u8::from(passed))
    } else {
        matched as f64 / expected.len() as f64
    };
    let names = |calls: &mut dyn Iterator<Item = &str>| calls.collect::<Vec<_>>().join(", ");
    let detail = if passed {
        format!("{matched} of {} expected tool calls", expected.len())
    } else {
        format!(
            "matched {matched} of {} expected tool calls [{}]; the answer made {} [{}]{}",
            expected.len(),
            names(&mut expected.iter().map(|e| e.name.as_str())),
            actual.len(),
            names(&mut actual.iter().map(|a| a.name.as_str())),
            if extra > 0 && !s.allow_extra {
                format!(", {extra} not expected")
            } else {
                String::new()
            }
        )
    };
    (passed, value, detail)
}

/// What the policy engine is asked about: the text, then each tool call on its own line.
fn policy_content(output: &Output) -> String {
    let mut content = output.text.clone();
    for call in &output.tool_calls {
        content.push('\n');
        content.push_str(&call.name);
        content.push(' ');
        content.push_str(&value_text(&call.arguments));
    }
    content
}

fn policy_outcome(spec: &PolicyCheckSpec, v: &OutputCheckVerdict) -> (bool, String) {
    let mut failed = Vec::new();
    for check in &spec.checks {
        match check {
            PolicyCheckKind::NoPii if !v.findings.is_empty() => {
                let mut kinds: Vec<&str> = v.findings.iter().map(|f| f.entity.as_str()).collect();
                kinds.sort_unstable();
                kinds.dedup();
                failed.push(format!(
                    "personal data or secrets found ({})",
                    kinds.join(", ")
                ));
            }
            PolicyCheckKind::NoInjection if v.injection_flagged => {
                failed.push("flagged as prompt injection".to_string());
            }
            PolicyCheckKind::Allowed if v.decision != Verdict::Allow => {
                let why = if v.reasons.is_empty() {
                    String::new()
                } else {
                    format!(": {}", v.reasons.join("; "))
                };
                failed.push(format!("decision `{}`{why}", v.decision.as_str()));
            }
            _ => {}
        }
    }
    if failed.is_empty() {
        let names: Vec<&str> = spec
            .checks
            .iter()
            .map(|c| match c {
                PolicyCheckKind::NoPii => "no_pii",
                PolicyCheckKind::NoInjection => "no_injection",
                PolicyCheckKind::Allowed => "allowed",
            })
            .collect();
        (true, format!("passed {}", names.join(", ")))
    } else {
        (false, clip(&failed.join("; "), 400))
    }
}

/// The candidate's result over the two orders: (value, description).
fn pairwise_outcome(candidate_first: Preference, other_first: Preference) -> (f64, &'static str) {
    let points = |p: Preference| match p {
        Preference::Candidate => 1.0,
        Preference::Tie => 0.5,
        Preference::Other => 0.0,
    };
    use Preference::{Candidate, Other, Tie};
    let detail = match (candidate_first, other_first) {
        (Candidate, Candidate) => "preferred in both orders",
        (Other, Other) => "the other answer preferred in both orders",
        (Tie, Tie) => "a tie in both orders",
        (Candidate, Other) | (Other, Candidate) => {
            "inconsistent across orders (position bias): a tie"
        }
        (Candidate, Tie) | (Tie, Candidate) => "preferred in one order, a tie in the other",
        (Other, Tie) | (Tie, Other) => {
            "the other answer preferred in one order, a tie in the other"
        }
    };
    (
        (points(candidate_first) + points(other_first)) / 2.0,
        detail,
    )
}

#[cfg(test)]
#[path = "scorers_tests.rs"]
mod tests;
