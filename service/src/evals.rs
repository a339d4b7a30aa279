//! Eval runs on the service: a suite from the deployment's suites directory is run against its
//! target, each item scored (the `policy_check` scorer through the bundle in force), the results
//! stored per item and per scorer, the run appended to the tenant's ledger, the results turned
//! into the agent's events (response integrity), and the run compared with the suite's pinned
//! baseline — a significant regression is an `eval` event with outcome `error` (which the healer
//! turns into an incident) and a drift signal in the agent's trust.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use meshos_evals::judge_client::JudgeConfig;
use meshos_evals::judging::JudgePool;
use meshos_evals::report::RunReport;
use meshos_evals::run::{ItemResult, ProgressSink, ResultSink, Runner, SinkError};
use meshos_evals::scorers::{
    CheckError, OutputCheck, OutputCheckRequest, OutputCheckVerdict, ScoreContext, score_all,
};
use meshos_evals::target::{OpenAiTargetConfig, TargetConfig};
use meshos_evals::{CompareOptions, Comparison, ItemScores, Suite, compare};
use meshos_store::{StoredEvalResult, StoredEvalRun, StoredSignal};
use meshos_trust::EventInput;
use meshos_types::{EvalRunRecord, Outcome, Principal, new_id, now_ms, validate_id};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::events::IngestDoor;
use crate::incidents::{may_act, may_read};
use crate::mesh::{Mesh, MeshError, invalid};
use crate::policy_check::PolicyCheckInput;

/// Results written to the store per statement batch while a run goes on.
const RESULTS_PER_WRITE: usize = 500;

/// A suite in the suites directory.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SuiteInfo {
    pub id: String,
    pub description: String,
    pub agent_id: String,
    pub items: usize,
    pub scorers: Vec<String>,
    pub target: String,
    pub digest: String,
    pub dataset_digest: String,
}

/// Replaces a suite's target with an OpenAI-compatible endpoint (a local model server, a
/// test server, another model), keeping its prompt, dataset and scorers.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TargetOverride {
    /// Up to and including `/v1`, e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    pub model: String,
    /// The environment variable holding the API key, if the endpoint needs one.
    #[serde(default)]
    pub api_key_env: Option<String>,
}

/// How a run is started.
#[derive(Default)]
pub struct EvalRunOptions {
    /// `manual`, `schedule:<id>` or `healer:<incident id>` (default `manual`).
    pub trigger: Option<String>,
    pub target: Option<TargetOverride>,
    pub progress: Option<Arc<dyn ProgressSink>>,
    pub cancel: Option<CancellationToken>,
    /// A run id chosen beforehand (a schedule claims its fire with it).
    pub run_id: Option<String>,
    /// The judge model for judge scorers that name none.
    pub default_judge: Option<JudgeConfig>,
    /// Answers identical requests (same target, same request) from here instead of asking the
    /// target again: for iterating on scorers, never for runs that judge the target now (the
    /// scheduler, the healer and network callers do not set it).
    pub cache: Option<Arc<meshos_evals::run::Cache>>,
}

/// A finished run.
#[derive(Debug, Clone, Serialize)]
pub struct EvalRunOutcome {
    pub run: EvalRunRecord,
    pub ledger_index: u64,
    pub report: RunReport,
    /// The comparison with the suite's pinned baseline, when one is pinned.
    pub baseline_run_id: Option<String>,
    pub comparison: Option<Comparison>,
}

impl EvalRunOutcome {
    pub fn regressed(&self) -> bool {
        self.comparison.as_ref().is_some_and(|c| c.regressed)
    }
}

/// The bundle in force, as the `policy_check` scorer sees it: the content of an answer is
/// evaluated for the suite's agent like any request, without side effects (no decision is
/// recorded, no rate or budget spent).
struct BundleCheck<'a> {
    mesh: &'a Mesh,
    tenant: &'a str,
}

