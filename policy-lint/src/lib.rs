//! Mesh OS policy lint: proves, with `cedar-policy-symcc` and the cvc5 SMT solver, which
//! policies of a bundle can never match, never take effect, change nothing, or demand
//! incompatible obligations (`meshos policy lint DIR`).
//!
//! Owns the analysis only. Loading and validating a bundle (schema, levels, narrowing rules)
//! belongs to `meshos-policy`, and what a decision means is defined by its engine; this crate
//! reads the validated bundle and asks the solver questions about it. It lives apart from
//! `meshos-policy` so the server's policy engine does not compile symcc. It spawns the
//! `cvc5` binary (found by [`Cvc5::locate`]) and does nothing else outside the process.
//!
//! # What is analysed
//!
//! A request is evaluated only against the policies on its agent's path: `global/`, its
//! tenant's folder, its region and its team (see `policy/src/bundle.rs`). The lint analyses
//! every path a request can take: for each tenant folder (and for tenants without one), the
//! path of agents `org.toml` does not place, and the path of each team. On a path, requests
//! are restricted to principals in that path's tenant, region and team and in no other
//! (the *path guard*). Forbids overlapping a permit are the intended way to narrow and are
//! not findings by themselves; a finding is about a policy that, on every path it is on,
//! does nothing or does something contradictory.
//!
//! A *granting* permit is a global or tenant permit (with or without obligation). Region and
//! team permits carry an `@obligation` and never grant. A permit *takes effect* on a request
//! when it matches, no forbid on the path matches, and some granting permit on the path
//! matches (itself, if it grants). Its *parameters* are its annotations other than `@id` and
//! `@reason` (`@obligation`, `@approver`, `@redact_mode`, …).
//!
//! # Finding kinds
//!
//! - `never-matches` (error): on no path the policy is on does any request the schema admits
//!   satisfy its scope and conditions (e.g. `context.content_bytes > 10 &&
//!   context.content_bytes < 5`), or the policy is on no reachable path (a region no team of
//!   `org.toml` belongs to).
//! - `shadowed-permit` (error): a granting permit that takes effect on no request on any path
//!   it is on: forbids cover everything it matches. Related policies: the forbids that
//!   overlap it.
//! - `unreachable-obligation` (error): a region or team obligation permit that takes effect on
//!   no request on its paths: whatever it matches is either denied by a forbid on the path or
//!   granted by no global or tenant permit, so its obligation is never applied.
//! - `conflicting-obligations` (error): two permits with the same `@obligation` whose values of
//!   a parameter the engine does not merge differ (today: `@approver` of `require_approval`)
//!   and that both take effect on one request on some path. The witness is such a request.
//!   Different `@redact_mode`s are not conflicts: the engine applies the most protective.
//! - `redundant` (warning): a policy p such that another policy q, on every path p is on,
//!   matches every request p matches and contributes at least as much: same effect; for a
//!   permit, q grants if p grants, and q has the same parameters if p has any. Removing p
//!   changes no decision (only the list of reasons). Of two policies that cover each other,
//!   the deeper (then later file, then larger id) is reported.
//!
//! A policy reported as `never-matches` is not reported as anything else, nor is a policy
//! that never takes effect reported as redundant or conflicting.
//!
//! # Soundness
//!
//! The solver reasons over every request and entity store the schema admits on a path, a
//! superset of what the engine builds (it does not know, say, that `finding_classes` is
//! derived from `findings`). So `never-matches`, `shadowed-permit`, `unreachable-obligation`
//! and `redundant` are proofs that hold for every real request too; a
//! `conflicting-obligations` witness is a schema-valid request that the engine's context
//! builder might never produce. A solver answer of `unknown` (time limit) is an error, not a
//! pass.

mod analysis;
mod model;
mod report;
mod solver;

use std::path::{Path, PathBuf};

use meshos_policy::{Bundle, BundleError};

pub use model::SlicePath;
pub use report::{Finding, FindingKind, Report, Severity, Witness};
pub use solver::{Cvc5, INSTALL_HINT, MIN_CVC5_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum LintError {
    #[error("the cvc5 SMT solver was not found (looked in {searched}); {INSTALL_HINT}")]
    SolverMissing { searched: String },
    #[error("the cvc5 SMT solver at {path} cannot be used: {message}; {INSTALL_HINT}")]
    SolverUnusable { path: PathBuf, message: String },
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("bundle file {file}: {message}")]
    Model { file: String, message: String },
    #[error("{what}: {source}")]
    Symcc {
        what: String,
        // Boxed: symcc's error is large, and every fallible function here returns this type.
        #[source]
        source: Box<cedar_policy_symcc::err::Error>,
    },
    #[error("internal lint query does not parse ({message}): {text}")]
    Query { text: String, message: String },
}

impl LintError {
    /// Whether the bundle itself was rejected (as opposed to the analysis failing to run).
    pub fn is_bundle_error(&self) -> bool {
        matches!(self, LintError::Bundle(_))
    }
}

/// Loads and validates the bundle in `dir`, then lints it.
pub async fn lint_dir(dir: &Path, cvc5: &Cvc5) -> Result<Report, LintError> {
    let bundle = Bundle::load_dir(dir)?;
    lint(&bundle, cvc5).await
}

/// Lints a loaded bundle: every finding kind on every path, proved by cvc5.
pub async fn lint(bundle: &Bundle, cvc5: &Cvc5) -> Result<Report, LintError> {
    let model = model::BundleModel::from_bundle(bundle)?;
    let mut analyzer = analysis::Analyzer::new(&model, bundle.schema(), cvc5.spawn()?)?;
    let findings = analyzer.run().await?;
    Ok(Report::new(
        bundle.version().to_string(),
        cvc5.clone(),
        model.policies.len(),
        model.paths.clone(),
        analyzer.queries,
        findings,
    ))
}
