//! Evals: suites in YAML (a dataset, a target, a prompt template, scorers), runs against a target,
//! per-item scores, and paired comparisons of two runs on the same items.
//!
//! This crate owns the eval vocabulary and the pure logic (loading and validating suites, scoring
//! an output, the statistics of a comparison) and the runner that calls targets over HTTP. It must
//! not touch the store, the ledger or trust: `meshos-service` records runs, appends them to the
//! ledger and turns their results into `eval` events.

pub mod judge_client;
pub mod output;
pub mod run;
pub mod schedule;
pub mod target;
