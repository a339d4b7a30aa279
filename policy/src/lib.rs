//! Mesh OS policy engine: decides whether an agent may take an action.
//!
//! Owns the Cedar policy bundle (schema + policies, loaded from a directory or the embedded
//! default), the content detectors that turn submitted text into findings, the mapping of Cedar
//! decisions and policy annotations (`@id`, `@reason`, `@obligation`, `@approver`) onto Mesh OS
//! verdicts, redaction (mask, keyed hash, pseudonyms), the model version registry and budget
//! assessment. It is pure: it takes a request and returns a decision. It must not
//! store anything, talk to the network or know about transports; the caller records decisions.
//!
//! Fail closed: a request that cannot be evaluated (schema mismatch, policy evaluation error)
//! is a `deny` naming the error, never an `allow`.
//!
//! Two phases for a caller with storage: [`Bundle::facts_needed`] says from the request's
//! identity which stored facts (controls, spend counters, the check rate) the decision reads,
//! so they can be fetched in one round trip; [`CheckRequest::with_facts`] puts them into the
//! request for [`evaluate`].

mod arguments;
mod budgets;
mod bundle;
mod compiled;
mod detect;
mod engine;
mod facts;
mod injection;
mod models;
mod redact;
#[doc(hidden)]
pub mod test_support;

pub use arguments::{ARGUMENTS_TYPE, ArgumentError, ArgumentSchema};
pub use budgets::{
    BUDGETS_FILE, BudgetConfig, BudgetConfigError, BudgetLine, BudgetState, Metric, Period, Scope,
    Usage, assess,
};
pub use bundle::{
    Bundle, BundleError, BundleFile, EMPTY_MARKER, MANIFEST_FILE, Placement, files_digest,
    manifest_text, read_bundle_files,
};
pub use detect::{Detectors, EntityClass, RuleError};
pub use engine::{CheckRequest, Evaluation, evaluate};
pub use facts::{Facts, FactsNeeded, RequestIdentity, UsageCounter};
pub use injection::{
    ContentSource, DENSE_FEATURES, InjectionDetector, InjectionMatch, InjectionVerdict,
};
pub use models::{
    MODELS_FILE, ModelRegistry, ModelRegistryError, ModelResolution, ModelSpec, ModelStatus,
};
pub use redact::{
    IssuedPseudonym, PSEUDONYM_PREFIX, Redaction, RedactionKeys, RedactionMode, RedactionRule,
    is_pseudonym_id,
};
