//! The scorers' [`Judge`] over [`JudgeClient`]: how a `judge` or `pairwise` scorer's question
//! becomes a structured-output call, and which judge model answers it.
//!
//! [`JudgePool`] holds one client per judge model a suite names (a scorer's `model`) and a
//! default for scorers that name none, so a run passes one `&dyn Judge` in its
//! [`crate::ScoreContext`]. What the judge sees as the item: its inputs, the prompt the target
//! was sent, and the reference answer when the scorer names one.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde_json::{Value, json};

use crate::judge_client::{JudgeClient, JudgeConfig, JudgeError, JudgeUsage, Winner};
use crate::scorers::{
    BoxFuture, CheckError, Grade, GradeRequest, Judge, PairwiseJudgement, PairwiseRequest,
    Preference, ScorerSpec, Spend,
};
use crate::suite::Suite;
use crate::{Item, RenderedPrompt};

impl Judge for JudgeClient {
    fn grade<'a>(&'a self, request: GradeRequest<'a>) -> BoxFuture<'a, Result<Grade, CheckError>> {
        Box::pin(async move {
            let item = judged_item(request.item, request.prompt, request.reference.as_deref());
            let grade = JudgeClient::grade(
                self,
                &request.spec.rubric,
                &item,
                request.output,
                request.spec.scale,
            )
            .await
            .map_err(check_error)?;
            Ok(Grade {
                score: grade.normalised,
                reasoning: grade.reason,
                spend: spend(grade.usage),
            })
        })
    }

    fn compare<'a>(
        &'a self,
        request: PairwiseRequest<'a>,
    ) -> BoxFuture<'a, Result<PairwiseJudgement, CheckError>> {
        Box::pin(async move {
            let item = judged_item(request.item, request.prompt, None);
            // `a` is the candidate: the client asks with a first, then b first, and maps the
            // second answer back to a/b.
            let verdict = JudgeClient::compare(
                self,
                &request.spec.rubric,
                &item,
                request.candidate,
                request.other,
            )
            .await
            .map_err(check_error)?;
            Ok(PairwiseJudgement {
                candidate_first: preference(verdict.a_first),
                other_first: preference(verdict.b_first),
                reasoning: verdict.reasons.join(" / "),
                spend: spend(verdict.usage),
            })
        })
    }
}

/// One judge client per judge model of a suite, and a default one.
pub struct JudgePool {
    default: Option<JudgeClient>,
    /// By the canonical JSON of the scorer's `model`.
    named: HashMap<String, JudgeClient>,
}

impl JudgePool {
    /// Builds a client for every judge model the suite's scorers name; `default` answers the
    /// scorers that name none (without one, those scorers fail with a clear error).
    pub fn for_suite(suite: &Suite, default: Option<JudgeConfig>) -> Result<JudgePool, JudgeError> {
        let mut named = HashMap::new();
        for scorer in suite.scorers() {
            let model = match scorer.spec() {
                ScorerSpec::Judge(s) => s.model.as_ref(),
                ScorerSpec::Pairwise(s) => s.model.as_ref(),
                _ => None,
            };
            if let Some(config) = model
                && let Entry::Vacant(slot) = named.entry(model_key(config))
            {
                slot.insert(JudgeClient::new(config.clone())?);
            }
        }
        Ok(JudgePool {
            default: default.map(JudgeClient::new).transpose()?,
            named,
        })
    }

    fn client(&self, model: Option<&JudgeConfig>) -> Result<&JudgeClient, CheckError> {
        match model {
            Some(config) => self.named.get(&model_key(config)).ok_or_else(|| {
                CheckError::Permanent(format!(
                    "no judge client for model `{}` (build the pool from this suite)",
                    config.endpoint.model
                ))
            }),
            None => self.default.as_ref().ok_or_else(|| {
                CheckError::Permanent(
                    "the scorer names no judge `model` and no default judge is configured".into(),
                )
            }),
        }
    }
}

impl Judge for JudgePool {
    fn grade<'a>(&'a self, request: GradeRequest<'a>) -> BoxFuture<'a, Result<Grade, CheckError>> {
        match self.client(request.spec.model.as_ref()) {
            Ok(client) => Judge::grade(client, request),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    fn compare<'a>(
        &'a self,
        request: PairwiseRequest<'a>,
    ) -> BoxFuture<'a, Result<PairwiseJudgement, CheckError>> {
        match self.client(request.spec.model.as_ref()) {
            Ok(client) => Judge::compare(client, request),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}

fn model_key(config: &JudgeConfig) -> String {
    let mut key = String::new();
    crate::run::canonical_json(
        &serde_json::to_value(config).unwrap_or(Value::Null),
        &mut key,
    );
    key
}

/// What the judge is shown as the item.
fn judged_item(item: &Item, prompt: Option<&RenderedPrompt>, reference: Option<&str>) -> Value {
    let mut shown = json!({ "input": item.input_json() });
    if let Some(p) = prompt {
        shown["prompt"] = json!({ "system": p.system, "user": p.user });
    }
    if let Some(r) = reference {
        shown["reference_answer"] = Value::String(r.to_string());
    }
    shown
}

fn preference(w: Winner) -> Preference {
    match w {
        Winner::A => Preference::Candidate,
        Winner::B => Preference::Other,
        Winner::Tie => Preference::Tie,
    }
}

fn spend(u: JudgeUsage) -> Spend {
    Spend {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cost_usd: u.cost_usd,
    }
}

/// A judge call that failed after the client's own retries is worth trying again later
/// (transient); an answer that is not a verdict or a bad configuration is not.
fn check_error(e: JudgeError) -> CheckError {
    match &e {
        JudgeError::Call { source, .. } if source.is_retryable() => {
            CheckError::Transient(e.to_string())
        }
        JudgeError::Call {
            source: crate::target::TargetError::Timeout(_),
            ..
        } => CheckError::Transient(e.to_string()),
        _ => CheckError::Permanent(e.to_string()),
    }
}
