//! Evals: suites in YAML (a dataset, a target, a prompt template, scorers), runs against a target,
//! per-item scores, and paired comparisons of two runs on the same items.
//!
//! This crate owns the eval vocabulary and the pure logic (loading and validating suites, scoring
//! an output, the statistics of a comparison) and the runner that calls targets over HTTP. It must
//! not touch the store, the ledger or trust: `meshos-service` records runs, appends them to the
//! ledger and turns their results into `eval` events.
//!
//! The pure core:
//! - [`suite`]: the suite format, its validation (errors name file, line, column and field) and
//!   its digest; [`dataset`]: items inline, in JSONL or in CSV, and the dataset digest;
//!   [`prompt`]: the `{{field}}` template renderer.
//! - [`scorers`]: every scorer kind's configuration ([`ScorerSpec`]) and scoring; the two that
//!   need the outside world do it through the [`OutputCheck`] and [`Judge`] traits.
//! - [`stats`]: paired comparison of two runs — McNemar's exact test, Wilcoxon signed-rank
//!   (SciPy's defaults), a seeded paired bootstrap, intervals, effect sizes, the minimum
//!   detectable effect — and the regression decision.
//! - [`report`]: a run's summary per scorer, as data and as text.

pub mod dataset;
pub mod error;
pub mod judge_client;
pub mod judging;
pub mod output;
pub mod prompt;
pub mod report;
pub mod rng;
pub mod run;
pub mod schedule;
pub mod scorers;
pub mod stats;
pub mod suite;
pub mod target;
mod yaml_lines;

pub use dataset::{Dataset, Item};
pub use error::SuiteError;
pub use output::{Output, ToolCall};
pub use prompt::{PromptTemplate, RenderedPrompt};
pub use report::RunReport;
pub use scorers::{
    CheckError, ItemScores, Judge, OutputCheck, Score, ScoreContext, ScoreError, Scored, Scorer,
    ScorerSpec, Spend,
};
pub use stats::{CompareOptions, Comparison, compare};
pub use suite::Suite;
pub use target::TargetConfig;
