//! REST twins of the MCP tools, for agents and operators that do not speak MCP:
//! `POST /v1/policy/check`, `POST /v1/carbon/route`, `GET /v1/agents/{id}/trust`,
//! `GET /v1/incidents`, `GET /v1/incidents/{id}`, `POST /v1/incidents/{id}/approve|deny|release`.
//! Each handler parses, calls the same `Mesh` / `incidents` function the tool calls, and maps
//! `MeshError` onto a status: 400 invalid, 403 forbidden, 404 not found, 503 storage, 500 else.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use meshos_types::Principal;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checked::parse_named;
use meshos_service::eval_api::{EvalResultsInput, EvalRunEntry, EvalRunInput};
use meshos_service::incidents::{
    self, IncidentDecideInput, IncidentListInput, IncidentReleaseInput, IncidentShowInput,
};
use meshos_service::{Mesh, MeshError};

fn error_reply(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// The reply for a `Mesh` result.
fn reply<T: Serialize>(result: Result<T, MeshError>) -> Response {
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => {
            let status = match e {
                MeshError::Invalid { .. } => StatusCode::BAD_REQUEST,
                MeshError::Forbidden(_) => StatusCode::FORBIDDEN,
                MeshError::NotFound(_) => StatusCode::NOT_FOUND,
                MeshError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
                MeshError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                MeshError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            };
            error_reply(status, e.to_string())
        }
    }
}

/// A JSON body as `T`, or the message for a 400 naming the field that is wrong.
fn body_as<T: DeserializeOwned>(body: &Bytes) -> Result<T, MeshError> {
    // A well-formed body goes straight into `T`. Only a failure takes the path through a JSON
    // value, which names the offending field the way the MCP tools do (and is also where a
    // body with a repeated key is read, last value winning, as it always was).
    if let Ok(input) = serde_json::from_slice::<T>(body) {
        return Ok(input);
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| MeshError::Invalid {
            field: "body".into(),
            message: format!("not JSON ({e}); expected a JSON object"),
        })?;
    parse_named(value).map_err(|e| MeshError::Invalid {
        field: "body".into(),
        message: e,
    })
}

/// `GET /v1/whoami`: who the bearer token is (tenant, role, agent) — a client's check that its
/// token works, and the cheapest authenticated request (the throughput bench's floor).
pub async fn whoami(Extension(p): Extension<Principal>) -> Response {
    Json(serde_json::json!({
        "tenant": p.tenant,
        "role": p.role.as_str(),
        "agent_id": p.agent_id,
    }))
    .into_response()
}

