//! `meshos demo --fleet random`: a fleet drawn from the seed (`genfleet.rs`), its agents at
//! work (`randagent.rs`), and one fault at a time. After the warm-up each fault is injected, left
//! in the world until every incident matched to it has settled (resolved or escalated) plus a
//! short linger, or until its time limit, then taken out; a quiet gap follows before the next, so
//! every fault starts on a healthy world. With `--faults none` it is a fault-free control run
//! lasting `--timeout-secs` after the warm-up.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use meshos_types::now_ms;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::client::Api;
use crate::fleet::{Fault, FaultKind};
use crate::randagent::RandomWorld;
use crate::{DemoArgs, approve, genfleet, progress, randagent, report, start_server};

/// States an incident is still open in (anything else, including states this demo does not
/// know, counts as settled).
const OPEN_STATES: [&str; 7] = [
    "open",
    "diagnosed",
    "planned",
    "awaiting_approval",
    "executing",
    "verifying",
    "rolled_back",
];

fn is_open(inc: &Value) -> bool {
    inc.get("state")
        .and_then(Value::as_str)
        .is_some_and(|s| OPEN_STATES.contains(&s))
}

/// The simulated operator: lists incidents, prints state changes, approves what waits.
struct Operator {
    seen: BTreeMap<String, String>,
    awaiting_since: BTreeMap<String, Instant>,
    approved: BTreeSet<String>,
    approve: bool,
    approve_after: Duration,
}

impl Operator {
    async fn poll(&mut self, api: &Api, t0: Instant) -> Option<Vec<Value>> {
        let listed = match api.get("/v1/incidents?limit=500").await {
            Ok(v) => v,
            Err(e) => {
                progress(t0, format!("cannot list incidents: {e}"));
                return None;
            }
        };
        let incidents = listed
            .get("incidents")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for inc in &incidents {
            let id = inc
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let state = inc
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if self.seen.get(&id) != Some(&state) {
                progress(
                    t0,
                    format!(
                        "{id} {}: {state}",
                        inc.get("subject").and_then(Value::as_str).unwrap_or("?")
                    ),
                );
                self.seen.insert(id.clone(), state.clone());
                // A new plan waiting (the previous one was approved and failed): a new decision.
                self.approved.remove(&id);
                self.awaiting_since.remove(&id);
            }
            if state == "awaiting_approval" && self.approve && !self.approved.contains(&id) {
                let since = *self
                    .awaiting_since
                    .entry(id.clone())
                    .or_insert_with(Instant::now);
                if since.elapsed() >= self.approve_after {
                    self.approved.insert(id.clone());
                    approve(api, &id, t0).await;
                }
            }
        }
        Some(incidents)
    }

