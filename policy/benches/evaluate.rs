//! In-process policy evaluation (Cedar + content detectors), no storage or transport.
//! Run: `cargo bench -p meshos-policy --bench evaluate` (env BENCH_ITERS, default 20000).

use std::time::Instant;

use meshos_policy::{Bundle, CheckRequest, Detectors, evaluate};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn main() {
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let bundle = Bundle::embedded_default().expect("shipped bundle");
    let detectors = Detectors::new();
    let mut prompt =
        String::from("Customer jane.doe@example.com (card 4111 1111 1111 1111) writes: ");
    while prompt.len() < 2048 {
        prompt.push_str("please summarise my last three orders and the delivery status. ");
    }
    prompt.truncate(2048);
    let eu = vec!["EU".to_string(), "EEA".to_string(), "IE".to_string()];
    let cases = [
        ("plain action, no content", None),
        ("2 KiB prompt with PII, EU region", Some(prompt.as_str())),
    ];
    println!(
        "in-process evaluate() with the shipped bundle ({} policies), {iters} iterations",
        bundle.policy_ids().len()
    );
    for (name, content) in cases {
        let req = CheckRequest {
            tenant: "bench",
            agent_id: "agent",
            action: "llm.complete",
            content,
            model: Some("gpt-4o-mini"),
            tool: None,
            region: Some("aws:eu-west-1"),
            region_jurisdictions: eu.clone(),
            ..Default::default()
        };
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
            "  {name:<34} p50 {:.1} µs  p99 {:.1} µs",
            percentile(&us, 0.5),
            percentile(&us, 0.99)
        );
    }
}
