//! `meshos policy lint` against the shipped bundle (no findings allowed) and against
//! `policies/fixtures/planted-conflicts` (every planted problem found, nothing else).
//! Needs the cvc5 solver (`apt-get install cvc5`); without it these tests fail, never skip.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use meshos_policy_lint::{Cvc5, FindingKind, LintError, Report, lint_dir};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn cvc5() -> Cvc5 {
    Cvc5::locate(std::env::var_os("CVC5").as_deref().map(Path::new))
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn lint(path: &str) -> Report {
    lint_dir(&repo(path), &cvc5())
        .await
        .unwrap_or_else(|e| panic!("lint {path}: {e}"))
}

/// (kind, subject policy, the related policies) of every finding.
fn summary(report: &Report) -> BTreeSet<(FindingKind, String, Vec<String>)> {
    report
        .findings
        .iter()
        .map(|f| {
            let mut related = f.policy_ids[1..].to_vec();
            related.sort();
            (f.kind, f.policy_ids[0].clone(), related)
        })
        .collect()
}

#[tokio::test]
async fn default_bundle_has_no_findings() {
    let report = lint("policies/default").await;
    assert!(report.findings.is_empty(), "{}", report.to_human());
    assert_eq!(report.exit_code(), 0);
    assert!(report.queries > 0, "the solver was never asked");
}

#[tokio::test]
async fn every_planted_problem_is_found_and_nothing_else() {
    let report = lint("policies/fixtures/planted-conflicts").await;
    let expected: BTreeSet<(FindingKind, String, Vec<String>)> = [
        (FindingKind::NeverMatches, "planted-never-matches", vec![]),
        (FindingKind::NeverMatches, "planted-apac-no-teams", vec![]),
        (
            FindingKind::ShadowedPermit,
            "planted-shadowed-db-drop",
            vec!["denied-actions"],
        ),
        (
            FindingKind::UnreachableObligation,
            "planted-unreachable-refund-approval",
            vec!["support-no-payments"],
        ),
        (
            FindingKind::ConflictingObligations,
            "planted-conflicting-payment-approver",
            vec!["payments-need-approval"],
        ),
        (
            FindingKind::Redundant,
            "planted-redundant-large-secrets",
            vec!["secrets-block"],
        ),
        (
            FindingKind::Redundant,
            "planted-redundant-unknown-region",
            vec!["eu-processing-stays-in-eu", "region-known"],
        ),
    ]
    .into_iter()
    .map(|(kind, subject, related)| {
        (
            kind,
            subject.to_string(),
            related.into_iter().map(str::to_string).collect(),
        )
    })
    .collect();
    assert_eq!(summary(&report), expected, "{}", report.to_human());
    assert_eq!(report.errors, 5);
    assert_eq!(report.warnings, 2);
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test]
async fn findings_name_their_files_slices_and_a_witness() {
    let report = lint("policies/fixtures/planted-conflicts").await;
    let find = |id: &str| {
        report
            .findings
            .iter()
            .find(|f| f.policy_ids[0] == id)
            .unwrap_or_else(|| panic!("no finding about {id}"))
    };

    let conflict = find("planted-conflicting-payment-approver");
    assert_eq!(
        conflict.files,
        vec!["teams/billing/planted.cedar", "global/actions.cedar"]
    );
    // Only the billing team's paths (with and without the acme tenant folder) have both.
    assert!(!conflict.slices.is_empty());
    assert!(
        conflict
            .slices
            .iter()
            .all(|s| s.team.as_deref() == Some("billing")),
        "{:?}",
        conflict.slices
    );
    let witness = conflict
        .witness
        .as_ref()
        .expect("a conflict comes with a witness");
    assert_eq!(
        witness.resource,
        r#"MeshOS::Operation::"payments.transfer""#
    );
    assert!(
        witness
            .principal_in
            .contains(&r#"MeshOS::Team::"billing""#.to_string()),
        "{witness:?}"
    );

    // A team policy is analysed on its team's paths only; a global one on all of them.
    let team = find("planted-unreachable-refund-approval");
    assert!(
        team.slices
            .iter()
            .all(|s| s.team.as_deref() == Some("support"))
    );
    let global = find("planted-shadowed-db-drop");
    assert_eq!(global.slices.len(), report.slices.len());
    assert!(
        report
            .slices
            .iter()
            .any(|s| s.tenant.as_deref() == Some("acme"))
    );
}

#[tokio::test]
async fn a_bundle_that_does_not_validate_is_a_bundle_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        repo("policies/default/schema.cedarschema"),
        dir.path().join("schema.cedarschema"),
    )
    .expect("copy schema");
    std::fs::write(
        dir.path().join("typo.cedar"),
        r#"@id("typo") forbid (principal, action, resource) when { context.modle == "x" };"#,
    )
    .expect("write policy");
    let err = lint_dir(dir.path(), &cvc5()).await.unwrap_err();
    assert!(err.is_bundle_error(), "{err}");
    assert!(matches!(err, LintError::Bundle(_)));
    assert!(err.to_string().contains("modle"), "{err}");
}

/// Writes a bundle with the shipped schema, `org.toml` and the given policy files.
fn bundle_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        repo("policies/default/schema.cedarschema"),
        dir.path().join("schema.cedarschema"),
    )
    .expect("copy schema");
    let org = "[regions.eu]\n[teams.ops]\nregion = 'eu'\n";
    std::fs::write(dir.path().join("org.toml"), org).expect("write org.toml");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("a file in a folder")).expect("mkdir");
        std::fs::write(path, text).expect("write policy");
    }
    dir
}

#[tokio::test]
async fn of_two_identical_policies_only_the_later_one_is_redundant() {
    let forbid = |id: &str| {
        format!(
            r#"@id("{id}") forbid (principal, action, resource) when {{ context.injection_flagged }};"#
        )
    };
    let dir = bundle_with(&[
        (
            "global/base.cedar",
            r#"@id("base") permit (principal, action, resource);"#,
        ),
        ("global/a.cedar", &forbid("first")),
        ("global/b.cedar", &forbid("second")),
    ]);
    let report = lint_dir(dir.path(), &cvc5()).await.expect("lint");
    let expected: BTreeSet<_> = [(
        FindingKind::Redundant,
        "second".to_string(),
        vec!["first".to_string()],
    )]
    .into_iter()
    .collect();
    assert_eq!(summary(&report), expected, "{}", report.to_human());
    assert_eq!(report.exit_code(), 0, "warnings alone do not fail the lint");
}

#[tokio::test]
async fn a_team_obligation_no_global_permit_grants_is_unreachable() {
    let dir = bundle_with(&[
        (
            "global/base.cedar",
            r#"@id("reads") permit (principal, action, resource == MeshOS::Operation::"db.read");"#,
        ),
        (
            "teams/ops/approve.cedar",
            r#"@id("ops-writes-need-approval") @obligation("require_approval") @approver("operator")
permit (principal in MeshOS::Team::"ops", action, resource == MeshOS::Operation::"db.write");"#,
        ),
    ]);
    let report = lint_dir(dir.path(), &cvc5()).await.expect("lint");
    let expected: BTreeSet<_> = [(
        FindingKind::UnreachableObligation,
        "ops-writes-need-approval".to_string(),
        vec![],
    )]
    .into_iter()
    .collect();
    assert_eq!(summary(&report), expected, "{}", report.to_human());
    assert!(
        report.findings[0]
            .message
            .contains("no global or tenant permit grants"),
        "{}",
        report.findings[0].message
    );
}
