//! In-process cost of the live trust path: observe + score per event, and score alone. Run
//! with `cargo bench -p meshos-trust --bench score`. One core, release build.

use std::hint::black_box;
use std::time::Instant;

use meshos_trust::drift::{AgentDrift, DriftConfig};
use meshos_trust::{AgentTrust, DecisionSample, EventSample, TrustParams};
use meshos_types::{Outcome, Verdict};

const NOW: i64 = 1_800_000_000_000;

fn events(n: usize) -> Vec<EventSample> {
    (0..n)
        .map(|i| EventSample {
            at_ms: NOW + i as i64 * 7,
            kind: if i % 10 == 0 { "eval" } else { "llm_call" }.to_string(),
            outcome: match i % 50 {
                0 => Outcome::Violation,
                1..=3 => Outcome::Error,
                _ => Outcome::Ok,
            },
            latency_ms: Some(120.0 + (i % 17) as f64),
            input_tokens: Some(700 + (i % 101) as i64),
            output_tokens: Some(120),
            cost_usd: Some(0.008),
        })
        .collect()
}

fn decisions(n: usize) -> Vec<DecisionSample> {
    let actions = [
        "search.web",
        "payments.refund",
        "db.read",
        "crm.update",
        "shell.exec",
    ];
    (0..n)
        .map(|i| DecisionSample {
            at_ms: NOW + i as i64 * 7,
            verdict: if i % 20 == 0 {
                Verdict::Deny
            } else {
                Verdict::Allow
            },
            finding_kinds: if i % 5 == 0 {
                vec!["EMAIL".to_string()]
            } else {
                vec![]
            },
            action: actions[i % actions.len()].to_string(),
        })
        .collect()
}

fn rate(label: &str, n: usize, seconds: f64) {
    println!(
        "| {label} | {n} | {:.0} | {:.3} |",
        n as f64 / seconds,
        seconds * 1e9 / n as f64 / 1000.0
    );
}

fn main() {
    let p = TrustParams::default();
    let evs = events(1_000_000);
    let ds = decisions(1_000_000);
    println!("| path | operations | per second (one core) | µs each |");
    println!("|---|---|---|---|");

    let mut t = AgentTrust::new();
    let start = Instant::now();
    for e in &evs {
        t.observe_event(black_box(e), &p);
    }
    rate("observe_event", evs.len(), start.elapsed().as_secs_f64());
    black_box(&t);

    let mut t = AgentTrust::new();
    let start = Instant::now();
    for d in &ds {
        t.observe_decision(black_box(d), &p);
    }
    rate(
        "observe_decision (action + findings)",
        ds.len(),
        start.elapsed().as_secs_f64(),
    );

    let n = 200_000;
    let mut t = AgentTrust::new();
    let start = Instant::now();
    for e in &evs[..n] {
        t.observe_event(e, &p);
        black_box(t.score(0, e.at_ms, &p));
    }
    rate(
        "observe_event + score (mixed outcomes: Beta inverse CDF)",
        n,
        start.elapsed().as_secs_f64(),
    );

    let mut t = AgentTrust::new();
    let start = Instant::now();
    for d in &ds[..n] {
        t.observe_decision(d, &p);
        black_box(t.score(0, d.at_ms, &p));
    }
    rate(
        "observe_decision + score (no outcomes: closed-form AR)",
        n,
        start.elapsed().as_secs_f64(),
    );

    let mut t = AgentTrust::new();
    let start = Instant::now();
    for e in &evs[..n] {
        t.observe_event(e, &p);
        black_box(t.summary(0, e.at_ms, &p));
    }
    rate(
        "observe_event + summary (numbers only; mixed outcomes)",
        n,
        start.elapsed().as_secs_f64(),
    );

    let cfg = DriftConfig::default();
    let mut t = AgentTrust::new();
    let mut drift = AgentDrift::new();
    let start = Instant::now();
    for e in &evs[..n] {
        t.observe_event(e, &p);
        black_box(drift.observe(e, &cfg));
        black_box(t.score(0, e.at_ms, &p));
    }
    rate(
        "observe_event + drift.observe + score",
        n,
        start.elapsed().as_secs_f64(),
    );

    let mut drift = AgentDrift::new();
    let start = Instant::now();
    for e in &evs {
        black_box(drift.observe(black_box(e), &cfg));
    }
    rate(
        "drift.observe alone",
        evs.len(),
        start.elapsed().as_secs_f64(),
    );

    let mut t = AgentTrust::new();
    for e in &evs[..10_000] {
        t.observe_event(e, &p);
    }
    for d in &ds[..10_000] {
        t.observe_decision(d, &p);
    }
    let start = Instant::now();
    for i in 0..n {
        black_box(t.score(2, NOW + 70_000 + i as i64, &p));
    }
    rate(
        "score alone (r, s > 0: Beta inverse CDF, 5 actions, 1 class)",
        n,
        start.elapsed().as_secs_f64(),
    );

    let start = Instant::now();
    for i in 0..n {
        black_box(t.summary(2, NOW + 70_000 + i as i64, &p));
    }
    rate("summary alone (r, s > 0)", n, start.elapsed().as_secs_f64());

    let mut flawless = AgentTrust::new();
    for e in evs[..10_000].iter().filter(|e| e.outcome == Outcome::Ok) {
        flawless.observe_event(e, &p);
    }
    let start = Instant::now();
    for i in 0..n {
        black_box(flawless.score(0, NOW + 70_000 + i as i64, &p));
    }
    rate(
        "score alone (s = 0: closed-form AR)",
        n,
        start.elapsed().as_secs_f64(),
    );
}
