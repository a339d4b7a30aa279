//! Differential tests of the compiled policies against Cedar: for each bundle, thousands of
//! seeded random requests decided both ways must agree on the decision, the determining
//! policies and whether evaluation errored; and the engine's whole `Evaluation` must be the
//! same whichever evaluator decided.
//!
//! Requests mix known and unknown agents, tenants and operations, and draw models, tools,
//! regions and the like from the string literals the bundle's policies mention plus random
//! strings, so that both sides of every comparison are exercised.

use cedar_policy::{AuthorizationError, Authorizer, Decision};
use meshos_types::Finding;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use regex::Regex;

use super::{
    CheckRequest, Route, Screened, build_request, context_values, decide, finding_sets,
    request_view,
};
use crate::BundleFile;
use crate::bundle::Bundle;
use crate::detect::{Detectors, EntityClass};
use crate::injection::InjectionVerdict;
use crate::models::{ModelResolution, ModelStatus};
use crate::test_support::hundred_policy_bundle;

/// Random requests per bundle; `DIFF_REQUESTS` overrides it for a longer run.
fn requests() -> usize {
    std::env::var("DIFF_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000)
}

/// Values a random request draws from.
struct Pools {
    tenants: Vec<String>,
    agents: Vec<String>,
    operations: Vec<String>,
    strings: Vec<String>,
    longs: Vec<i64>,
    kinds: Vec<String>,
    pii_kinds: Vec<String>,
    budget_lines: Vec<String>,
}

fn pools(bundle: &Bundle, detectors: &Detectors) -> Pools {
    let policy_text: String = bundle
        .files()
        .iter()
        .filter(|f| f.name.ends_with(".cedar"))
        .map(|f| f.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let captures = |pattern: &str| -> Vec<String> {
        let re = Regex::new(pattern).unwrap();
        let mut found: Vec<String> = re
            .captures_iter(&policy_text)
            .map(|c| c[1].to_string())
            .collect();
        found.sort();
        found.dedup();
        found
    };
    let org: toml::Table = bundle
        .files()
        .iter()
        .find(|f| f.name == "org.toml")
        .map(|f| toml::from_str(&f.text).unwrap())
        .unwrap_or_default();
    let mut agents: Vec<String> = org
        .get("agents")
        .and_then(|a| a.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    agents.extend(["generic-bot", "", "support-bot/x"].map(String::from));
    let mut tenants: Vec<String> = bundle
        .files()
        .iter()
        .filter_map(|f| f.name.strip_prefix("tenants/"))
        .filter_map(|rest| rest.split('/').next())
        .map(String::from)
        .collect();
    tenants.extend(["acme", "globex", "acme/support-bot"].map(String::from));
    let mut operations = captures(r#"Operation::"([^"]*)""#);
    operations.extend(["email.send", "llm.complete", "db.query"].map(String::from));
    let strings = captures(r#""((?:[^"\\]|\\.)*)""#);
    let mut longs = vec![
        0,
        1,
        -1,
        2,
        5,
        10,
        600,
        601,
        i64::MAX,
        i64::MIN,
        i64::MAX / 2,
    ];
    for n in captures(r"[<>]=?\s*(-?\d+)") {
        if let Ok(n) = n.parse::<i64>() {
            longs.extend([n.saturating_sub(1), n, n.saturating_add(1)]);
        }
    }
    let mut kinds: Vec<String> = [EntityClass::Pii, EntityClass::Secret]
        .into_iter()
        .flat_map(|c| detectors.entities_of(c))
        .map(String::from)
        .collect();
    kinds.extend(
        strings
            .iter()
            .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .cloned(),
    );
    kinds.push("NOT_A_KIND".into());
    let pii_kinds: Vec<String> = detectors
        .entities_of(EntityClass::Pii)
        .into_iter()
        .map(String::from)
        .collect();
    let budget_lines = [
        "team:day:cost_usd",
        "agent:month:tokens",
        "agent:day:tokens",
    ]
    .map(String::from)
    .to_vec();
    Pools {
        tenants,
        agents,
        operations,
        strings,
        longs,
        kinds,
        pii_kinds,
        budget_lines,
    }
}

/// One random request, owning what `CheckRequest` borrows.
struct Sample {
    tenant: String,
    agent: String,
    action: String,
    content_len: Option<usize>,
    model: Option<String>,
    tool: Option<String>,
    region: Option<String>,
    region_jurisdictions: Vec<String>,
    budget_exceeded: Vec<String>,
    checks_last_minute: i64,
    rate_limit_exceeded: bool,
    heal_controls: Vec<String>,
    trust_score: Option<i64>,
    screened: Screened,
}

fn pick<T: Clone>(rng: &mut StdRng, items: &[T]) -> T {
    items.choose(rng).cloned().unwrap()
}

fn random_string(rng: &mut StdRng, pools: &Pools) -> String {
    match rng.gen_range(0..10) {
        0 => format!("rnd-{}", rng.gen_range(0..1000)),
        1 => String::new(),
        _ => pick(rng, &pools.strings),
    }
}

/// Present with probability `p`.
fn maybe_string(rng: &mut StdRng, pools: &Pools, p: f64) -> Option<String> {
    rng.gen_bool(p).then(|| random_string(rng, pools))
}

fn subset(rng: &mut StdRng, from: &[String], p: f64) -> Vec<String> {
    from.iter().filter(|_| rng.gen_bool(p)).cloned().collect()
}

fn random_long(rng: &mut StdRng, pools: &Pools) -> i64 {
    match rng.gen_range(0..10) {
        0 => rng.r#gen::<i64>(),
        1..5 => rng.gen_range(0..100),
        _ => pick(rng, &pools.longs),
    }
}

fn sample(rng: &mut StdRng, pools: &Pools, max_content: usize) -> Sample {
    let statuses = [
        ModelStatus::None,
        ModelStatus::Approved,
        ModelStatus::AliasNotAllowed,
        ModelStatus::UnapprovedVersion,
        ModelStatus::Retired,
        ModelStatus::Unknown,
    ];
    let content_len = rng.gen_bool(0.7).then(|| {
        let near = pick(rng, &pools.longs);
        let len = if rng.gen_bool(0.5) {
            usize::try_from(near).unwrap_or(0)
        } else {
            rng.gen_range(0..4096)
        };
        len.min(max_content)
    });
    // Many requests are meant to be allowed, so hostile values come up only now and then.
    let finding_count = if rng.gen_bool(0.6) {
        0
    } else {
        rng.gen_range(1..4)
    };
    let findings: Vec<Finding> = (0..finding_count)
        .map(|i| Finding {
            entity: if rng.gen_bool(0.9) {
                let kinds = if rng.gen_bool(0.7) {
                    &pools.pii_kinds
                } else {
                    &pools.kinds
                };
                pick(rng, kinds)
            } else {
                random_string(rng, pools)
            },
            start: 3 * i,
            end: 3 * i + 2,
            detector: "random".into(),
        })
        .collect();
    let injection = content_len.map(|_| InjectionVerdict {
        flagged: rng.gen_bool(0.15),
        score: rng.gen_range(0.0..1.0),
        category: rng.gen_bool(0.7).then(|| random_string(rng, pools)),
        matches: Vec::new(),
        model_score: None,
    });
    let model = maybe_string(rng, pools, 0.4);
    let region = maybe_string(rng, pools, 0.4);
    let jurisdictions = ["EU", "EEA", "IE", "US", "DE"].map(String::from);
    Sample {
        tenant: if rng.gen_bool(0.7) {
            "acme".into()
        } else {
            pick(rng, &pools.tenants)
        },
        agent: pick(rng, &pools.agents),
        action: match rng.gen_range(0..10) {
            0..4 => pick(rng, &pools.operations),
            4 => random_string(rng, pools),
            _ => pick(rng, &["email.send", "llm.complete", "db.query"]).into(),
        },
        content_len,
        tool: maybe_string(rng, pools, 0.4),
        region_jurisdictions: if region.is_some() && rng.gen_bool(0.6) {
            vec!["EU".into(), "IE".into()]
        } else {
            subset(rng, &jurisdictions, 0.3)
        },
        region,
        budget_exceeded: if rng.gen_bool(0.9) {
            Vec::new()
        } else {
            subset(rng, &pools.budget_lines, 0.5)
        },
        checks_last_minute: random_long(rng, pools),
        trust_score: rng.gen_bool(0.7).then(|| random_long(rng, pools)),
        rate_limit_exceeded: rng.gen_bool(0.1),
        heal_controls: if rng.gen_bool(0.8) {
            Vec::new()
        } else {
            let all: Vec<String> = [
                "quarantined",
                "tool_revoked",
                "overlay_deny",
                "overlay_redact",
                "model_pinned",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            subset(rng, &all, 0.4)
        },
        screened: Screened {
            findings,
            injection,
            model: ModelResolution {
                status: match (&model, rng.gen_range(0..10)) {
                    (None, 0..8) => ModelStatus::None,
                    (Some(_), 0..5) => ModelStatus::Approved,
                    _ => pick(rng, &statuses),
                },
                family: maybe_string(rng, pools, 0.4),
                version: maybe_string(rng, pools, 0.4),
            },
        },
        model,
    }
}

/// What one bundle's run covered.
#[derive(Debug, Default)]
struct Coverage {
    requests: usize,
    compiled: usize,
    errored: usize,
    allowed: usize,
    denied_by_forbid: usize,
}

/// Decides `requests()` random requests both ways and asserts they agree.
fn differential(bundle: &Bundle, seed: u64) -> Coverage {
    let detectors = Detectors::new();
    let pools = pools(bundle, &detectors);
    let max_content = 1_100_000;
    let filler = "x".repeat(max_content);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut coverage = Coverage::default();
    for n in 0..requests() {
        let s = sample(&mut rng, &pools, max_content);
        let req = CheckRequest {
            tenant: &s.tenant,
            agent_id: &s.agent,
            action: &s.action,
            content: s.content_len.map(|len| &filler[..len]),
            model: s.model.as_deref(),
            tool: s.tool.as_deref(),
            region: s.region.as_deref(),
            region_jurisdictions: s.region_jurisdictions.clone(),
            budget_exceeded: s.budget_exceeded.clone(),
            checks_last_minute: s.checks_last_minute,
            rate_limit_exceeded: s.rate_limit_exceeded,
            heal_controls: s.heal_controls.clone(),
            redaction_keys: None,
            arguments: None,
            trust_score: s.trust_score,
            content_source: crate::injection::ContentSource::default(),
        };
        let what = || format!("request #{n} (seed {seed}): {req:?} {:?}", s.screened);
        coverage.requests += 1;

        // The policies' answer, compiled against Cedar.
        let placement = bundle.placement(req.agent_id);
        if let Some(policies) = bundle.slice_for(req.tenant, &placement, req.action)
            && let Some(program) = &policies.compiled
        {
            coverage.compiled += 1;
            let (kinds, classes) = finding_sets(&s.screened.findings, &detectors);
            let context = context_values(
                &req,
                &kinds,
                &classes,
                s.screened.injection.as_ref(),
                &s.screened.model,
            );
            let view = request_view(&req, &placement, &context);
            let (entities, request) = build_request(&view, None).unwrap();
            let response = Authorizer::new().is_authorized(&request, &policies.cedar, &entities);
            let cedar_errored: Vec<String> = response
                .diagnostics()
                .errors()
                .map(|e| match e {
                    AuthorizationError::PolicyEvaluationError(e) => e.policy_id().to_string(),
                })
                .collect();
            match program.evaluate(&view) {
                Err(e) => {
                    coverage.errored += 1;
                    assert!(
                        cedar_errored.contains(&e.policy.to_string()),
                        "compiled errored in {} ({e}), Cedar errored in {cedar_errored:?}: {}",
                        e.policy,
                        what()
                    );
                }
                Ok(answer) => {
                    assert!(
                        cedar_errored.is_empty(),
                        "Cedar errored in {cedar_errored:?}, compiled did not: {}",
                        what()
                    );
                    let cedar_allow = response.decision() == Decision::Allow;
                    assert_eq!(answer.allow, cedar_allow, "decision of {}", what());
                    let mut ours: Vec<String> =
                        answer.determining.iter().map(|id| id.to_string()).collect();
                    let mut theirs: Vec<String> = response
                        .diagnostics()
                        .reason()
                        .map(|id| id.to_string())
                        .collect();
                    ours.sort();
                    theirs.sort();
                    assert_eq!(ours, theirs, "determining policies of {}", what());
                    if answer.allow {
                        coverage.allowed += 1;
                    } else if !ours.is_empty() {
                        coverage.denied_by_forbid += 1;
                    }
                }
            }
        }

        // The engine's whole answer, whichever evaluator decided.
        let fastest = decide(bundle, &detectors, &req, s.screened.clone(), Route::Fastest);
        let cedar = decide(
            bundle,
            &detectors,
            &req,
            s.screened.clone(),
            Route::CedarOnly,
        );
        assert_eq!(fastest, cedar, "evaluation of {}", what());
    }
    coverage
}

fn assert_covers(coverage: &Coverage) {
    eprintln!("{coverage:?}");
    // Most requests must have run compiled, and each kind of answer must have come up.
    assert!(coverage.compiled * 2 > coverage.requests, "{coverage:?}");
    assert!(
        coverage.allowed > 0 && coverage.denied_by_forbid > 0,
        "{coverage:?}"
    );
}

#[test]
fn compiled_matches_cedar_on_the_shipped_bundle() {
    let bundle = Bundle::embedded_default().unwrap();
    assert!(
        bundle
            .all_slice_policies()
            .all(crate::bundle::SlicePolicies::compiled_unless_it_reads_arguments),
        "every slice of the shipped bundle compiles"
    );
    assert_covers(&differential(&bundle, 1));
}

#[test]
fn compiled_matches_cedar_on_the_planted_conflicts_fixture() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../policies/fixtures/planted-conflicts");
    let bundle = Bundle::load_dir(&dir).unwrap();
    assert!(
        bundle
            .all_slice_policies()
            .all(crate::bundle::SlicePolicies::compiled_unless_it_reads_arguments)
    );
    assert_covers(&differential(&bundle, 2));
}

#[test]
fn compiled_matches_cedar_on_the_hundred_policy_bundle() {
    let bundle = hundred_policy_bundle().unwrap();
    assert!(
        bundle
            .all_slice_policies()
            .all(crate::bundle::SlicePolicies::compiled_unless_it_reads_arguments)
    );
    assert_covers(&differential(&bundle, 3));
}

/// Policies using every compiled construct (and one that is not compiled, so its slices fall
/// back to Cedar), on top of the shipped bundle.
const STRESS_POLICIES: &[(&str, &str)] = &[
    (
        "global/stress.cedar",
        r#"
@id("s-arith") @reason("r")
forbid (principal, action == MeshOS::Action::"act", resource)
when { context.checks_last_minute * 3 > 1800 || context.content_bytes + context.checks_last_minute > 5000000 };

@id("s-trust") @reason("r")
forbid (principal, action == MeshOS::Action::"act", resource)
when { context has trust_score && context.trust_score < 30 && context.checks_last_minute > 10 };

@id("s-neg") @reason("r")
forbid (principal, action, resource) when { -context.checks_last_minute > 100 && context.checks_last_minute - 1 < -200 };

@id("s-like") @reason("r")
forbid (principal, action, resource) when { context has tool && context.tool like "raw_*" };

@id("s-if") @reason("r")
permit (principal, action, resource)
when { if context has model then context.model like "*gpt*" else context.content_bytes >= 100 };

@id("s-all") @reason("r")
forbid (principal, action, resource)
when { context.findings.containsAll(["EMAIL", "PHONE"]) && context.region_jurisdictions.isEmpty() };

@id("s-set-eq") @reason("r")
forbid (principal, action, resource)
when { context.region_jurisdictions == ["US"] && context.finding_classes.contains("pii") };

@id("s-in-set") @reason("r")
forbid (principal, action, resource)
when { (principal in [MeshOS::Team::"research", MeshOS::Team::"billing"] || principal in MeshOS::Region::"us") && context.checks_last_minute > 50 };

@id("s-is") @reason("r")
forbid (principal is MeshOS::Agent in MeshOS::Team::"billing", action, resource)
unless { context.model_status == "approved" || context.model_status == "none" };

@id("s-eq-agent") @reason("r")
forbid (principal == MeshOS::Agent::"acme/support-triage", action, resource)
when { context.injection_category != "" };

@id("s-action-in") @reason("r")
permit (principal, action in [MeshOS::Action::"act"], resource is MeshOS::Operation)
when { context.rate_limit_exceeded && context.budget_exceeded.containsAny(["agent:day:tokens"]) };

@id("s-resource") @reason("r")
forbid (principal, action, resource)
when { resource == MeshOS::Operation::"db.query" && !(context has region) };

@id("s-multi") @reason("r")
forbid (principal, action, resource)
when { context.injection_flagged } when { context.injection_category like "*i*" }
unless { context.content_bytes < 10 };

@id("s-nested-if") @reason("r")
forbid (principal, action, resource)
when { (if context.rate_limit_exceeded then context.checks_last_minute else 0) > 1000 };

@id("s-tenant-of") @reason("r")
forbid (principal, action, resource)
when { principal in MeshOS::Tenant::"globex" && context has model_version && context.model_version like "*-*" };
"#,
    ),
    (
        "tenants/acme/stress.cedar",
        r#"
@id("s-tenant-size") @reason("r")
forbid (principal in MeshOS::Tenant::"acme", action, resource) when { context.content_bytes > 1000000 };

@id("s-tenant-approval") @reason("r") @obligation("require_approval") @approver("operator")
permit (principal in MeshOS::Tenant::"acme", action, resource == MeshOS::Operation::"deploy");
"#,
    ),
    (
        "regions/eu/stress.cedar",
        r#"
@id("s-eu-redact") @reason("r") @obligation("redact") @redact_mode("hash")
permit (principal in MeshOS::Region::"eu", action, resource) when { context.findings.contains("PHONE") };
"#,
    ),
    (
        "teams/research/stress.cedar",
        r#"
@id("s-not-compiled") @reason("r")
forbid (principal in MeshOS::Team::"research", action, resource)
when { [context.checks_last_minute, 7].contains(12345) };
"#,
    ),
];

#[test]
fn compiled_matches_cedar_on_every_compiled_construct() {
    let mut files = Bundle::embedded_default().unwrap().files().to_vec();
    files.extend(STRESS_POLICIES.iter().map(|(name, text)| BundleFile {
        name: (*name).into(),
        text: (*text).into(),
    }));
    let bundle = Bundle::from_files(files).unwrap();
    let (compiled, cedar): (Vec<_>, Vec<_>) = bundle
        .all_slice_policies()
        .partition(|s| s.compiled.is_some());
    assert!(!compiled.is_empty() && !cedar.is_empty());
    let coverage = differential(&bundle, 4);
    assert_covers(&coverage);
    // The overflow-prone policies must have errored some of the time.
    assert!(coverage.errored > 0, "{coverage:?}");
}
