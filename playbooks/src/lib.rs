//! Mesh OS remediation playbooks.
//!
//! Owns:
//! - the playbook format ([`Playbook`], YAML, one playbook per file) and the vocabulary it shares
//!   with the healer ([`IncidentKind`], [`Severity`], [`RootCauseKind`], [`ActionKind`]);
//! - validation at load, with errors naming the file, the line and the field path
//!   ([`PlaybookError`]);
//! - the shipped library (`playbooks/library/*.yaml`, compiled in: [`Library::builtin`]) and
//!   directories of operator-written playbooks ([`Library::load_dir`]);
//! - choosing candidate playbooks for an incident ([`Library::candidates`]) and planning one
//!   ([`Playbook::plan`]): templates resolved, and a digest an approval is bound to.
//!
//! Must not: apply anything. Executing a plan (controls, webhooks) is the healer's job; this crate
//! is plain data in, plain data out, and reads files only in [`Library::load_dir`].

mod model;
mod plan;
mod validate;

use std::path::Path;

pub use model::{
    ActionKind, Approval, BlastRadius, Condition, IncidentKind, MetricCheck, Playbook, RateLimit,
    RequiredApproval, RootCauseKind, Severity, Step, Triggers, Verify,
};
pub use plan::{IncidentFacts, Plan, PlanContext, PlannedStep, Subject};

/// The playbooks shipped with Mesh OS: `(file name, contents)`.
const BUILTIN: &[(&str, &str)] = &[
    (
        "redact-pii-leak.yaml",
        include_str!("../library/redact-pii-leak.yaml"),
    ),
    (
        "quarantine-agent.yaml",
        include_str!("../library/quarantine-agent.yaml"),
    ),
    (
        "deny-injection-campaign.yaml",
        include_str!("../library/deny-injection-campaign.yaml"),
    ),
    (
        "rollback-model-version.yaml",
        include_str!("../library/rollback-model-version.yaml"),
    ),
    (
        "move-region.yaml",
        include_str!("../library/move-region.yaml"),
    ),
    (
        "cap-cost-spike.yaml",
        include_str!("../library/cap-cost-spike.yaml"),
    ),
    (
        "revoke-failing-tool.yaml",
        include_str!("../library/revoke-failing-tool.yaml"),
    ),
    (
        "rotate-credential.yaml",
        include_str!("../library/rotate-credential.yaml"),
    ),
    (
        "rerun-eval-suite.yaml",
        include_str!("../library/rerun-eval-suite.yaml"),
    ),
];

/// Errors of this crate; each names where the problem is and what is expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlaybookError {
    /// The file is not a valid playbook: YAML syntax, a wrong type, an unknown or missing field,
    /// or a rule the format imposes.
    #[error("{file}{}: {field}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid {
        file: String,
        line: Option<usize>,
        /// The field path, e.g. `steps[1].approval.required.expires_after_seconds`.
        field: String,
        message: String,
    },
    /// Two files define the same playbook id.
    #[error("{file}: id `{id}` is already defined in {other}; playbook ids must be unique")]
    DuplicateId {
        file: String,
        id: String,
        other: String,
    },
    /// A directory could not be read.
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    /// Planning failed (a template variable without a value).
    #[error("playbook `{playbook}` step `{step}`: {message}")]
    Plan {
        playbook: String,
        step: String,
        message: String,
    },
}

/// A validated set of playbooks with unique ids, in file-name order.
#[derive(Debug, Clone, Default)]
pub struct Library {
    playbooks: Vec<(String, Playbook)>,
}

impl Library {
    /// The shipped library.
    pub fn builtin() -> Result<Library, PlaybookError> {
        Library::from_sources(BUILTIN.iter().map(|(n, t)| (n.to_string(), t.to_string())))
    }

    /// Every `*.yaml` / `*.yml` file of a directory (not recursive), in file-name order.
    pub fn load_dir(dir: &Path) -> Result<Library, PlaybookError> {
        let io = |e: std::io::Error| PlaybookError::Io {
            path: dir.display().to_string(),
            message: e.to_string(),
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        files.sort();
        let mut sources = Vec::with_capacity(files.len());
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|e| PlaybookError::Io {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            sources.push((path.display().to_string(), text));
        }
        Library::from_sources(sources)
    }

    /// Parses and validates `(file name, contents)` pairs.
    pub fn from_sources(
        sources: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Library, PlaybookError> {
        let mut playbooks: Vec<(String, Playbook)> = Vec::new();
        for (file, text) in sources {
            let pb = validate::parse(&file, &text)?;
            if let Some((other, _)) = playbooks.iter().find(|(_, p)| p.id == pb.id) {
                return Err(PlaybookError::DuplicateId {
                    file,
                    id: pb.id,
                    other: other.clone(),
                });
            }
            playbooks.push((file, pb));
        }
        Ok(Library { playbooks })
    }

    pub fn len(&self) -> usize {
        self.playbooks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.playbooks.is_empty()
    }

    pub fn playbooks(&self) -> impl Iterator<Item = &Playbook> + '_ {
        self.playbooks.iter().map(|(_, p)| p)
    }

    pub fn get(&self, id: &str) -> Option<&Playbook> {
        self.playbooks().find(|p| p.id == id)
    }

    /// The playbooks whose triggers and conditions match, best first: more specific triggers
    /// (root-cause kinds and metrics given) first, then those needing fewer approvals (the
    /// least intrusive fix that can run at once), then by id.
    pub fn candidates(&self, facts: &IncidentFacts) -> Vec<&Playbook> {
        let mut out: Vec<&Playbook> = self.playbooks().filter(|p| facts.matches(p)).collect();
        out.sort_by_key(|p| {
            let specificity = usize::from(!p.triggers.root_cause_kinds.is_empty())
                + usize::from(!p.triggers.metrics.is_empty());
            (
                std::cmp::Reverse(specificity),
                p.approvals().count(),
                p.id.clone(),
            )
        });
        out
    }
}
