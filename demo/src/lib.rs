//! `meshos demo`: a simulated fleet of agents against a real `meshos serve --healer` (started
//! here on a fresh data directory, or one given with `--url`), through its REST interface. It
//! injects the faults the playbook library covers, one after another, approves what waits for an
//! operator (as an operator would, through REST), and prints each incident's timeline. With
//! `--json` it prints the run's report instead; `bench/heal/run.py` aggregates those over seeds
//! and fault-free control runs.

mod client;
mod fleet;
mod genfleet;
mod randagent;
mod random;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use meshos_types::now_ms;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use client::Api;
use fleet::{Fault, FaultKind, World};

const TENANT: &str = "demo";

/// Which simulated fleet to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FleetKind {
    /// 24 agents with fixed tools (search, browser, kb, …), models and regions; faults 8 s apart.
    Classic,
    /// A fleet drawn from the seed (15–25 agents, their own tools, model versions, regions,
    /// rates and fault magnitudes); one fault at a time after a 75 s warm-up.
    Random,
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Seed of the fleet's roles, the order of the faults and every random draw [default: random].
    #[arg(long)]
    seed: Option<u64>,
    /// The fleet: `classic` or `random` (drawn from the seed, faults one at a time).
    #[arg(long, value_enum, default_value_t = FleetKind::Classic)]
    fleet: FleetKind,
    /// Agents in the fleet (classic: at least 20, default 24; random: 10-40, default drawn 15-25).
    #[arg(long)]
    agents: Option<usize>,
    /// Faults to inject: `all`, `none` (a fault-free control run), or a comma-separated list of
    /// pii_leak, injection_campaign, model_regression, cost_spike, region_latency, tool_outage.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Seconds of normal traffic before the first fault (the drift detectors' baseline)
    /// [default: 30 classic, 75 random].
    #[arg(long)]
    warmup_secs: Option<u64>,
    /// Seconds between two faults (classic).
    #[arg(long, default_value_t = 8)]
    stagger_secs: u64,
    /// Random fleet: quiet seconds between one fault's end and the next fault.
    #[arg(long, default_value_t = 20)]
    gap_secs: u64,
    /// Random fleet: seconds a fault stays after its incidents settled (a reopening would show)
    /// before it is taken out of the world.
    #[arg(long, default_value_t = 10)]
    linger_secs: u64,
    /// Random fleet: a fault whose incidents have not settled this long after it began is ended
    /// and marked timed out.
    #[arg(long, default_value_t = 180)]
    fault_timeout_secs: u64,
    /// Give up this many seconds after the last fault (a control run lasts this long after the
    /// warm-up).
    #[arg(long, default_value_t = 150)]
    timeout_secs: u64,
    /// Actions per second per agent (classic, default 2.5; a random fleet draws 0.5-3 per agent).
    #[arg(long)]
    rate: Option<f64>,
    /// Do not approve plans that wait for an operator (they then expire and escalate).
    #[arg(long)]
    no_approve: bool,
    /// Seconds the simulated operator takes to approve a plan.
    #[arg(long, default_value_t = 3)]
    approve_after_secs: u64,
    /// Use a running server instead of starting one (needs --token, an operator token).
    #[arg(long, requires = "token")]
    url: Option<String>,
    #[arg(long, env = "MESHOS_DEMO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Keep the started server's data directory (its database, ledger and log).
    #[arg(long)]
    keep: bool,
    /// Print the run's report as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    json: bool,
}

