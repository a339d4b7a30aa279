//! `meshos evals …`: run a suite and print its scored report, list suites and runs, show a run,
//! compare two runs, pin a baseline, and manage cron schedules — against the store directly, as
//! an admin of `--tenant` (whoever holds the database holds the deployment).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use meshos_evals::Suite;
use meshos_evals::report::render_comparison;
use meshos_evals::run::{Cache, DEFAULT_MEMORY_ENTRIES as CACHE_MEMORY_ENTRIES, Progress};
use meshos_service::Mesh;
use meshos_service::evals::{EvalRunOptions, TargetOverride};
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum EvalsCommand {
    /// Run a suite (an id from the suites directory, or a path to a suite file) and print its
    /// scored report, compared with the suite's pinned baseline when there is one.
    Run {
        suite: String,
        #[arg(long)]
        tenant: String,
        /// Print the run as JSON instead of a report.
        #[arg(long)]
        json: bool,
        /// Exit with status 1 when the run is significantly worse than the pinned baseline.
        #[arg(long)]
        fail_on_regression: bool,
        /// Answer with this OpenAI-compatible endpoint instead of the suite's target (up to and
        /// including /v1), e.g. a local model server.
        #[arg(long, requires = "model")]
        target_url: Option<String>,
        /// The model to ask at --target-url.
        #[arg(long)]
        model: Option<String>,
        /// Environment variable holding the API key for --target-url.
        #[arg(long)]
        api_key_env: Option<String>,
        /// Pin this run as the suite's baseline once it completes.
        #[arg(long)]
        pin_baseline: bool,
        /// Answer requests identical to earlier ones (same target, model and messages) from the
        /// cache in DATA_DIR/eval-cache instead of the target: to iterate on scorers cheaply.
        #[arg(long)]
        cache: bool,
    },
    /// The suites in the suites directory and the tenant's recent runs.
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        suite: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// A run with every item's scores.
    Show {
        run: String,
        #[arg(long)]
        tenant: String,
    },
    /// Compare run B with run A on the items both scored: McNemar's exact test for pass/fail,
    /// Wilcoxon signed-rank and a paired bootstrap for scores, Holm-adjusted.
    Compare {
        run_a: String,
        run_b: String,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
        /// Exit with status 1 when B is significantly worse than A.
        #[arg(long)]
        fail_on_regression: bool,
    },
    /// Pin a completed run as its suite's baseline (later runs are compared with it).
    Baseline {
        run: String,
        #[arg(long)]
        tenant: String,
    },
    /// Cron schedules, fired by `meshos serve` (one replica at a time).
    Schedule {
        #[command(subcommand)]
        command: ScheduleCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Run SUITE on a cron expression (6 or 7 fields, seconds first), read in a time zone.
    Add {
        suite: String,
        #[arg(long)]
        cron: String,
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// Fires missed while no server ran: `skip` them, or run `once`.
        #[arg(long, default_value = "skip")]
        catch_up: String,
        #[arg(long)]
        tenant: String,
    },
    List {
        #[arg(long)]
        tenant: String,
    },
    Remove {
        id: String,
        #[arg(long)]
        tenant: String,
    },
}

/// A progress bar on a terminal (hidden otherwise).
fn progress_bar() -> (
    indicatif::ProgressBar,
    Arc<dyn meshos_evals::run::ProgressSink>,
) {
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} items, {msg} {elapsed}")
    {
        bar.set_style(style);
    }
    let sink_bar = bar.clone();
    let sink = Arc::new(move |p: Progress| {
        sink_bar.set_length(p.total as u64);
        sink_bar.set_position(p.done as u64);
        sink_bar.set_message(format!("{} failed", p.failed));
    });
    (bar, sink)
}

