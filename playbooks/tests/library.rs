//! The shipped library, the format's validation errors, candidate choice and plans.

use meshos_playbooks::{
    ActionKind, Approval, IncidentFacts, IncidentKind, Library, PlanContext, PlaybookError,
    RootCauseKind, Severity, Subject,
};

fn facts(kind: IncidentKind, root: Option<RootCauseKind>, metric: Option<&str>) -> IncidentFacts {
    IncidentFacts {
        kind,
        severity: Severity::High,
        root_cause_kind: root,
        metric: metric.map(Into::into),
        trust_score: Some(40.0),
        affected_agents: 3,
    }
}

fn ctx(kind: RootCauseKind, name: &str) -> PlanContext {
    PlanContext {
        incident_id: "inc_1".into(),
        tenant: "acme".into(),
        incident_kind: IncidentKind::Drift,
        subject: Subject {
            kind,
            name: name.into(),
        },
        metric: Some("latency".into()),
        affected_agents: vec!["a1".into(), "a2".into()],
        policy_version: "sha256:abc".into(),
        spend_cap_usd_per_day: Some(1.25),
        require_approval: None,
    }
}

#[test]
fn the_builtin_library_loads_and_covers_every_demo_fault() {
    let lib = Library::builtin().expect("the shipped playbooks validate");
    assert!(lib.len() >= 8, "{} playbooks", lib.len());
    let first = |f: IncidentFacts| lib.candidates(&f).first().map(|p| p.id.clone());
    // PII-leak burst → redaction overlay first (auto), quarantine after it (approval).
    let pii = lib.candidates(&facts(
        IncidentKind::ViolationBurst,
        Some(RootCauseKind::Agent),
        Some("violation_rate"),
    ));
    let ids: Vec<&str> = pii.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids[0], "redact-pii-leak", "{ids:?}");
    assert!(ids.contains(&"quarantine-agent"), "{ids:?}");
    assert_eq!(
        first(facts(
            IncidentKind::ViolationBurst,
            Some(RootCauseKind::Tool),
            Some("violation_rate")
        ))
        .as_deref(),
        Some("deny-injection-campaign")
    );
    assert_eq!(
        first(facts(
            IncidentKind::Drift,
            Some(RootCauseKind::Model),
            Some("error_rate")
        ))
        .as_deref(),
        Some("rollback-model-version")
    );
    assert_eq!(
        first(facts(
            IncidentKind::Drift,
            Some(RootCauseKind::Agent),
            Some("cost")
        ))
        .as_deref(),
        Some("cap-cost-spike")
    );
    assert_eq!(
        first(facts(
            IncidentKind::Drift,
            Some(RootCauseKind::Region),
            Some("latency")
        ))
        .as_deref(),
        Some("move-region")
    );
    assert_eq!(
        first(facts(
            IncidentKind::Drift,
            Some(RootCauseKind::Tool),
            Some("error_rate")
        ))
        .as_deref(),
        Some("revoke-failing-tool")
    );
    assert_eq!(
        first(facts(
            IncidentKind::EvalFailure,
            Some(RootCauseKind::Agent),
            None
        ))
        .as_deref(),
        Some("rerun-eval-suite")
    );
    // Every playbook plans.
    for p in lib.playbooks() {
        let kind = p
            .triggers
            .root_cause_kinds
            .first()
            .copied()
            .unwrap_or(RootCauseKind::Agent);
        let plan = p.plan(&ctx(kind, "x")).expect("plans");
        assert_eq!(plan.digest.len(), 64);
    }
}

#[test]
fn severity_and_conditions_gate_candidates() {
    let lib = Library::builtin().expect("builtin");
    let mut f = facts(
        IncidentKind::ViolationBurst,
        Some(RootCauseKind::Agent),
        Some("violation_rate"),
    );
    f.severity = Severity::Medium;
    let ids: Vec<&str> = lib.candidates(&f).iter().map(|p| p.id.as_str()).collect();
    assert!(
        !ids.contains(&"quarantine-agent"),
        "quarantine needs high: {ids:?}"
    );
    let mut f = facts(
        IncidentKind::ViolationBurst,
        Some(RootCauseKind::Tool),
        Some("violation_rate"),
    );
    f.affected_agents = 1;
    let ids: Vec<&str> = lib.candidates(&f).iter().map(|p| p.id.as_str()).collect();
    assert!(
        !ids.contains(&"deny-injection-campaign"),
        "needs 2 agents: {ids:?}"
    );
}

