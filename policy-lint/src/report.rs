//! What `lint` reports: findings with their kind, severity, policies, files, paths and, where
//! the solver produced one, a witness request; and renderings for people and for machines.

use std::fmt::Write;

use cedar_policy_symcc::Env;
use serde::Serialize;

use crate::model::SlicePath;
use crate::solver::Cvc5;

/// The kinds of finding. The exact definitions are in the crate documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    NeverMatches,
    ShadowedPermit,
    UnreachableObligation,
    ConflictingObligations,
    Redundant,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::NeverMatches => "never-matches",
            FindingKind::ShadowedPermit => "shadowed-permit",
            FindingKind::UnreachableObligation => "unreachable-obligation",
            FindingKind::ConflictingObligations => "conflicting-obligations",
            FindingKind::Redundant => "redundant",
        }
    }

    /// Redundant policies change no decision, so they only warn; every other kind means a
    /// policy does not do what its author wrote it for.
    pub fn severity(self) -> Severity {
        match self {
            FindingKind::Redundant => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A concrete request (and entity store) the solver produced, showing the finding can happen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Witness {
    pub principal: String,
    /// The entities the principal is in (its team, region, tenant).
    pub principal_in: Vec<String>,
    pub action: String,
    pub resource: String,
    /// The request context as Cedar JSON.
    pub context: serde_json::Value,
    /// The entities (with their parents) as Cedar JSON.
    pub entities: serde_json::Value,
}

impl Witness {
    pub(crate) fn from_env(env: &Env) -> Witness {
        let name = |uid: Option<&cedar_policy::EntityUid>| {
            uid.map_or_else(|| "unknown".to_string(), ToString::to_string)
        };
        let request = &env.request;
        let context = match request.context() {
            Some(ctx) => ctx
                .to_json_value()
                .unwrap_or_else(|_| serde_json::Value::String(ctx.to_string())),
            None => serde_json::Value::Null,
        };
        let mut principal_in: Vec<String> = request
            .principal()
            .and_then(|p| env.entities.ancestors(p))
            .map(|ancestors| ancestors.map(ToString::to_string).collect())
            .unwrap_or_default();
        principal_in.sort();
        Witness {
            principal: name(request.principal()),
            principal_in,
            action: name(request.action()),
            resource: name(request.resource()),
            context,
            entities: env
                .entities
                .to_json_value()
                .unwrap_or(serde_json::Value::Null),
        }
    }
}

/// One finding. `policy_ids[0]` (in `files[0]`) is the policy the finding is about; the rest
/// are the policies that cause it (the covering forbids, the policy that makes it redundant,
/// the other side of a conflict).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    pub policy_ids: Vec<String>,
    pub files: Vec<String>,
    /// The paths on which the finding holds.
    pub slices: Vec<SlicePath>,
    pub message: String,
    pub witness: Option<Witness>,
}

/// The result of linting one bundle.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub bundle_version: String,
    pub solver: Cvc5,
    pub policies: usize,
    pub slices: Vec<SlicePath>,
    /// Solver queries run.
    pub queries: usize,
    pub errors: usize,
    pub warnings: usize,
    pub findings: Vec<Finding>,
}

impl Report {
    pub(crate) fn new(
        bundle_version: String,
        solver: Cvc5,
        policies: usize,
        slices: Vec<SlicePath>,
        queries: usize,
        mut findings: Vec<Finding>,
    ) -> Report {
        findings.sort_by(|a, b| {
            (a.severity, a.kind, &a.policy_ids).cmp(&(b.severity, b.kind, &b.policy_ids))
        });
        let errors = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        Report {
            bundle_version,
            solver,
            policies,
            slices,
            queries,
            errors,
            warnings: findings.len() - errors,
            findings,
        }
    }

    /// 0 without errors (warnings allowed), 1 with at least one error.
    pub fn exit_code(&self) -> i32 {
        if self.errors > 0 { 1 } else { 0 }
    }

    /// The report for people: one block per finding, then a summary line.
    pub fn to_human(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let severity = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let subject = f.policy_ids.first().map(String::as_str).unwrap_or("?");
            let file = f.files.first().map(String::as_str).unwrap_or("?");
            let _ = writeln!(out, "{severity}[{}]: {subject} ({file})", f.kind.as_str());
            let _ = writeln!(out, "  {}", f.message);
            for (id, file) in f.policy_ids.iter().zip(&f.files).skip(1) {
                let _ = writeln!(out, "  related: {id} ({file})");
            }
            for s in &f.slices {
                let _ = writeln!(out, "  slice: {s}");
            }
            if let Some(w) = &f.witness {
                let _ = writeln!(
                    out,
                    "  witness: principal {} (in {}), action {}, resource {}",
                    w.principal,
                    w.principal_in.join(", "),
                    w.action,
                    w.resource
                );
                let _ = writeln!(out, "           context {}", w.context);
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "policy lint: {} error(s), {} warning(s); {} policies on {} slice(s), {} solver queries (cvc5 {} at {})",
            self.errors,
            self.warnings,
            self.policies,
            self.slices.len(),
            self.queries,
            self.solver.version,
            self.solver.path.display()
        );
        out
    }
}