/// Runs the command; returns the process exit status.
pub async fn evals_cli(mesh: Mesh, data_dir: &Path, command: EvalsCommand) -> anyhow::Result<i32> {
    match command {
        EvalsCommand::Run {
            suite,
            tenant,
            json,
            fail_on_regression,
            target_url,
            model,
            api_key_env,
            pin_baseline,
            cache,
        } => {
            let principal = crate::cli_admin(&tenant);
            let cache = if cache {
                let dir = data_dir.join("eval-cache");
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                let opened = Cache::open_dir(&dir, CACHE_MEMORY_ENTRIES)
                    .map_err(|e| anyhow::anyhow!("the eval cache in {}: {e}", dir.display()))?;
                Some(Arc::new(opened))
            } else {
                None
            };
            let (bar, progress) = progress_bar();
            let options = EvalRunOptions {
                target: target_url.map(|base_url| TargetOverride {
                    base_url,
                    model: model.unwrap_or_default(),
                    api_key_env,
                }),
                progress: Some(progress),
                cache: cache.clone(),
                ..EvalRunOptions::default()
            };
            let outcome = if suite.ends_with(".yaml") || suite.ends_with(".yml") {
                let loaded = Suite::load(Path::new(&suite))
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .context("the suite file was refused")?;
                mesh.run_loaded_eval(&principal, &loaded, options).await
            } else {
                mesh.run_eval(&principal, &suite, options).await
            }?;
            bar.finish_and_clear();
            if pin_baseline && outcome.run.status == "completed" {
                mesh.pin_eval_baseline(&principal, &outcome.run.id).await?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&outcome)?);
            } else {
                let r = &outcome.run;
                println!(
                    "suite {} · run {} · {} · target {}{}",
                    r.suite_id,
                    r.id,
                    r.status,
                    r.target,
                    r.model
                        .as_deref()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                );
                println!(
                    "{} items: {} passed every scorer, {} unanswered · {} + {} tokens, ${:.6} · ledger index {}",
                    r.items,
                    r.items_passed,
                    r.items_failed,
                    r.input_tokens,
                    r.output_tokens,
                    r.cost_usd,
                    outcome.ledger_index
                );
                if let Some(c) = &cache {
                    let stats = c.stats();
                    println!(
                        "cache: {} answers from the cache, {} from the target ({} cached in all)",
                        stats.hits, stats.misses, stats.entries_on_disk
                    );
                }
                println!();
                print!("{}", outcome.report.render_text());
                match (&outcome.baseline_run_id, &outcome.comparison) {
                    (Some(b), Some(c)) => {
                        println!("\ncompared with baseline run {b}:");
                        print!("{}", render_comparison(c));
                    }
                    _ => println!(
                        "\nno baseline pinned for this suite (meshos evals baseline {} --tenant {tenant})",
                        r.id
                    ),
                }
            }
            Ok(if fail_on_regression && outcome.regressed() {
                1
            } else {
                0
            })
        }
        EvalsCommand::List {
            tenant,
            suite,
            limit,
        } => {
            let principal = crate::cli_admin(&tenant);
            let (suites, errors) = mesh.eval_suites().unwrap_or_default();
            let runs = mesh.eval_runs(&principal, suite.as_deref(), limit).await?;
            let out = json!({
                "suites": suites,
                "invalid_suites": errors,
                "runs": runs.iter().map(|r| json!({
                    "run": r.record,
                    "ledger_index": r.ledger_index,
                })).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(0)
        }
        EvalsCommand::Show { run, tenant } => {
            let (run, results) = mesh
                .eval_run_results(&crate::cli_admin(&tenant), &run)
                .await?;
            let out = json!({
                "run": run.record,
                "ledger_index": run.ledger_index,
                "results": results.iter().map(|r| json!({
                    "item_id": r.item_id,
                    "passed": r.passed,
                    "error": r.error,
                    "latency_ms": r.latency_ms,
                    "scores": r.scores,
                    "raw": r.raw,
                })).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(0)
        }
        EvalsCommand::Compare {
            run_a,
            run_b,
            tenant,
            json,
            fail_on_regression,
        } => {
            let c = mesh
                .compare_eval_runs(&crate::cli_admin(&tenant), &run_a, &run_b)
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                print!("{}", render_comparison(&c));
            }
            Ok(if fail_on_regression && c.regressed {
                1
            } else {
                0
            })
        }
        EvalsCommand::Baseline { run, tenant } => {
            let pinned = mesh
                .pin_eval_baseline(&crate::cli_admin(&tenant), &run)
                .await?;
            println!(
                "run {} is the baseline of suite {}",
                pinned.record.id, pinned.record.suite_id
            );
            Ok(0)
        }
        EvalsCommand::Schedule { command } => {
            let out = match command {
                ScheduleCommand::Add {
                    suite,
                    cron,
                    timezone,
                    catch_up,
                    tenant,
                } => {
                    let s = mesh
                        .add_eval_schedule(
                            &crate::cli_admin(&tenant),
                            &suite,
                            &cron,
                            &timezone,
                            &catch_up,
                        )
                        .await?;
                    schedule_json(&s)
                }
                ScheduleCommand::List { tenant } => json!(
                    mesh.eval_schedules(&crate::cli_admin(&tenant))
                        .await?
                        .iter()
                        .map(schedule_json)
                        .collect::<Vec<_>>()
                ),
                ScheduleCommand::Remove { id, tenant } => {
                    mesh.remove_eval_schedule(&crate::cli_admin(&tenant), &id)
                        .await?;
                    json!({ "removed": id })
                }
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(0)
        }
    }
}

fn schedule_json(s: &meshos_store::StoredEvalSchedule) -> serde_json::Value {
    json!({
        "id": s.id,
        "suite": s.suite_id,
        "cron": s.cron,
        "timezone": s.timezone,
        "catch_up": s.catch_up,
        "last_fire_ms": s.last_fire_ms,
        "running_run_id": s.running_run_id,
    })
}