/// `meshos serve --healer` as a child process on a fresh data directory; killed on drop.
struct ChildServer {
    child: std::process::Child,
    dir: PathBuf,
    keep: bool,
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Starts `meshos serve --healer` on a fresh data directory; with `policy`, on that bundle
/// (written to the data directory) instead of the shipped one.
async fn start_server(
    seed: u64,
    keep: bool,
    policy: Option<Vec<(String, String)>>,
) -> anyhow::Result<(ChildServer, String, String)> {
    let exe = std::env::current_exe().context("cannot find the meshos binary to start")?;
    let dir = std::env::temp_dir().join(format!("meshos-demo-{seed}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut policy_args: Vec<std::ffi::OsString> = Vec::new();
    if let Some(files) = policy {
        let pdir = dir.join("policy");
        for (name, text) in files {
            let path = pdir.join(&name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        policy_args.push("--policy-dir".into());
        policy_args.push(pdir.into_os_string());
    }
    let token = std::process::Command::new(&exe)
        .args([
            "token",
            "create",
            "--tenant",
            TENANT,
            "--role",
            "operator",
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .context("cannot run `meshos token create`")?;
    if !token.status.success() {
        bail!(
            "`meshos token create` failed: {}",
            String::from_utf8_lossy(&token.stderr)
        );
    }
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("cannot find a free port")?
        .port();
    let log = std::fs::File::create(dir.join("serve.log"))?;
    let child = std::process::Command::new(&exe)
        .args([
            "serve",
            "--healer",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&dir)
        .args(&policy_args)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start `meshos serve --healer`")?;
    let server = ChildServer { child, dir, keep };
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the server did not become healthy within 60 s; see {}",
                server.dir.join("serve.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok((server, base, token))
}

fn progress(t0: Instant, line: impl AsRef<str>) {
    eprintln!("[+{:>6.1}s] {}", t0.elapsed().as_secs_f64(), line.as_ref());
}

/// The region the region group's agents are routed to right now: the fault degrades it.
async fn routed_region(api: &Api, spec: &fleet::AgentSpec) -> anyhow::Result<String> {
    let route = api
        .post(
            "/v1/carbon/route",
            &json!({"model": spec.model_family, "input_tokens": 1200, "output_tokens": 300,
                    "residency": spec.residency, "carbon_weight": 0.5}),
        )
        .await
        .map_err(anyhow::Error::msg)?;
    route
        .pointer("/choice/region")
        .and_then(Value::as_str)
        .map(str::to_string)
        .context("carbon_route returned no region")
}

pub async fn run(args: DemoArgs) -> anyhow::Result<i32> {
    if args.fleet == FleetKind::Random {
        return random::run(args).await;
    }
    let kinds = FaultKind::parse_list(&args.faults).map_err(anyhow::Error::msg)?;
    let n_agents = args.agents.unwrap_or(24);
    let rate = args.rate.unwrap_or(2.5);
    let warmup_secs = args.warmup_secs.unwrap_or(30);
    if n_agents < 20 {
        bail!(
            "--agents {n_agents}: expected at least 20 (each fault needs its own group of agents)"
        );
    }
    if !(0.1..=20.0).contains(&rate) {
        bail!("--rate {rate}: expected 0.1-20 actions per second per agent");
    }
    let seed = args.seed.unwrap_or_else(|| rand::thread_rng().r#gen());
    let (_server, base, token) = match &args.url {
        Some(url) => (None, url.clone(), args.token.clone().unwrap_or_default()),
        None => {
            let (s, b, t) = start_server(seed, args.keep, None).await?;
            eprintln!(
                "started `meshos serve --healer` at {b} (data: {})",
                s.dir.display()
            );
            (Some(s), b, t)
        }
    };
    let api = Arc::new(Api::new(&base, &token).map_err(anyhow::Error::msg)?);
    let mut rng = StdRng::seed_from_u64(seed);
    let roles = fleet::roles(n_agents, &mut rng);
    let mut order = kinds.clone();
    {
        use rand::seq::SliceRandom;
        order.shuffle(&mut rng);
    }

    let t0 = Instant::now();
    let t0_ms = now_ms();
    let world = Arc::new(World::default());
    let stop = CancellationToken::new();
    let mut agents = tokio::task::JoinSet::new();
    for spec in roles.agents.clone() {
        let (api, world, stop) = (api.clone(), world.clone(), stop.clone());
        let agent_seed = rng.r#gen::<u64>();
        agents.spawn(async move {
            let id = spec.id.clone();
            (
                id,
                fleet::run_agent(api, world, spec, agent_seed, rate, stop).await,
            )
        });
    }
    progress(
        t0,
        format!(
            "{} agents acting against {base} (seed {seed}); faults: {}",
            roles.agents.len(),
            if order.is_empty() {
                "none (control run)".to_string()
            } else {
                order
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
    );

    let warmup_end = t0 + Duration::from_secs(warmup_secs);
    let mut next_fault = warmup_end;
    let mut pending: Vec<FaultKind> = order.clone();
    let mut deadline = warmup_end
        + Duration::from_secs(args.stagger_secs * order.len() as u64 + args.timeout_secs);
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut awaiting_since: BTreeMap<String, Instant> = BTreeMap::new();
    let mut approved: BTreeSet<String> = BTreeSet::new();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if !pending.is_empty() && Instant::now() >= next_fault {
            let kind = pending.remove(0);
            let fault = match kind {
                FaultKind::PiiLeak => (
                    format!("agent:{}", roles.leaker),
                    vec![roles.leaker.clone()],
                ),
                FaultKind::CostSpike => (
                    format!("agent:{}", roles.spender),
                    vec![roles.spender.clone()],
                ),
                FaultKind::InjectionCampaign => {
                    ("tool:browser".to_string(), roles.browser_users.clone())
                }
                FaultKind::ToolOutage => ("tool:search".to_string(), roles.search_users.clone()),
                FaultKind::ModelRegression => (
                    "model:gpt-4o-2024-11-20".to_string(),
                    roles.new_model_users.clone(),
                ),
                FaultKind::RegionLatency => {
                    let spec = roles
                        .agents
                        .iter()
                        .find(|a| roles.region_group.contains(&a.id))
                        .context("the fleet has no region group")?;
                    let region = routed_region(&api, spec).await?;
                    (format!("region:{region}"), roles.region_group.clone())
                }
            };
            let fault = Fault {
                kind,
                root_cause: fault.0,
                agents: fault.1,
                started_at_ms: now_ms(),
                ended_at_ms: None,
                human_fix_expected: kind == FaultKind::PiiLeak,
                magnitude: Value::Null,
                timed_out: false,
            };
            progress(
                t0,
                format!(
                    "fault injected: {} at {} ({})",
                    kind.as_str(),
                    fault.root_cause,
                    fault.agents.join(", ")
                ),
            );
            world.inject(fault);
            next_fault = Instant::now() + Duration::from_secs(args.stagger_secs);
        }
        let listed = match api.get("/v1/incidents?limit=500").await {
            Ok(v) => v,
            Err(e) => {
                progress(t0, format!("cannot list incidents: {e}"));
                continue;
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
            if seen.get(&id) != Some(&state) {
                progress(
                    t0,
                    format!(
                        "{id} {}: {state}",
                        inc.get("subject").and_then(Value::as_str).unwrap_or("?")
                    ),
                );
                seen.insert(id.clone(), state.clone());
                // A new plan waiting (the previous one was approved and failed): a new decision.
                approved.remove(&id);
                awaiting_since.remove(&id);
            }
            if state == "awaiting_approval" && !args.no_approve && !approved.contains(&id) {
                let since = *awaiting_since
                    .entry(id.clone())
                    .or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_secs(args.approve_after_secs) {
                    approved.insert(id.clone());
                    approve(&api, &id, t0).await;
                }
            }
        }
        let injected = world.injected();
        let all_injected = pending.is_empty();
        if all_injected && order.is_empty() && Instant::now() >= deadline {
            break;
        }
        if all_injected && !order.is_empty() {
            let settled = injected.iter().all(|f| {
                incidents.iter().any(|inc| {
                    report::fault_of(inc, &injected).is_some_and(|i| injected[i].kind == f.kind)
                        && matches!(
                            inc.get("state").and_then(Value::as_str),
                            Some("resolved" | "escalated")
                        )
                })
            });
            let open = incidents.iter().any(|inc| {
                !matches!(
                    inc.get("state").and_then(Value::as_str),
                    Some("resolved" | "escalated")
                )
            });
            if settled && !open {
                // A little more traffic: an incident that reopens would show here.
                deadline = deadline.min(Instant::now() + Duration::from_secs(5));
            }
            if Instant::now() >= deadline {
                break;
            }
        }
    }
    let (fleet_stats, views) = finish_run(&api, &stop, agents).await?;
    let report = report::build(
        seed,
        roles.agents.len(),
        t0.elapsed().as_secs_f64(),
        &world.injected(),
        &views,
        fleet_stats,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::render(&report, &views, t0_ms));
        print_summary(&report);
    }
    Ok(0)
}

/// Stops the fleet and collects what the report needs: each agent's counters, and the view of
/// every incident and observation (a plain list leaves observations out, so they are asked for).
async fn finish_run(
    api: &Api,
    stop: &CancellationToken,
    mut agents: tokio::task::JoinSet<(String, fleet::AgentStats)>,
) -> anyhow::Result<(BTreeMap<String, fleet::AgentStats>, Vec<Value>)> {
    stop.cancel();
    let mut fleet_stats = BTreeMap::new();
    while let Some(joined) = agents.join_next().await {
        if let Ok((id, stats)) = joined {
            fleet_stats.insert(id, stats);
        }
    }
    let mut views = Vec::new();
    for query in [
        "/v1/incidents?limit=500",
        "/v1/incidents?state=observed&limit=500",
    ] {
        let listed = api.get(query).await.map_err(anyhow::Error::msg)?;
        for inc in listed
            .get("incidents")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let id = inc.get("id").and_then(Value::as_str).unwrap_or_default();
            let shown = api
                .get(&format!("/v1/incidents/{id}"))
                .await
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("reading incident {id}"))?;
            views.push(shown.get("incident").cloned().unwrap_or(Value::Null));
        }
    }
    Ok((fleet_stats, views))
}

async fn approve(api: &Api, id: &str, t0: Instant) {
    let shown = match api.get(&format!("/v1/incidents/{id}")).await {
        Ok(v) => v,
        Err(e) => return progress(t0, format!("cannot read {id}: {e}")),
    };
    let Some(digest) = shown
        .pointer("/incident/data/approval/digest")
        .and_then(Value::as_str)
    else {
        return progress(t0, format!("{id} awaits approval but shows no plan digest"));
    };
    let playbook = shown
        .pointer("/incident/data/plan/playbook_id")
        .and_then(Value::as_str)
        .unwrap_or("?");
    match api
        .post(
            &format!("/v1/incidents/{id}/approve"),
            &json!({"digest": digest, "note": "demo operator: plan reviewed"}),
        )
        .await
    {
        Ok(_) => progress(
            t0,
            format!("operator approved {playbook} for {id} (plan {digest:.12}…)"),
        ),
        Err(e) => progress(t0, format!("approving {id} failed: {e}")),
    }
}

fn print_summary(r: &report::Report) {
    let resolved = r
        .faults
        .iter()
        .filter(|f| f.state.as_deref() == Some("resolved"))
        .count();
    let selfr = r.faults.iter().filter(|f| f.self_resolved).count();
    let correct = r.faults.iter().filter(|f| f.diagnosis_correct).count();
    let mttr: Vec<f64> = r.faults.iter().filter_map(|f| f.mttr_seconds).collect();
    let duplicates: usize = r.faults.iter().map(|f| f.duplicates.len()).sum();
    println!(
        "faults: {}; resolved: {resolved}; without a human: {selfr}; diagnosis correct: {correct}; \
         MTTR p50 {} p95 {}; false incidents: {}; duplicates: {duplicates}; \
         controls on healthy entities: {}",
        r.faults.len(),
        report::quantile(&mttr, 0.5).map_or("-".into(), |v| format!("{v:.1} s")),
        report::quantile(&mttr, 0.95).map_or("-".into(), |v| format!("{v:.1} s")),
        r.false_incidents.len(),
        r.healthy_controls.len()
    );
}
