//! The eval surface the server offers remote callers — the MCP tools `eval_run` and
//! `eval_results`, the `evals://suites/{id}` resources and their REST twins — as plain
//! inputs and outputs over [`Mesh`]. The CLI runs suites through `evals.rs` directly; what a
//! remote caller adds is a bound on concurrent runs and on which secrets a run may send where.

use std::sync::Arc;

use meshos_evals::Comparison;
use meshos_evals::report::RunReport;
use meshos_evals::run::ProgressSink;
use meshos_store::{StoredEvalResult, StoredEvalRun};
use meshos_types::{EvalRunRecord, Principal};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::evals::{EvalRunOptions, SuiteInfo, TargetOverride};
use crate::incidents::{may_act, may_read};
use crate::mesh::{Mesh, MeshError, invalid};

/// Runs asked for over MCP or REST that may go at once in one process.
pub const REQUESTED_EVAL_RUNS_AT_ONCE: usize = 4;

/// The only environment variables a remote caller may name as a target's API key. Without
/// this, an operator token could send any of the server's secrets (its database URL, a cloud
/// key) as a bearer token to a URL of its choosing.
pub const REMOTE_KEY_ENV_PREFIX: &str = "MESHOS_EVALS_";

/// Item results per `eval_results` reply, at most.
const RESULTS_PAGE_MAX: u32 = 500;
const RESULTS_PAGE_DEFAULT: u32 = 100;

// The report and the comparison are the evals crate's types, which carry no schema of their own;
// a client sees them as objects (`true`, what a bare JSON value gets, is not valid in
// `properties` for every MCP client).
fn json_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "object" })
}

fn json_object_or_null(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": ["object", "null"] })
}

/// `eval_run` (MCP) and `POST /v1/evals/runs` (REST).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalRunInput {
    /// The suite's id: a file of the server's suites directory without `.yaml` (the
    /// `evals://suites/{id}` resources list them).
    pub suite: String,
    /// Run against this OpenAI-compatible endpoint instead of the suite's own target. Its
    /// `api_key_env` must name a variable starting with `MESHOS_EVALS_`.
    #[serde(default)]
    pub target: Option<TargetOverride>,
    /// Pin the run as the suite's baseline if it completes.
    #[serde(default)]
    pub pin_baseline: bool,
}

/// A finished run: its ledger record, its scores and how it compares with the suite's pinned
/// baseline.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EvalRunOutput {
    pub run: EvalRunRecord,
    pub ledger_index: u64,
    /// Per scorer: items scored, pass rate with its confidence interval, mean value.
    #[schemars(schema_with = "json_object")]
    pub report: RunReport,
    pub baseline_run_id: Option<String>,
    /// The paired comparison with the baseline (McNemar / Wilcoxon / bootstrap, Holm-adjusted).
    #[schemars(schema_with = "json_object_or_null")]
    pub comparison: Option<Comparison>,
    /// Some scorer is significantly worse than the baseline's.
    pub regressed: bool,
    pub pinned_as_baseline: bool,
}

/// `eval_results` (MCP): with `run_id`, one run, a page of its item results and its
/// comparison; without, the tenant's runs, newest first.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalResultsInput {
    /// The run to show; leave out to list runs.
    #[serde(default)]
    pub run_id: Option<String>,
    /// Listing runs: only this suite's.
    #[serde(default)]
    pub suite: Option<String>,
    /// Runs listed (1-500, default 20), or item results per page (1-500, default 100).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Item results after this item id (the previous page's `next_after`).
    #[serde(default)]
    pub after: Option<String>,
    /// Compare the run with this run instead of the suite's pinned baseline.
    #[serde(default)]
    pub compare_with: Option<String>,
}

/// A run as listed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EvalRunEntry {
    pub run: EvalRunRecord,
    /// Where the run's record sits in the tenant's ledger; absent while it runs.
    pub ledger_index: Option<u64>,
}

impl From<StoredEvalRun> for EvalRunEntry {
    fn from(r: StoredEvalRun) -> Self {
        EvalRunEntry {
            run: r.record,
            ledger_index: r.ledger_index,
        }
    }
}