    /// Polls every half second until `until`.
    async fn idle(&mut self, api: &Api, t0: Instant, until: Instant) {
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(500)).await;
            self.poll(api, t0).await;
        }
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<i32> {
    let kinds = FaultKind::parse_list(&args.faults).map_err(anyhow::Error::msg)?;
    if args.rate.is_some() {
        bail!("--rate: a random fleet draws each agent's rate (0.5-3 actions per second)");
    }
    if let Some(n) = args.agents
        && !(10..=40).contains(&n)
    {
        bail!("--agents {n}: expected 10-40 for a random fleet");
    }
    let seed = args.seed.unwrap_or_else(|| rand::thread_rng().r#gen());
    let fleet = genfleet::generate(seed, &kinds, args.agents).map_err(anyhow::Error::msg)?;
    let warmup_secs = args.warmup_secs.unwrap_or(75);
    let (_server, base, token) = match &args.url {
        Some(url) => {
            eprintln!(
                "warning: --url: the server must approve this fleet's drawn model versions \
                 (the demo's own server gets a bundle that does)"
            );
            (None, url.clone(), args.token.clone().unwrap_or_default())
        }
        None => {
            let files = genfleet::policy_files(&fleet).map_err(anyhow::Error::msg)?;
            let (s, b, t) = start_server(seed, args.keep, Some(files)).await?;
            eprintln!(
                "started `meshos serve --healer` at {b} (data: {})",
                s.dir.display()
            );
            (Some(s), b, t)
        }
    };
    let api = Arc::new(Api::new(&base, &token).map_err(anyhow::Error::msg)?);
    let t0 = Instant::now();
    let t0_ms = now_ms();
    let world = Arc::new(RandomWorld::default());
    let stop = CancellationToken::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut agents = tokio::task::JoinSet::new();
    for spec in fleet.agents.clone() {
        let (api, world, stop) = (api.clone(), world.clone(), stop.clone());
        let agent_seed = rng.r#gen::<u64>();
        agents.spawn(async move {
            let id = spec.id.clone();
            (id, randagent::run(api, world, spec, agent_seed, stop).await)
        });
    }
    let rate: f64 = fleet.agents.iter().map(|a| a.rate_per_sec).sum();
    progress(
        t0,
        format!(
            "random fleet (seed {seed}): {} agents ({rate:.1} actions/s in all), tools {}, \
             models {}, regions {}; warm-up {warmup_s}s; faults: {}",
            fleet.agents.len(),
            fleet.tools.join(" "),
            fleet
                .families
                .iter()
                .flat_map(|f| f.versions.iter().cloned())
                .collect::<Vec<_>>()
                .join(" "),
            fleet
                .agents
                .iter()
                .map(|a| a.home_region.as_str())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(" "),
            if fleet.faults.is_empty() {
                "none (control run)".to_string()
            } else {
                fleet
                    .faults
                    .iter()
                    .map(|f| format!("{} at {}", f.kind.as_str(), f.root_cause))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            warmup_s = warmup_secs,
        ),
    );
    let mut op = Operator {
        seen: BTreeMap::new(),
        awaiting_since: BTreeMap::new(),
        approved: BTreeSet::new(),
        approve: !args.no_approve,
        approve_after: Duration::from_secs(args.approve_after_secs),
    };
    let warmup_end = t0 + Duration::from_secs(warmup_secs);
    op.idle(&api, t0, warmup_end).await;

    let mut injected: Vec<Fault> = Vec::new();
    for planned in &fleet.faults {
        let fault = Fault {
            kind: planned.kind,
            root_cause: planned.root_cause.clone(),
            agents: planned.agents.clone(),
            started_at_ms: now_ms(),
            ended_at_ms: None,
            human_fix_expected: planned.human_fix_expected,
            magnitude: serde_json::to_value(planned.magnitude).unwrap_or(Value::Null),
            timed_out: false,
        };
        progress(
            t0,
            format!(
                "fault injected: {} at {} ({}); {}",
                planned.kind.as_str(),
                planned.root_cause,
                planned.agents.join(", "),
                fault.magnitude
            ),
        );
        world.set(Some(planned.clone()));
        injected.push(fault);
        let idx = injected.len() - 1;
        let began = Instant::now();
        let mut settled_since: Option<Instant> = None;
        let timed_out = loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if began.elapsed() >= Duration::from_secs(args.fault_timeout_secs) {
                break true;
            }
            let Some(incidents) = op.poll(&api, t0).await else {
                continue;
            };
            let mine: Vec<&Value> = incidents
                .iter()
                .filter(|inc| !report::is_observation(inc))
                .filter(|inc| report::fault_of(inc, &injected) == Some(idx))
                .collect();
            let settled = !mine.is_empty() && mine.iter().all(|inc| !is_open(inc));
            if !settled {
                settled_since = None;
                continue;
            }
            let since = *settled_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_secs(args.linger_secs) {
                break false;
            }
        };
        world.set(None);
        if let Some(f) = injected.last_mut() {
            f.ended_at_ms = Some(now_ms());
            f.timed_out = timed_out;
        }
        progress(
            t0,
            format!(
                "fault ended: {} at {}{}",
                planned.kind.as_str(),
                planned.root_cause,
                if timed_out {
                    " (timed out: its incidents had not settled)"
                } else {
                    ""
                }
            ),
        );
        op.idle(
            &api,
            t0,
            Instant::now() + Duration::from_secs(args.gap_secs),
        )
        .await;
    }
    if fleet.faults.is_empty() {
        op.idle(
            &api,
            t0,
            warmup_end + Duration::from_secs(args.timeout_secs),
        )
        .await;
    }

    let (fleet_stats, views) = crate::finish_run(&api, &stop, agents).await?;
    let report = report::build_with(
        seed,
        fleet.agents.len(),
        t0.elapsed().as_secs_f64(),
        &injected,
        &views,
        fleet_stats,
        "random",
        Some(genfleet::summary(&fleet)),
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::render(&report, &views, t0_ms));
        crate::print_summary(&report);
    }
    Ok(0)
}
