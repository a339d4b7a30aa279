//! Remediation playbooks in YAML (`--playbooks DIR`, or the built-in library): validation,
//! then what the healer does with a valid one — match it against incidents, plan it (templates
//! resolved, digest computed) and read each planned step's control.
//!
//! Invariants beyond "no panic": a plan's digest is a function of the plan (the same context
//! gives the same digest, another policy version another one, so an approval never carries
//! over), and a control read from a step survives its stored form (kind, subject, spec), as the
//! healer writes and reads it back.

use meshos_playbooks::{
    IncidentFacts, IncidentKind, Library, PlanContext, RootCauseKind, Severity, Subject,
};
use meshos_types::Control;

pub fn yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(library) = Library::from_sources([("fuzz.yaml".to_string(), text.to_string())]) else {
        return;
    };
    for kind in IncidentKind::ALL {
        for severity in [Severity::Low, Severity::Critical] {
            let _ = library.candidates(&IncidentFacts {
                kind: *kind,
                severity,
                root_cause_kind: Some(RootCauseKind::Tool),
                metric: Some("latency".into()),
                trust_score: Some(42.0),
                affected_agents: 3,
            });
        }
    }
    for playbook in library.playbooks() {
        let _ = playbook.rate_limit_allows(3);
        let _ = playbook.blast_radius_allows(2, 0);
        let _ = playbook.blast_radius_allows(2, 10);
        for subject_kind in RootCauseKind::ALL {
            let ctx = context(*subject_kind, "sha256:0000000000000001");
            let Ok(plan) = playbook.plan(&ctx) else {
                continue;
            };
            let again = playbook
                .plan(&ctx)
                .expect("a plan that resolved once resolves again");
            assert_eq!(plan.digest, again.digest, "a plan's digest is not stable");
            let other_bundle = context(*subject_kind, "sha256:0000000000000002");
            if let Ok(other) = playbook.plan(&other_bundle) {
                assert_ne!(
                    plan.digest, other.digest,
                    "an approval would carry over to another policy bundle"
                );
            }
            let _ = plan.requires_approval();
            for step in plan.steps.iter().chain(&plan.rollback) {
                let Some(kind) = step.action.control_kind() else {
                    continue;
                };
                let params = serde_json::Value::Object(step.params.clone());
                if let Ok(control) = Control::from_params(kind, &params) {
                    let stored = Control::from_stored(
                        control.kind().as_str(),
                        &control.subject(),
                        &control.spec(),
                    );
                    assert_eq!(
                        stored.as_ref().ok(),
                        Some(&control),
                        "a control does not survive its stored form: {stored:?}"
                    );
                }
            }
        }
    }
}

fn context(kind: RootCauseKind, policy_version: &str) -> PlanContext {
    PlanContext {
        incident_id: "inc_0192".into(),
        tenant: "acme".into(),
        incident_kind: IncidentKind::Drift,
        subject: Subject {
            kind,
            name: "web-search".into(),
        },
        metric: Some("latency".into()),
        affected_agents: vec!["support-bot".into(), "billing-bot".into()],
        policy_version: policy_version.into(),
        spend_cap_usd_per_day: Some(12.5),
        require_approval: None,
    }
}
