//! Bundles for benchmarks and tests, and helpers shared by unit tests; not part of the
//! supported API.
//!
//! The crate's test convention: a file's unit tests are `#[cfg(test)] mod tests` at its bottom
//! (`use super::*;`), next to the code they test; there are no separate `tests.rs` files. The
//! one test-only file is `engine/differential.rs`, which is not a unit test of one file but
//! checks the whole engine, compiled policies against Cedar, over generated requests. What
//! tests of several files share lives here, behind `#[cfg(test)]`: the shared detector
//! catalogue and finding assertions, the injection detector and its flag assertion. What the
//! benches need as well is public (benches are outside the crate).
//!
//! `evaluate_with_cedar_only` decides with Cedar alone, for comparing the compiled policies'
//! speed with Cedar's.
//!
//! `hundred_policy_bundle` is the speed-target bundle: 100 policies spread over the
//! hierarchy (global, the tenant folder `acme`, regions `eu` and `us`, teams `support`,
//! `billing` and `research`). The shipped bundle is the base; the rest are generated policies of
//! the shapes real bundles have (operation and tool deny-lists, content-size rules, model-family
//! rules, approval gates), all validated against the shipped schema. The benchmark and the
//! differential tests of the compiled evaluator both use it, so they measure and check the same
//! policies.

use crate::engine::{Route, evaluate_via};
use crate::{Bundle, BundleError, BundleFile, CheckRequest, Detectors, Evaluation};

/// `evaluate` with Cedar deciding every request: the reference the compiled policies are
/// measured against.
pub fn evaluate_with_cedar_only(
    bundle: &Bundle,
    detectors: &Detectors,
    req: &CheckRequest<'_>,
) -> Evaluation {
    evaluate_via(bundle, detectors, req, Route::CedarOnly)
}

/// Policies in `hundred_policy_bundle`.
pub const HUNDRED_POLICIES: usize = 100;

/// Generated policies per lower level: (folder, principal scope, count). Global takes what is
/// left to reach `HUNDRED_POLICIES`.
const LOWER_LEVELS: &[(&str, &str, usize)] = &[
    ("tenants/acme", "principal in MeshOS::Tenant::\"acme\"", 12),
    ("regions/eu", "principal in MeshOS::Region::\"eu\"", 10),
    ("regions/us", "principal in MeshOS::Region::\"us\"", 10),
    ("teams/support", "principal in MeshOS::Team::\"support\"", 8),
    ("teams/billing", "principal in MeshOS::Team::\"billing\"", 8),
    (
        "teams/research",
        "principal in MeshOS::Team::\"research\"",
        8,
    ),
];

/// The shipped bundle plus generated policies, `HUNDRED_POLICIES` in all (more only if the
/// shipped bundle alone outgrows the lower levels' share).
pub fn hundred_policy_bundle() -> Result<Bundle, BundleError> {
    let shipped = Bundle::embedded_default()?;
    let mut files = shipped.files().to_vec();
    let lower_total: usize = LOWER_LEVELS.iter().map(|(_, _, n)| n).sum();
    let global = HUNDRED_POLICIES.saturating_sub(shipped.policy_ids().len() + lower_total);
    files.push(BundleFile {
        name: "global/generated.cedar".into(),
        text: generated("global", "principal", global),
    });
    for (level, scope, n) in LOWER_LEVELS {
        files.push(BundleFile {
            name: format!("{level}/generated.cedar"),
            text: generated(level, scope, *n),
        });
    }
    Bundle::from_files(files)
}

fn act(principal: &str) -> String {
    format!("({principal}, action == MeshOS::Action::\"act\", resource")
}

/// `count` generated policies for `level` (a bundle folder) and its principal scope.
fn generated(level: &str, scope: &str, count: usize) -> String {
    let mut out = String::new();
    let slug = level.replace('/', "-");
    for i in 0..count {
        let id = format!("{slug}-{i}");
        let text = match (level.starts_with("teams"), i % 4) {
            (true, 0) => format!(
                "@id(\"{id}\") @reason(\"needs approval\") @obligation(\"require_approval\") @approver(\"operator\")\n\
                 permit {} == MeshOS::Operation::\"{slug}.gated{i}\");\n",
                act(scope)
            ),
            (_, 0) => format!(
                "@id(\"{id}\") @reason(\"retired operation\")\nforbid {} == MeshOS::Operation::\"{slug}.legacy{i}\");\n",
                act(scope)
            ),
            (_, 1) => format!(
                "@id(\"{id}\") @reason(\"tool not allowed\")\nforbid {})\nwhen {{ context has tool && context.tool == \"{slug}-tool{i}\" }};\n",
                act(scope)
            ),
            (_, 2) => format!(
                "@id(\"{id}\") @reason(\"too much personal data at once\")\nforbid {})\nwhen {{ context.content_bytes > {} && context.finding_classes.contains(\"pii\") }};\n",
                act(scope),
                200_000 + i
            ),
            _ => format!(
                "@id(\"{id}\") @reason(\"model family not for this scope\")\nforbid {})\nwhen {{ context has model_family && context.model_family == \"{slug}-model{i}\" }};\n",
                act(scope)
            ),
        };
        out.push_str(&text);
    }
    out
}

// ------------------------------------------------------------ helpers shared by unit tests

/// One catalogue for all tests: compiling it (and loading the gazetteers) per call made the
/// debug-build tests slow.
#[cfg(test)]
pub(crate) fn shared() -> &'static Detectors {
    static D: std::sync::OnceLock<Detectors> = std::sync::OnceLock::new();
    D.get_or_init(Detectors::new)
}

#[cfg(test)]
pub(crate) fn entities(text: &str) -> Vec<(String, String)> {
    shared()
        .scan(text)
        .into_iter()
        .map(|f| (f.entity, text[f.start..f.end].to_string()))
        .collect()
}

/// (entity, exact bytes, start) of every finding.
#[cfg(test)]
pub(crate) fn found(text: &str) -> Vec<(String, String, usize)> {
    shared()
        .scan(text)
        .into_iter()
        .map(|f| (f.entity, text[f.start..f.end].to_string(), f.start))
        .collect()
}

/// Asserts that `value` is found as `entity` at the byte offset where it occurs in `text`.
#[cfg(test)]
pub(crate) fn assert_found(text: &str, entity: &str, value: &str) {
    let start = text.find(value).expect("value in text");
    let got = found(text);
    assert!(
        got.contains(&(entity.to_string(), value.to_string(), start)),
        "{entity} {value:?} at byte {start} not found in {text:?}: {got:?}"
    );
}

#[cfg(test)]
pub(crate) fn assert_no(text: &str, entity: &str) {
    let got = found(text);
    assert!(
        got.iter().all(|(e, _, _)| e != entity),
        "unexpected {entity} in {text:?}: {got:?}"
    );
}

#[cfg(test)]
pub(crate) fn injection_detector() -> crate::InjectionDetector {
    // The rules' own tests: the learned model on top is tested in tests/injection_model.rs.
    crate::InjectionDetector::new().rules_only()
}

#[cfg(test)]
pub(crate) fn assert_injection_flags(text: &str, category: &str) -> crate::InjectionVerdict {
    let v = injection_detector().scan(text);
    assert!(v.flagged, "expected flag ({category}) for {text:?}: {v:#?}");
    assert!(
        v.matches.iter().any(|m| m.category == category),
        "expected a {category} match for {text:?}: {v:#?}"
    );
    v
}
