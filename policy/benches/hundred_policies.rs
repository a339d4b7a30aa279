//! In-process `evaluate()` with 100 policies spread over the hierarchy (global, a tenant
//! folder, two regions, three teams) and every detector on, as the speed target asks.
//! The shipped bundle is the base; the rest are generated policies of the shapes real bundles
//! have (operation and tool deny-lists, region pins, model-family rules, content-size rules,
//! approval gates), all validated against the shipped schema.
//! Run: `cargo bench -p meshos-policy --bench hundred_policies` (env BENCH_ITERS, default 20000;
//! BENCH_ONLY=plain|prompt for one case).

use std::time::Instant;

use meshos_policy::{Bundle, BundleFile, CheckRequest, Detectors, evaluate};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/default");
const TARGET_POLICIES: usize = 100;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn act(principal: &str) -> String {
    format!("({principal}, action == MeshOS::Action::\"act\", resource")
}

/// Generated policies for `level` (a bundle path prefix) and its principal scope.
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

fn hundred_policy_bundle() -> Bundle {
    let mut files = meshos_policy::read_bundle_files(std::path::Path::new(SHIPPED))
        .expect("the shipped bundle is readable");
    let shipped = Bundle::from_files(files.clone())
        .expect("shipped bundle")
        .policy_ids()
        .len();
    // Extra policies per level; global takes what is left to reach the target.
    let lower = [
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
    let lower_total: usize = lower.iter().map(|(_, _, n)| n).sum();
    let global = TARGET_POLICIES - shipped - lower_total;
    files.push(BundleFile {
        name: "global/generated.cedar".into(),
        text: generated("global", "principal", global),
    });
    for (level, scope, n) in lower {
        files.push(BundleFile {
            name: format!("{level}/generated.cedar"),
            text: generated(level, scope, n),
        });
    }
    let bundle = Bundle::from_files(files).expect("the generated bundle validates");
    assert_eq!(bundle.policy_ids().len(), TARGET_POLICIES);
    bundle
}

fn main() {
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let bundle = hundred_policy_bundle();
    let detectors = Detectors::new();
    let mut prompt =
        String::from("Customer jane.doe@example.com (card 4111 1111 1111 1111) writes: ");
    while prompt.len() < 2048 {
        prompt.push_str("please summarise my last three orders and the delivery status. ");
    }
    prompt.truncate(2048);
    let eu = vec!["EU".to_string(), "EEA".to_string(), "IE".to_string()];
    println!(
        "in-process evaluate() with {} policies (support-bot's path: global + tenant acme + region eu + team support), {iters} iterations",
        bundle.policy_ids().len()
    );
    let cases = [
        ("plain action, no content", None),
        ("2 KiB prompt with PII, EU region", Some(prompt.as_str())),
    ];
    // BENCH_ONLY=plain or BENCH_ONLY=prompt runs one case (for profiling).
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    for (name, content) in cases {
        if (only == "plain" && content.is_some()) || (only == "prompt" && content.is_none()) {
            continue;
        }
        let req = CheckRequest {
            tenant: "acme",
            agent_id: "support-bot",
            action: "llm.complete",
            content,
            model: Some("gpt-4o-mini"),
            region: Some("aws:eu-west-1"),
            region_jurisdictions: eu.clone(),
            ..Default::default()
        };
        let sample = evaluate(&bundle, &detectors, &req);
        for _ in 0..1000 {
            std::hint::black_box(evaluate(&bundle, &detectors, &req));
        }
        let mut us = Vec::with_capacity(iters);
        for _ in 0..iters {
            let t = Instant::now();
            std::hint::black_box(evaluate(&bundle, &detectors, &req));
            us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        us.sort_by(f64::total_cmp);
        println!(
            "  {name:<34} p50 {:.1} µs  p99 {:.1} µs  (decision {})",
            percentile(&us, 0.5),
            percentile(&us, 0.99),
            sample.decision.as_str()
        );
    }
}