impl OutputCheck for BundleCheck<'_> {
    fn check<'a>(
        &'a self,
        request: OutputCheckRequest<'a>,
    ) -> meshos_evals::scorers::BoxFuture<'a, Result<OutputCheckVerdict, CheckError>> {
        Box::pin(async move {
            let input = PolicyCheckInput {
                agent_id: request.agent_id.to_string(),
                action: request.action.to_string(),
                content: Some(request.content.to_string()),
                content_source: None,
                model: None,
                tool: None,
                region: None,
                estimated_tokens: None,
                estimated_cost_usd: None,
                arguments: None,
            };
            let evaluation = self
                .mesh
                .evaluate_unrecorded(self.tenant, &input)
                .map_err(|e| CheckError::Permanent(e.to_string()))?;
            Ok(OutputCheckVerdict {
                decision: evaluation.decision,
                findings: evaluation.findings,
                injection_flagged: evaluation.injection.is_some_and(|i| i.flagged),
                reasons: evaluation
                    .reasons
                    .into_iter()
                    .map(|r| format!("{}: {}", r.policy_id, r.message))
                    .collect(),
            })
        })
    }
}

/// What a run keeps while it goes: compact per-item scores (for the report and the
/// comparison) and the results not yet written.
struct Collected {
    scores: Vec<ItemScores>,
    pending: Vec<StoredEvalResult>,
    events: Vec<EventInput>,
    items_failed: u64,
    items_passed: u64,
    judge_input_tokens: u64,
    judge_output_tokens: u64,
    judge_cost_usd: f64,
}

impl Mesh {
    /// The directory suites are read from.
    fn suites_dir(&self) -> Result<&Path, MeshError> {
        self.evals_dir.as_deref().ok_or_else(|| {
            MeshError::NotFound(
                "no eval suites directory is configured (--evals-dir / MESHOS_EVALS_DIR)".into(),
            )
        })
    }

    /// Loads suite `id` (`<suites dir>/<id>.yaml`).
    pub fn eval_suite(&self, id: &str) -> Result<Suite, MeshError> {
        validate_id("suite", id).map_err(|e| invalid("suite", e.to_string()))?;
        if id.contains('/') || id.starts_with('.') {
            return Err(invalid(
                "suite",
                "expected a suite id (a file name in the suites directory, without .yaml)",
            ));
        }
        let path = self.suites_dir()?.join(format!("{id}.yaml"));
        if !path.is_file() {
            return Err(MeshError::NotFound(format!(
                "no suite {id:?} in the suites directory (see `meshos evals list`)"
            )));
        }
        Suite::load(&path).map_err(|e| invalid("suite", e.to_string()))
    }

