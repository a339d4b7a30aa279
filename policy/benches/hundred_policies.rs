//! In-process `evaluate()` with 100 policies spread over the hierarchy (global, a tenant
//! folder, two regions, three teams) and every detector on, as the speed target asks.
//! The bundle is `meshos_policy::test_support::hundred_policy_bundle` (the shipped bundle plus
//! generated policies), which the compiled evaluator's differential tests check too.
//! Each case runs `evaluate()` (compiled policies) and then, for comparison, Cedar alone.
//! Run: `cargo bench -p meshos-policy --bench hundred_policies` (env BENCH_ITERS, default 20000;
//! BENCH_ONLY=plain|prompt for one case; BENCH_ROUTE=compiled|cedar for one evaluator).

use std::time::Instant;

use meshos_policy::test_support::{
    HUNDRED_POLICIES, evaluate_with_cedar_only, hundred_policy_bundle,
};
use meshos_policy::{Bundle, CheckRequest, Detectors, Evaluation, evaluate};

type Evaluator = fn(&Bundle, &Detectors, &CheckRequest<'_>) -> Evaluation;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn main() {
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let bundle = hundred_policy_bundle().expect("the generated bundle validates");
    assert_eq!(bundle.policy_ids().len(), HUNDRED_POLICIES);
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
    let route = std::env::var("BENCH_ROUTE").unwrap_or_default();
    let evaluators: [(&str, Evaluator); 2] = [
        ("compiled", evaluate),
        ("cedar only", evaluate_with_cedar_only),
    ];
    for ((name, content), (evaluator_name, evaluate)) in cases
        .iter()
        .flat_map(|case| evaluators.iter().map(move |e| (*case, *e)))
    {
        if (only == "plain" && content.is_some()) || (only == "prompt" && content.is_none()) {
            continue;
        }
        if (route == "compiled" && evaluator_name != "compiled")
            || (route == "cedar" && evaluator_name != "cedar only")
        {
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
            "  {name:<34} {evaluator_name:<10} p50 {:.1} µs  p99 {:.1} µs  (decision {})",
            percentile(&us, 0.5),
            percentile(&us, 0.99),
            sample.decision.as_str()
        );
    }
}