/// One item's result.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EvalItemResult {
    pub item_id: String,
    /// The target answered and every scorer passed.
    pub passed: bool,
    /// Why the target gave no answer, after retries.
    pub error: Option<String>,
    pub latency_ms: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    /// `[{scorer, passed, value, detail}]`.
    pub scores: serde_json::Value,
    /// `{input, output}`, kept only when the suite opts in.
    pub raw: Option<serde_json::Value>,
}

impl From<StoredEvalResult> for EvalItemResult {
    fn from(r: StoredEvalResult) -> Self {
        EvalItemResult {
            item_id: r.item_id,
            passed: r.passed,
            error: r.error,
            latency_ms: r.latency_ms,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cost_usd: r.cost_usd,
            scores: r.scores,
            raw: r.raw,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct EvalResultsOutput {
    /// Listing: the runs, newest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<EvalRunEntry>,
    /// Showing: the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<EvalRunEntry>,
    /// Showing: a page of item results, by item id.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<EvalItemResult>,
    /// Showing: pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
    /// Showing: the run the comparison is against (`compare_with`, or the pinned baseline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compared_with: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "json_object_or_null")]
    pub comparison: Option<Comparison>,
}

/// A suite as its resource shows it: what it is, its pinned baseline and its latest runs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EvalSuiteView {
    pub suite: SuiteInfo,
    pub baseline_run_id: Option<String>,
    /// The tenant's five latest runs of the suite, newest first.
    pub recent_runs: Vec<EvalRunEntry>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EvalSuiteList {
    pub suites: Vec<SuiteInfo>,
    /// `file:line:col: what is wrong` for each suite file that does not load.
    pub invalid_suites: Vec<String>,
}

/// Refuses a target override whose key variable a remote caller may not name.
pub fn check_remote_target(target: Option<&TargetOverride>) -> Result<(), MeshError> {
    let Some(env) = target.and_then(|t| t.api_key_env.as_deref()) else {
        return Ok(());
    };
    if env.len() > REMOTE_KEY_ENV_PREFIX.len() && env.starts_with(REMOTE_KEY_ENV_PREFIX) {
        Ok(())
    } else {
        Err(invalid(
            "target.api_key_env",
            format!(
                "{env:?} may not be sent to a target named over the network; expected a variable \
                 whose name starts with {REMOTE_KEY_ENV_PREFIX} (set it where the server runs)"
            ),
        ))
    }
}

impl Mesh {
    /// Runs a suite for a remote caller (see the module doc); `progress` hears of every item,
    /// `cancel` stops the run (a client that went away), which is then stored as cancelled.
    pub async fn eval_run_requested(
        &self,
        principal: &Principal,
        input: EvalRunInput,
        progress: Option<Arc<dyn ProgressSink>>,
        cancel: Option<CancellationToken>,
    ) -> Result<EvalRunOutput, MeshError> {
        may_act(principal, "run evals")?;
        check_remote_target(input.target.as_ref())?;
        let _slot = self.requested_eval_runs.clone().try_acquire_owned().map_err(|_| {
            MeshError::Busy(format!(
                "{REQUESTED_EVAL_RUNS_AT_ONCE} eval runs are already going on this server; retry when one finishes"
            ))
        })?;
        let outcome = self
            .run_eval(
                principal,
                &input.suite,
                EvalRunOptions {
                    target: input.target,
                    progress,
                    cancel,
                    ..EvalRunOptions::default()
                },
            )
            .await?;
        let pinned = input.pin_baseline && outcome.run.status == "completed";
        if pinned {
            self.pin_eval_baseline(principal, &outcome.run.id).await?;
        }
        Ok(EvalRunOutput {
            regressed: outcome.regressed(),
            run: outcome.run,
            ledger_index: outcome.ledger_index,
            report: outcome.report,
            baseline_run_id: outcome.baseline_run_id,
            comparison: outcome.comparison,
            pinned_as_baseline: pinned,
        })
    }

    /// The suites directory's suites, and the load errors of those that do not load.
    pub fn eval_suite_list(&self, principal: &Principal) -> Result<EvalSuiteList, MeshError> {
        may_read(principal)?;
        let (suites, invalid_suites) = self.eval_suites()?;
        Ok(EvalSuiteList {
            suites,
            invalid_suites,
        })
    }

    /// `eval_results`; see [`EvalResultsInput`].
    pub async fn eval_results(
        &self,
        principal: &Principal,
        input: EvalResultsInput,
    ) -> Result<EvalResultsOutput, MeshError> {
        may_read(principal)?;
        let Some(run_id) = input.run_id else {
            if input.after.is_some() || input.compare_with.is_some() {
                return Err(invalid(
                    "run_id",
                    "after and compare_with need a run; expected run_id as well",
                ));
            }
            let runs = self
                .eval_runs(principal, input.suite.as_deref(), input.limit.unwrap_or(20))
                .await?;
            return Ok(EvalResultsOutput {
                runs: runs.into_iter().map(EvalRunEntry::from).collect(),
                ..EvalResultsOutput::default()
            });
        };
        let tenant = principal.tenant.as_str();
        let run = self
            .store
            .eval_run(tenant, &run_id)
            .await?
            .ok_or_else(|| MeshError::NotFound(format!("no eval run {run_id:?}")))?;
        let limit = input
            .limit
            .unwrap_or(RESULTS_PAGE_DEFAULT)
            .clamp(1, RESULTS_PAGE_MAX);
        let results = self
            .store
            .eval_results_page(tenant, &run_id, input.after.as_deref(), limit)
            .await?;
        let next_after = (results.len() == limit as usize)
            .then(|| results.last().map(|r| r.item_id.clone()))
            .flatten();
        let compared_with = match input.compare_with {
            Some(other) => Some(other),
            None => self
                .store
                .eval_baseline(tenant, &run.record.suite_id)
                .await?
                .filter(|b| *b != run_id),
        };
        let comparison = match &compared_with {
            Some(base) if run.is_finished() => {
                Some(self.compare_eval_runs(principal, base, &run_id).await?)
            }
            _ => None,
        };
        Ok(EvalResultsOutput {
            run: Some(run.into()),
            results: results.into_iter().map(EvalItemResult::from).collect(),
            next_after,
            compared_with: comparison.as_ref().and(compared_with),
            comparison,
            ..EvalResultsOutput::default()
        })
    }

    /// The `evals://suites/{id}` resource.
    pub async fn eval_suite_view(
        &self,
        principal: &Principal,
        suite_id: &str,
    ) -> Result<EvalSuiteView, MeshError> {
        may_read(principal)?;
        let suite = self.eval_suite(suite_id)?;
        let baseline_run_id = self
            .store
            .eval_baseline(&principal.tenant, suite.id())
            .await?;
        let recent_runs = self.eval_runs(principal, Some(suite.id()), 5).await?;
        Ok(EvalSuiteView {
            suite: crate::evals::suite_info(&suite),
            baseline_run_id,
            recent_runs: recent_runs.into_iter().map(EvalRunEntry::from).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(env: Option<&str>) -> TargetOverride {
        TargetOverride {
            base_url: "http://127.0.0.1:9/v1".into(),
            model: "m".into(),
            api_key_env: env.map(str::to_string),
        }
    }

    #[test]
    fn a_remote_target_may_only_name_the_evals_key_variables() {
        assert!(check_remote_target(None).is_ok());
        assert!(check_remote_target(Some(&target(None))).is_ok());
        assert!(check_remote_target(Some(&target(Some("MESHOS_EVALS_OPENAI_KEY")))).is_ok());
        for secret in [
            "MESHOS_DATABASE_URL",
            "AWS_SECRET_ACCESS_KEY",
            "MESHOS_EVALS_",
        ] {
            let err = check_remote_target(Some(&target(Some(secret)))).unwrap_err();
            assert!(err.to_string().contains("MESHOS_EVALS_"), "{err}");
        }
    }
}