#[test]
fn plans_resolve_templates_and_digests_bind_the_parameters() {
    let lib = Library::builtin().expect("builtin");
    let p = lib.get("revoke-failing-tool").expect("shipped");
    let plan = p.plan(&ctx(RootCauseKind::Tool, "crm")).expect("plan");
    assert_eq!(plan.steps[0].action, ActionKind::RevokeTool);
    assert_eq!(plan.steps[0].params["tool"], "crm");
    assert_eq!(
        plan.steps[1].params["message"],
        "tool crm revoked for all agents (incident inc_1)"
    );
    let again = p.plan(&ctx(RootCauseKind::Tool, "crm")).expect("plan");
    assert_eq!(plan.digest, again.digest, "same inputs, same digest");
    let other = p.plan(&ctx(RootCauseKind::Tool, "kb")).expect("plan");
    assert_ne!(plan.digest, other.digest, "a parameter changed");
    let mut c = ctx(RootCauseKind::Tool, "crm");
    c.policy_version = "sha256:def".into();
    assert_ne!(
        plan.digest,
        p.plan(&c).expect("plan").digest,
        "policy changed"
    );
    // An approval covers how the plan runs and is judged, not only its actions.
    let mut dry = p.clone();
    dry.dry_run = true;
    let crm = ctx(RootCauseKind::Tool, "crm");
    assert_ne!(plan.digest, dry.plan(&crm).expect("plan").digest, "dry run");
    let mut looser = p.clone();
    looser.verify.window_seconds += 60;
    assert_ne!(
        plan.digest,
        looser.plan(&crm).expect("plan").digest,
        "verification changed"
    );
    let mut gated = p.clone();
    gated.steps[0].approval = Approval::Auto;
    gated.steps[0].timeout_seconds = Some(5);
    assert_ne!(
        plan.digest,
        gated.plan(&crm).expect("plan").digest,
        "step timeout changed"
    );
    assert_eq!(plan.requires_approval(), None);
    let q = lib.get("quarantine-agent").expect("shipped");
    let mut unattended = q.clone();
    unattended.steps[0].approval = Approval::Auto;
    let bot = ctx(RootCauseKind::Agent, "bot");
    assert_ne!(
        q.plan(&bot).expect("plan").digest,
        unattended.plan(&bot).expect("plan").digest,
        "approval changed"
    );
    let qp = q.plan(&ctx(RootCauseKind::Agent, "bot")).expect("plan");
    assert_eq!(qp.requires_approval(), Some(("operator".into(), 900)));
}

#[test]
fn rate_limit_and_blast_radius() {
    let lib = Library::builtin().expect("builtin");
    let q = lib.get("quarantine-agent").expect("shipped");
    assert!(q.rate_limit_allows(4));
    assert!(!q.rate_limit_allows(5));
    assert!(q.blast_radius_allows(2, 20), "10% of 20");
    assert!(!q.blast_radius_allows(3, 20));
    assert!(q.blast_radius_allows(1, 0), "unknown fleet: one agent");
    assert!(!q.blast_radius_allows(2, 0));
}

const GOOD: &str = r#"id: ok-playbook
version: 1
description: test
triggers:
  incident_kinds: [drift]
steps:
  - id: first
    action: notify
    params: { message: "hello {{subject}}" }
  - id: second
    action: quarantine_agent
    params:
      agent: "{{subject.name}}"
verify:
  window_seconds: 5
  trust_score_at_least: 50
"#;

fn load_err(text: &str) -> String {
    let err =
        Library::from_sources([("bad.yaml".to_string(), text.to_string())]).expect_err("must fail");
    err.to_string()
}

#[test]
fn validation_errors_name_file_line_and_field() {
    Library::from_sources([("good.yaml".to_string(), GOOD.to_string())]).expect("valid");

    let e = load_err("id: x\nversion: [\n");
    assert!(e.starts_with("bad.yaml line"), "{e}");

    let e = load_err(&GOOD.replace("description: test", "description: test\ncolour: blue"));
    assert!(
        e.contains("bad.yaml line") && e.contains("unknown field `colour`"),
        "{e}"
    );

    let e = load_err(&GOOD.replace("action: quarantine_agent", "action: reboot_universe"));
    assert!(
        e.contains("steps[1].action") && e.contains("reboot_universe"),
        "{e}"
    );
    assert!(e.contains("line 11"), "{e}");

    let e = load_err(&GOOD.replace("      agent: \"{{subject.name}}\"", "      agnt: x"));
    assert!(e.contains("steps[1].params") && e.contains("agnt"), "{e}");
    assert!(e.contains("line 12") || e.contains("line 13"), "{e}");

    let e = load_err(&GOOD.replace("hello {{subject}}", "hello {{subjct}}"));
    assert!(
        e.contains("steps[0].params.message") && e.contains("unknown template variable `subjct`"),
        "{e}"
    );
    assert!(e.contains("line 9"), "{e}");

    let e = load_err(&GOOD.replace("id: second", "id: first"));
    assert!(e.contains("steps[1].id") && e.contains("used twice"), "{e}");

    let e = load_err(&format!("{GOOD}blast_radius: {{ max_fleet_share: 1.5 }}\n"));
    assert!(
        e.contains("blast_radius.max_fleet_share") && e.contains("(0, 1]"),
        "{e}"
    );
    let e = load_err(&format!("{GOOD}blast_radius: {{ max_fleet_share: 0 }}\n"));
    assert!(e.contains("max_fleet_share"), "{e}");

    let e = load_err(&GOOD.replace("  trust_score_at_least: 50\n", ""));
    assert!(e.contains(": verify:") && e.contains("needs"), "{e}");

    let e = load_err(&GOOD.replace(
        "      agent: \"{{subject.name}}\"",
        "      agent: x\n    approval:\n      required: { role: auditor, expires_after_seconds: 60 }",
    ));
    assert!(
        e.contains("steps[1].approval.required.role") && e.contains("auditor"),
        "{e}"
    );
}

#[test]
fn duplicate_ids_across_files_are_refused() {
    let err = Library::from_sources([
        ("a.yaml".to_string(), GOOD.to_string()),
        ("b.yaml".to_string(), GOOD.to_string()),
    ])
    .expect_err("duplicate");
    assert!(matches!(err, PlaybookError::DuplicateId { .. }), "{err}");
    assert!(err.to_string().contains("a.yaml") && err.to_string().contains("b.yaml"));
}

#[test]
fn a_directory_loads_like_the_builtin_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ok.yaml"), GOOD).expect("write");
    std::fs::write(dir.path().join("notes.txt"), "ignored").expect("write");
    let lib = Library::load_dir(dir.path()).expect("loads");
    assert_eq!(lib.len(), 1);
    let missing = Library::load_dir(&dir.path().join("nope")).expect_err("missing dir");
    assert!(missing.to_string().contains("nope"), "{missing}");
}