pub async fn policy_check(
    State(mesh): State<Arc<Mesh>>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> Response {
    match body_as(&body) {
        Ok(input) => reply(mesh.policy_check(&p, input).await),
        Err(e) => reply::<()>(Err(e)),
    }
}

pub async fn carbon_route(
    State(mesh): State<Arc<Mesh>>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> Response {
    match body_as(&body) {
        Ok(input) => reply(mesh.carbon_route(&p, input).await),
        Err(e) => reply::<()>(Err(e)),
    }
}

pub async fn trust_score(
    State(mesh): State<Arc<Mesh>>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Response {
    reply(mesh.trust_score(&p, &agent_id).await)
}

/// `?state=awaiting_approval&state=executing&limit=20`
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    agent: Option<String>,
}

pub async fn incident_list(
    State(mesh): State<Arc<Mesh>>,
    Extension(p): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> Response {
    // `state` takes a comma-separated list: axum's query parser keeps one value per key.
    let states = q
        .state
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let input = IncidentListInput {
        states,
        limit: q.limit,
        agent: q.agent,
    };
    reply(incidents::list(&mesh, &p, input).await)
}

pub async fn incident_show(
    State(mesh): State<Arc<Mesh>>,
    Extension(p): Extension<Principal>,
    Path(incident_id): Path<String>,
) -> Response {
    reply(incidents::show(&mesh, &p, IncidentShowInput { incident_id }).await)
}

/// The body of an approval or denial: `{"digest": "…", "note": "…"}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    digest: String,
    #[serde(default)]
    note: Option<String>,
}

async fn decide(
    mesh: &Mesh,
    p: &Principal,
    incident_id: String,
    body: &Bytes,
    approve: bool,
) -> Response {
    let b: DecideBody = match body_as(body) {
        Ok(b) => b,
        Err(e) => return reply::<()>(Err(e)),
    };
    let input = IncidentDecideInput {
        incident_id,
        digest: b.digest,
        note: b.note,
    };
    reply(incidents::decide(mesh, p, input, approve).await)
}

pub async fn incident_approve(
    State(mesh): State<Arc<Mesh>>,
    Extension(p): Extension<Principal>,
    Path(incident_id): Path<String>,
    body: Bytes,
) -> Response {
    decide(&mesh, &p, incident_id, &body, true).await
}

pub async fn incident_deny(
    State(mesh): State<Arc<Mesh>>,
    Extension(p): Extension<Principal>,
    Path(incident_id): Path<String>,
    body: Bytes,
) -> Response {
    decide(&mesh, &p, incident_id, &body, false).await
}

/// The body of a release: `{"note": "…"}` (optional; an empty body is fine).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    #[serde(default)]
    note: Option<String>,
}

pub async fn incident_release(
    State(mesh): State<Arc<Mesh>>,
    Extension(p): Extension<Principal>,
    Path(incident_id): Path<String>,
    body: Bytes,
) -> Response {
    let b: ReleaseBody = if body.iter().all(u8::is_ascii_whitespace) {
        ReleaseBody::default()
    } else {
        match body_as(&body) {
            Ok(b) => b,
            Err(e) => return reply::<()>(Err(e)),
        }
    };
    let input = IncidentReleaseInput {
        incident_id,
        note: b.note,
    };
    reply(incidents::release(&mesh, &p, input).await)
}

/// `GET /v1/evals/suites`: the suites directory's suites, and the errors of those that do not load.
pub async fn eval_suites(
    State(mesh): State<Arc<Mesh>>,
    Extension(p): Extension<Principal>,
) -> Response {
    reply(mesh.eval_suite_list(&p))
}

/// `GET /v1/evals/suites/{suite_id}`: the `evals://suites/{id}` resource.
pub async fn eval_suite(
    State(mesh): State<Arc<Mesh>>,
    Extension(p): Extension<Principal>,
    Path(suite_id): Path<String>,
) -> Response {
    reply(mesh.eval_suite_view(&p, &suite_id).await)
}

/// `POST /v1/evals/runs` with an `eval_run` body: answers when the run ends.
pub async fn eval_run(
    State(mesh): State<Arc<Mesh>>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> Response {
    let input: EvalRunInput = match body_as(&body) {
        Ok(input) => input,
        Err(e) => return reply::<()>(Err(e)),
    };
    // The run goes on in its own task so that a client that hangs up cancels it (stored as
    // cancelled, in the ledger) instead of dropping it half-written.
    let cancel = tokio_util::sync::CancellationToken::new();
    let _cancel_on_hang_up = cancel.clone().drop_guard();
    let run =
        tokio::spawn(async move { mesh.eval_run_requested(&p, input, None, Some(cancel)).await });
    match run.await {
        Ok(result) => reply(result),
        Err(e) => reply::<()>(Err(MeshError::Internal(format!(
            "the eval run failed: {e}"
        )))),
    }
}

/// `?suite=support-bot&limit=20`, or for one run `?after=item-0100&limit=100&compare_with=evr-…`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalRunsQuery {
    #[serde(default)]
    suite: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    compare_with: Option<String>,
}

/// `GET /v1/evals/runs`: the tenant's runs, newest first.
pub async fn eval_runs(
    State(mesh): State<Arc<Mesh>>,
    Extension(p): Extension<Principal>,
    Query(q): Query<EvalRunsQuery>,
) -> Response {
    let input = EvalResultsInput {
        run_id: None,
        suite: q.suite,
        limit: q.limit,
        after: q.after,
        compare_with: q.compare_with,
    };
    reply(mesh.eval_results(&p, input).await)
}

/// `GET /v1/evals/runs/{run_id}`: the run, a page of its results and its comparison.
pub async fn eval_run_show(
    State(mesh): State<Arc<Mesh>>,
    Extension(p): Extension<Principal>,
    Path(run_id): Path<String>,
    Query(q): Query<EvalRunsQuery>,
) -> Response {
    if q.suite.is_some() {
        return reply::<()>(Err(MeshError::Invalid {
            field: "suite".into(),
            message: "a run belongs to one suite; expected no suite filter here".into(),
        }));
    }
    let input = EvalResultsInput {
        run_id: Some(run_id),
        suite: None,
        limit: q.limit,
        after: q.after,
        compare_with: q.compare_with,
    };
    reply(mesh.eval_results(&p, input).await)
}

/// `POST /v1/evals/runs/{run_id}/baseline`: pins a completed run as its suite's baseline.
pub async fn eval_pin_baseline(
    State(mesh): State<Arc<Mesh>>,
    Extension(p): Extension<Principal>,
    Path(run_id): Path<String>,
) -> Response {
    reply(
        mesh.pin_eval_baseline(&p, &run_id)
            .await
            .map(EvalRunEntry::from),
    )
}