    /// Every suite in the suites directory that loads, with the errors of those that do not.
    pub fn eval_suites(&self) -> Result<(Vec<SuiteInfo>, Vec<String>), MeshError> {
        let dir = self.suites_dir()?;
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| MeshError::Internal(format!("cannot read {}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        paths.sort();
        let mut suites = Vec::new();
        let mut errors = Vec::new();
        for path in paths {
            match Suite::load(&path) {
                Ok(s) => suites.push(suite_info(&s)),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Ok((suites, errors))
    }

    /// Runs suite `suite_id` for the principal's tenant; see the module doc.
    pub async fn run_eval(
        &self,
        principal: &Principal,
        suite_id: &str,
        options: EvalRunOptions,
    ) -> Result<EvalRunOutcome, MeshError> {
        may_act(principal, "run evals")?;
        let suite = self.eval_suite(suite_id)?;
        self.run_loaded_eval(principal, &suite, options).await
    }

    /// Runs an already loaded suite (the CLI's `evals run FILE`).
    pub async fn run_loaded_eval(
        &self,
        principal: &Principal,
        suite: &Suite,
        options: EvalRunOptions,
    ) -> Result<EvalRunOutcome, MeshError> {
        may_act(principal, "run evals")?;
        let tenant = principal.tenant.as_str();
        let target_config = match &options.target {
            Some(t) => {
                let mut c = OpenAiTargetConfig::new(t.base_url.clone(), t.model.clone());
                c.api_key_env = t.api_key_env.clone();
                TargetConfig::OpenAi(c)
            }
            None => suite.runner_target(),
        };
        let target = target_config
            .build()
            .map_err(|e| invalid("target", e.to_string()))?;
        let requests = suite
            .chat_requests()
            .map_err(|e| invalid("prompt", e.to_string()))?;
        let judges = JudgePool::for_suite(suite, options.default_judge.clone())
            .map_err(|e| invalid("scorers", e.to_string()))?;
        let model = target_config.model().map(str::to_string);
        let started_at_ms = now_ms();
        let mut record = EvalRunRecord {
            id: options.run_id.clone().unwrap_or_else(|| new_id("evr")),
            tenant: tenant.to_string(),
            suite_id: suite.id().to_string(),
            suite_digest: suite.digest().to_string(),
            dataset_digest: suite.dataset_digest().to_string(),
            target: target.identity(),
            model: model.clone(),
            agent_id: suite.agent_id().to_string(),
            trigger: options.trigger.clone().unwrap_or_else(|| "manual".into()),
            status: "running".into(),
            items: 0,
            items_passed: 0,
            items_failed: 0,
            scores: json!({}),
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
            started_at_ms,
            finished_at_ms: 0,
        };
        self.store.insert_eval_run(&record).await?;

        let items: HashMap<&str, &meshos_evals::Item> = suite
            .selected_items()
            .into_iter()
            .map(|i| (i.id.as_str(), i))
            .collect();
        let mut runner = Runner::new(target, suite.run_config());
        if let Some(p) = options.progress.clone() {
            runner = runner.with_progress(p);
        }
        if let Some(c) = options.cancel.clone() {
            runner = runner.with_cancel(c);
        }
        if let Some(c) = options.cache.clone() {
            runner = runner.with_cache(c);
        }
        let check = BundleCheck { mesh: self, tenant };
        let mut sink = ScoringSink {
            mesh: self,
            principal,
            suite,
            items: &items,
            check: &check,
            judges: &judges,
            run_id: &record.id,
            collected: Collected {
                scores: Vec::with_capacity(items.len()),
                pending: Vec::new(),
                events: Vec::new(),
                items_failed: 0,
                items_passed: 0,
                judge_input_tokens: 0,
                judge_output_tokens: 0,
                judge_cost_usd: 0.0,
            },
        };
        let run = runner.run(requests, &mut sink).await;
        sink.flush().await.map_err(|e| MeshError::Internal(e.0))?;
        let collected = sink.collected;
        let (status, summary) = match run {
            Ok(s) if s.cancelled => ("cancelled", Some(s)),
            Ok(s) => ("completed", Some(s)),
            Err(e) => {
                tracing::warn!(run = %record.id, error = %e, "eval run stopped");
                ("failed", None)
            }
        };
        let report = RunReport::new(&collected.scores, 0.95);
        record.status = status.into();
        record.items = collected.scores.len() as u64;
        record.items_passed = collected.items_passed;
        record.items_failed = collected.items_failed;
        record.scores = scores_json(&report);
        if let Some(s) = &summary {
            record.input_tokens = s.input_tokens + collected.judge_input_tokens;
            record.output_tokens = s.output_tokens + collected.judge_output_tokens;
            record.cost_usd = s.cost_usd + collected.judge_cost_usd;
        }
        record.finished_at_ms = now_ms().max(started_at_ms);
        let ledger_index = self.store.finish_eval_run(&record).await?;

        let (baseline_run_id, comparison) = match self
            .store
            .eval_baseline(tenant, suite.id())
            .await?
            .filter(|b| b != &record.id)
        {
            Some(b) if status == "completed" => {
                let base = self.stored_item_scores(tenant, &b).await?;
                let c = compare(&base, &collected.scores, &suite.compare_options()).ok();
                (Some(b), c)
            }
            other => (other, None),
        };
        let outcome = EvalRunOutcome {
            run: record,
            ledger_index,
            report,
            baseline_run_id,
            comparison,
        };
        self.feed_trust(principal, &outcome).await?;
        Ok(outcome)
    }

    /// The run's verdict as the agent's `eval` event (outcome `error` on a significant
    /// regression, which the healer turns into an incident) and, on a regression, a drift
    /// signal in its trust.
    async fn feed_trust(
        &self,
        principal: &Principal,
        outcome: &EvalRunOutcome,
    ) -> Result<(), MeshError> {
        let run = &outcome.run;
        let regressed = outcome.regressed();
        let failed_run = run.status == "failed";
        let mut attributes = serde_json::Map::new();
        attributes.insert("suite".into(), json!(run.suite_id));
        attributes.insert("run_id".into(), json!(run.id));
        attributes.insert("status".into(), json!(run.status));
        attributes.insert("items".into(), json!(run.items));
        attributes.insert("items_passed".into(), json!(run.items_passed));
        attributes.insert("regressed".into(), json!(regressed));
        if let Some(b) = &outcome.baseline_run_id {
            attributes.insert("baseline_run_id".into(), json!(b));
        }
        let event = EventInput {
            agent_id: run.agent_id.clone(),
            kind: "eval".into(),
            outcome: if regressed || failed_run {
                Outcome::Error
            } else {
                Outcome::Ok
            },
            latency_ms: None,
            input_tokens: None,
            output_tokens: None,
            cost_usd: None,
            model: None,
            tool: None,
            region: None,
            attributes: Some(attributes),
            decision_id: None,
        };
        self.record_events(principal, vec![event], IngestDoor::Eval)
            .await?;
        if regressed && let Some(c) = &outcome.comparison {
            let worst = c
                .scorers
                .iter()
                .filter(|s| s.regressed)
                .map(|s| s.scorer.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let pass_rate = |items: u64, passed: u64| {
                if items == 0 {
                    0.0
                } else {
                    passed as f64 / items as f64
                }
            };
            let baseline = match &outcome.baseline_run_id {
                Some(b) => self.store.eval_run(&run.tenant, b).await?,
                None => None,
            };
            let baseline_rate = baseline
                .map(|b| pass_rate(b.record.items, b.record.items_passed))
                .unwrap_or(0.0);
            let now = now_ms();
            let signal = StoredSignal {
                id: new_id("sig"),
                tenant: run.tenant.clone(),
                agent_id: run.agent_id.clone(),
                metric: "eval_pass_rate".into(),
                detector: "paired_test".into(),
                direction: "down".into(),
                baseline_mean: baseline_rate,
                baseline_sd: 0.0,
                observed_mean: pass_rate(run.items, run.items_passed),
                shift_sigmas: 0.0,
                samples: run.items,
                explanation: format!(
                    "eval suite {} regressed against baseline run {} on {worst} (paired test, alpha {})",
                    run.suite_id,
                    outcome.baseline_run_id.as_deref().unwrap_or("?"),
                    c.alpha
                ),
                at_ms: now,
                // The `eval` event above already opens the incident; the signal is the
                // trust-side record of the regression, not a second alarm.
                consumed_at_ms: Some(now),
            };
            self.store.insert_drift_signals(&[signal]).await?;
        }
        Ok(())
    }

    /// A stored run's item scores, as the statistics read them (target failures and scorer
    /// errors are not scores).
    async fn stored_item_scores(
        &self,
        tenant: &str,
        run_id: &str,
    ) -> Result<Vec<ItemScores>, MeshError> {
        let results = self.store.eval_results(tenant, run_id).await?;
        Ok(results
            .into_iter()
            .filter(|r| r.error.is_none())
            .map(|r| ItemScores {
                item_id: r.item_id,
                scores: serde_json::from_value(r.scores).unwrap_or_default(),
            })
            .collect())
    }

    /// A tenant's runs, newest first.
    pub async fn eval_runs(
        &self,
        principal: &Principal,
        suite_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredEvalRun>, MeshError> {
        may_read(principal)?;
        Ok(self
            .store
            .eval_runs(&principal.tenant, suite_id, limit.clamp(1, 500))
            .await?)
    }

    /// One run with its item results.
    pub async fn eval_run_results(
        &self,
        principal: &Principal,
        run_id: &str,
    ) -> Result<(StoredEvalRun, Vec<StoredEvalResult>), MeshError> {
        may_read(principal)?;
        let run = self
            .store
            .eval_run(&principal.tenant, run_id)
            .await?
            .ok_or_else(|| MeshError::NotFound(format!("no eval run {run_id:?}")))?;
        let results = self.store.eval_results(&principal.tenant, run_id).await?;
        Ok((run, results))
    }

    /// Compares run `candidate` with run `baseline` on the items both scored.
    pub async fn compare_eval_runs(
        &self,
        principal: &Principal,
        baseline: &str,
        candidate: &str,
    ) -> Result<Comparison, MeshError> {
        may_read(principal)?;
        let mut runs = Vec::new();
        for id in [baseline, candidate] {
            let run = self
                .store
                .eval_run(&principal.tenant, id)
                .await?
                .ok_or_else(|| MeshError::NotFound(format!("no eval run {id:?}")))?;
            runs.push(run);
        }
        if runs[0].record.suite_id != runs[1].record.suite_id {
            return Err(invalid(
                "runs",
                format!(
                    "runs of different suites ({} and {}) cannot be paired; expected two runs of one suite",
                    runs[0].record.suite_id, runs[1].record.suite_id
                ),
            ));
        }
        let options = self
            .eval_suite(&runs[0].record.suite_id)
            .map(|s| s.compare_options())
            .unwrap_or_else(|_| CompareOptions {
                lower_is_better: vec!["latency".into(), "cost".into()],
                ..CompareOptions::default()
            });
        let base = self.stored_item_scores(&principal.tenant, baseline).await?;
        let cand = self
            .stored_item_scores(&principal.tenant, candidate)
            .await?;
        compare(&base, &cand, &options).map_err(|e| invalid("runs", e.to_string()))
    }

    /// Pins a finished run as its suite's baseline.
    pub async fn pin_eval_baseline(
        &self,
        principal: &Principal,
        run_id: &str,
    ) -> Result<StoredEvalRun, MeshError> {
        may_act(principal, "pin eval baselines")?;
        let run = self
            .store
            .eval_run(&principal.tenant, run_id)
            .await?
            .ok_or_else(|| MeshError::NotFound(format!("no eval run {run_id:?}")))?;
        if run.record.status != "completed" {
            return Err(invalid(
                "run_id",
                format!(
                    "run {run_id} is {}; expected a completed run",
                    run.record.status
                ),
            ));
        }
        self.store
            .pin_eval_baseline(&principal.tenant, &run.record.suite_id, run_id, now_ms())
            .await?;
        Ok(run)
    }
}

/// Scores each result as it arrives, in order, and writes them in batches.
struct ScoringSink<'a> {
    mesh: &'a Mesh,
    principal: &'a Principal,
    suite: &'a Suite,
    items: &'a HashMap<&'a str, &'a meshos_evals::Item>,
    check: &'a BundleCheck<'a>,
    judges: &'a JudgePool,
    run_id: &'a str,
    collected: Collected,
}

impl ScoringSink<'_> {
    async fn score(&mut self, result: ItemResult) -> Result<(), SinkError> {
        let c = &mut self.collected;
        let Some(item) = self.items.get(result.item_id.as_str()) else {
            return Err(SinkError(format!(
                "the runner answered item {:?}, which the suite does not have",
                result.item_id
            )));
        };
        let (output, error) = match &result.outcome {
            Ok(o) => (Some(o), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let mut scores = Vec::new();
        let mut scorer_errors = Vec::new();
        if let Some(output) = output {
            let prompt = self.suite.prompt().and_then(|p| p.render(item).ok());
            let ctx = ScoreContext {
                agent_id: self.suite.agent_id(),
                prompt: prompt.as_ref(),
                output_check: Some(self.check),
                judge: Some(self.judges),
            };
            for scored in score_all(self.suite.scorers(), item, output, &ctx).await {
                match scored {
                    Ok(s) => {
                        c.judge_input_tokens += s.spend.input_tokens;
                        c.judge_output_tokens += s.spend.output_tokens;
                        c.judge_cost_usd += s.spend.cost_usd;
                        scores.push(s.score);
                    }
                    Err(e) => scorer_errors.push(e.to_string()),
                }
            }
        }
        let passed =
            output.is_some() && scorer_errors.is_empty() && scores.iter().all(|s| s.passed);
        // A wrong answer is an error of the agent; only an answer the policy refuses (a
        // failed `policy_check` scorer) is a violation, which weighs three times as much.
        let violated_policy = scores.iter().any(|s| {
            !s.passed
                && self.suite.scorers().iter().any(|sc| {
                    sc.name() == s.scorer
                        && matches!(sc.spec(), meshos_evals::scorers::ScorerSpec::PolicyCheck(_))
                })
        });
        if output.is_none() {
            c.items_failed += 1;
        } else if passed {
            c.items_passed += 1;
        }
        let error = error.or_else(|| (!scorer_errors.is_empty()).then(|| scorer_errors.join("; ")));
        let (input_tokens, output_tokens, cost_usd) = output
            .map(|o| (o.input_tokens, o.output_tokens, o.cost_usd))
            .unwrap_or_default();
        let scores_json = serde_json::to_value(&scores).unwrap_or(Value::Null);
        if output.is_some() {
            c.scores.push(ItemScores {
                item_id: result.item_id.clone(),
                scores,
            });
        }
        let raw = if self.suite.store_raw() {
            Some(json!({
                "input": item.input,
                "output": output,
            }))
        } else {
            None
        };
        // Each answered item is the agent's output validated: response integrity in trust.
        // Tokens and cost count against the agent's budgets like any other work.
        let mut attributes = serde_json::Map::new();
        attributes.insert("source".into(), json!("eval"));
        attributes.insert("suite".into(), json!(self.suite.id()));
        attributes.insert("run_id".into(), json!(self.run_id));
        attributes.insert("item_id".into(), json!(result.item_id));
        c.events.push(EventInput {
            agent_id: self.suite.agent_id().to_string(),
            kind: "output_validation".into(),
            outcome: if passed {
                Outcome::Ok
            } else if violated_policy {
                Outcome::Violation
            } else {
                Outcome::Error
            },
            latency_ms: Some(result.latency_ms.max(0.0)),
            input_tokens: i64::try_from(input_tokens).ok(),
            output_tokens: i64::try_from(output_tokens).ok(),
            cost_usd: Some(cost_usd.max(0.0)),
            model: output
                .and_then(|o| o.model.clone())
                .filter(|m| validate_id("model", m).is_ok()),
            tool: None,
            region: None,
            attributes: Some(attributes),
            decision_id: None,
        });
        c.pending.push(StoredEvalResult {
            item_id: result.item_id,
            passed,
            error,
            latency_ms: result.latency_ms.max(0.0),
            input_tokens,
            output_tokens,
            cost_usd,
            scores: scores_json,
            raw,
        });
        if c.pending.len() >= RESULTS_PER_WRITE {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        let pending = std::mem::take(&mut self.collected.pending);
        if !pending.is_empty() {
            self.mesh
                .store
                .insert_eval_results(&self.principal.tenant, self.run_id, &pending)
                .await
                .map_err(|e| SinkError(format!("storing results: {e}")))?;
        }
        let events = std::mem::take(&mut self.collected.events);
        for chunk in events.chunks(self.mesh.limits.max_batch_events.max(1)) {
            self.mesh
                .record_events(self.principal, chunk.to_vec(), IngestDoor::Eval)
                .await
                .map_err(|e| SinkError(format!("recording the agent's events: {e}")))?;
        }
        Ok(())
    }
}

impl ResultSink for ScoringSink<'_> {
    fn accept(
        &mut self,
        result: ItemResult,
    ) -> impl std::future::Future<Output = Result<(), SinkError>> + Send {
        self.score(result)
    }
}

pub(crate) fn suite_info(s: &Suite) -> SuiteInfo {
    SuiteInfo {
        id: s.id().to_string(),
        description: s.description().to_string(),
        agent_id: s.agent_id().to_string(),
        items: s.selected_items().len(),
        scorers: s.scorers().iter().map(|x| x.name().to_string()).collect(),
        target: s.target().kind().to_string(),
        digest: s.digest().to_string(),
        dataset_digest: s.dataset_digest().to_string(),
    }
}

/// Per scorer `{passed, total, pass_rate, mean}`: what the ledger record keeps of the report.
fn scores_json(report: &RunReport) -> Value {
    let mut out = serde_json::Map::new();
    for s in &report.scorers {
        out.insert(
            s.scorer.clone(),
            json!({
                "passed": s.passed,
                "total": s.items,
                "pass_rate": s.pass_rate,
                "mean": s.mean_value,
            }),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
#[path = "evals_tests.rs"]
mod tests;
