//! `meshos policy check | test | scan`: the policy engine offline, without a database, for
//! policy authors and CI. They share `evaluate_check` with the `policy_check` tool, so what
//! they say is what the server would decide.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use meshos_carbon::Dataset;
use meshos_policy::{Bundle, ContentSource, Detectors, Evaluation};
use meshos_types::Verdict;
use serde::Deserialize;

use crate::checked::parse_named;
use meshos_service::{
    CheckControls, Limits, PolicyCheckInput, PolicyContext, RateLimitState, evaluate_check,
};

/// The bundle in `dir`, or the shipped default.
pub fn load_bundle(dir: Option<&Path>) -> anyhow::Result<Bundle> {
    match dir {
        Some(d) => Bundle::load_dir(d)
            .with_context(|| format!("policy bundle {} was rejected", d.display())),
        None => Ok(Bundle::embedded_default()?),
    }
}

pub fn evaluation_json(e: &Evaluation) -> serde_json::Value {
    let mut v = serde_json::json!({
        "decision": e.decision,
        "reasons": e.reasons,
        "findings": e.findings,
        "obligations": e.obligations,
        "bundle_version": e.bundle_version,
    });
    if let Some(r) = &e.redacted_content {
        v["redacted_content"] = serde_json::Value::String(r.clone());
    }
    if let Some(i) = &e.injection {
        v["injection"] = serde_json::to_value(i).unwrap_or_default();
    }
    if e.model.status != meshos_policy::ModelStatus::None {
        v["model"] = serde_json::json!({
            "status": e.model.status.as_str(),
            "family": e.model.family,
            "version": e.model.version,
        });
    }
    v
}

/// `meshos policy check`: one request, from flags or JSON; prints the decision as JSON.
pub fn check(
    bundle: &Bundle,
    tenant: &str,
    input: PolicyCheckInput,
    max_content_bytes: usize,
) -> anyhow::Result<serde_json::Value> {
    let dataset = Dataset::embedded()?;
    let detectors = Detectors::new();
    let ctx = PolicyContext {
        bundle,
        detectors: &detectors,
        dataset: &dataset,
        limits: Limits {
            max_content_bytes,
            ..Limits::default()
        },
    };
    // Offline there are no spend counters, no rate and no tenant keys: keyed redaction
    // modes mask instead, which never shows more than the server would.
    let evaluation = evaluate_check(&ctx, tenant, &input, &CheckControls::default())?;
    Ok(evaluation_json(&evaluation))
}

/// A request from `meshos policy check`'s flags; `--content-file` wins over `--content`.
pub fn request_from_flags(
    agent: Option<String>,
    action: Option<String>,
    content: Option<String>,
    content_file: Option<&Path>,
    model: Option<String>,
    tool: Option<String>,
    region: Option<String>,
) -> anyhow::Result<PolicyCheckInput> {
    let content = match content_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --content-file {}", path.display()))?,
        ),
        None => content,
    };
    Ok(PolicyCheckInput {
        agent_id: agent.unwrap_or_default(),
        action: action.unwrap_or_default(),
        content,
        content_source: None,
        model,
        tool,
        region,
        // Offline there are no spend counters to weigh an estimate against.
        estimated_tokens: None,
        estimated_cost_usd: None,
        arguments: None,
    })
}

/// Reads a request given as JSON text, or `-` for standard input.
pub fn read_request_json(arg: &str) -> anyhow::Result<PolicyCheckInput> {
    let text = if arg == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s
    } else {
        arg.to_string()
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).context("--json is not valid JSON")?;
    parse_named(value).map_err(|e| anyhow::anyhow!("--json: {e}"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    /// Tenant the requests are evaluated for (default `test`).
    #[serde(default)]
    tenant: Option<String>,
    cases: Vec<TestCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestCase {
    name: String,
    request: serde_json::Value,
    expect: Verdict,
    /// Policy ids that must be among the deciding policies.
    #[serde(default)]
    policies: Vec<String>,
    /// Entity kinds that must be among the findings.
    #[serde(default)]
    findings: Vec<String>,
    /// State the request is checked in: budget lines already exceeded (e.g.
    /// `team:day:cost_usd`) and whether the agent is over its rate limit.
    #[serde(default)]
    state: CaseState,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseState {
    #[serde(default)]
    budget_exceeded: Vec<String>,
    #[serde(default)]
    rate_limit_exceeded: bool,
    /// Healer controls in force for the request, e.g. `[quarantined]`.
    #[serde(default)]
    heal_controls: Vec<String>,
    /// The agent's trust score (0-100) as `context.trust_score`.
    #[serde(default)]
    trust_score: Option<i64>,
}

impl CaseState {
    fn controls(&self) -> CheckControls {
        let budgets = self
            .budget_exceeded
            .iter()
            .filter_map(|key| exceeded_budget(key))
            .collect();
        CheckControls {
            budgets,
            rate: self.rate_limit_exceeded.then_some(RateLimitState {
                limit_per_minute: 0,
                checks_last_minute: 1,
                exceeded: true,
            }),
            heal_controls: self.heal_controls.clone(),
            redaction_keys: None,
            trust_score: self.trust_score,
        }
    }
}

/// A budget line in the exceeded state from its key `scope:period:metric`.
fn exceeded_budget(key: &str) -> Option<meshos_policy::BudgetState> {
    use meshos_policy::{Metric, Period, Scope};
    let mut parts = key.split(':');
    let scope = match parts.next()? {
        "agent" => Scope::Agent,
        "team" => Scope::Team,
        "tenant" => Scope::Tenant,
        _ => return None,
    };
    let period = match parts.next()? {
        "day" => Period::Day,
        "month" => Period::Month,
        _ => return None,
    };
    let metric = match parts.next()? {
        "tokens" => Metric::Tokens,
        "cost_usd" => Metric::CostUsd,
        _ => return None,
    };
    Some(meshos_policy::BudgetState {
        scope,
        scope_id: String::new(),
        period,
        metric,
        limit: 0.0,
        used: 0.0,
        estimate: 0.0,
        exceeded: true,
    })
}

/// The result of one test case.
#[derive(Debug)]
pub struct CaseResult {
    pub file: String,
    pub name: String,
    pub failure: Option<String>,
}

fn test_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for d in [dir.to_path_buf(), dir.join("tests")] {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".tests.yaml") || name.ends_with(".tests.yml") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// `meshos policy test DIR`: runs every `*.tests.yaml` in DIR and DIR/tests against the bundle
/// in DIR.
pub fn run_tests(dir: &Path) -> anyhow::Result<Vec<CaseResult>> {
    let bundle = load_bundle(Some(dir))?;
    let files = test_files(dir)?;
    if files.is_empty() {
        bail!(
            "no test files in {} or {}/tests; expected files named *.tests.yaml",
            dir.display(),
            dir.display()
        );
    }
    let dataset = Dataset::embedded()?;
    let detectors = Detectors::new();
    let ctx = PolicyContext {
        bundle: &bundle,
        detectors: &detectors,
        dataset: &dataset,
        limits: Limits {
            max_content_bytes: usize::MAX,
            ..Limits::default()
        },
    };
    let mut results = Vec::new();
    for file in files {
        let label = file.display().to_string();
        let text =
            std::fs::read_to_string(&file).with_context(|| format!("cannot read {label}"))?;
        let parsed: TestFile = serde_yaml::from_str(&text)
            .with_context(|| format!("{label} is not a valid test file"))?;
        let tenant = parsed.tenant.as_deref().unwrap_or("test");
        for case in parsed.cases {
            let failure = run_case(&ctx, tenant, &case);
            results.push(CaseResult {
                file: label.clone(),
                name: case.name,
                failure,
            });
        }
    }
    Ok(results)
}

fn run_case(ctx: &PolicyContext<'_>, tenant: &str, case: &TestCase) -> Option<String> {
    let input: PolicyCheckInput = match parse_named(case.request.clone()) {
        Ok(i) => i,
        Err(e) => return Some(format!("request: {e}")),
    };
    if let Some(bad) = case
        .state
        .budget_exceeded
        .iter()
        .find(|k| exceeded_budget(k).is_none())
    {
        return Some(format!(
            "state.budget_exceeded: {bad:?} is not a budget line; expected scope:period:metric, \
             e.g. team:day:cost_usd"
        ));
    }
    let e = match evaluate_check(ctx, tenant, &input, &case.state.controls()) {
        Ok(e) => e,
        Err(err) => return Some(format!("request rejected: {err}")),
    };
    let deciding: Vec<&str> = e.reasons.iter().map(|r| r.policy_id.as_str()).collect();
    if e.decision != case.expect {
        return Some(format!(
            "expected {}, got {} (deciding: {})",
            case.expect.as_str(),
            e.decision.as_str(),
            deciding.join(", ")
        ));
    }
    let missing: Vec<&String> = case
        .policies
        .iter()
        .filter(|p| !deciding.contains(&p.as_str()))
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "expected deciding policies {missing:?}, got {deciding:?}"
        ));
    }
    let found: Vec<&str> = e.findings.iter().map(|f| f.entity.as_str()).collect();
    let missing: Vec<&String> = case
        .findings
        .iter()
        .filter(|f| !found.contains(&f.as_str()))
        .collect();
    if !missing.is_empty() {
        return Some(format!("expected findings {missing:?}, got {found:?}"));
    }
    None
}

#[derive(Deserialize)]
struct ScanLine {
    id: serde_json::Value,
    text: String,
    /// Where the text came from (`user`, `tool_result`, `retrieved_document`,
    /// `tool_definition`); `user` if absent.
    #[serde(default)]
    source: ContentSource,
}

/// `meshos policy scan FILE.jsonl`: findings for each `{"id","text"}` line (optionally with
/// `"source"`: `user`, `tool_result` or `retrieved_document`), one JSON line out per line in. A bad line is reported on stderr with its number and skipped; the count of bad
/// lines is returned so the command can exit non-zero after scanning everything else.
pub fn scan(
    input: impl BufRead,
    mut out: impl Write,
    mut err: impl Write,
) -> anyhow::Result<usize> {
    let detectors = Detectors::new();
    let mut bad = 0;
    for (n, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read line {}", n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let item: ScanLine = match serde_json::from_str(&line) {
            Ok(i) => i,
            Err(e) => {
                bad += 1;
                writeln!(
                    err,
                    "line {}: {e}; expected {{\"id\": …, \"text\": \"…\"}} and optionally \"source\": \"user\" | \"tool_result\" | \"retrieved_document\" | \"tool_definition\"",
                    n + 1
                )?;
                continue;
            }
        };
        let findings: Vec<serde_json::Value> = detectors
            .scan(&item.text)
            .into_iter()
            .map(|f| serde_json::json!({"entity": f.entity, "start": f.start, "end": f.end}))
            .collect();
        let injection = detectors.scan_injection_from(&item.text, item.source);
        let row = serde_json::json!({
            "id": item.id,
            "findings": findings,
            "injection": {
                "flagged": injection.flagged,
                "score": injection.score,
                "model_score": injection.model_score,
                "category": injection.category,
            },
        });
        writeln!(out, "{row}")?;
    }
    Ok(bad)
}

/// `meshos policy lint DIR`: proves conflicts, shadowed and never-matching policies in the
/// bundle (see `meshos_policy_lint` for the exact definitions) and prints the report, as JSON
/// with `json`. Returns the exit status: 0 no errors, 1 errors found, 2 the bundle does not
/// load or validate, 3 the analysis could not run (no usable cvc5, a solver failure).
pub async fn lint(dir: &Path, json: bool, cvc5: Option<&Path>) -> i32 {
    // A reader that closes stdout early (`| head`) must not turn findings into a panic; the
    // exit status still says what was found.
    let print = |text: &str| {
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    };
    let failed = |status: i32, kind: &str, message: String| {
        eprintln!("meshos: {message}");
        if json {
            let error = serde_json::json!({ "error": { "kind": kind, "message": message } });
            print(&format!("{error}\n"));
        }
        status
    };
    let bundle = match Bundle::load_dir(dir) {
        Ok(b) => b,
        Err(e) => {
            return failed(
                2,
                "bundle",
                format!("policy bundle {} was rejected: {e}", dir.display()),
            );
        }
    };
    let solver = match meshos_policy_lint::Cvc5::locate(cvc5) {
        Ok(s) => s,
        Err(e) => return failed(3, "solver", e.to_string()),
    };
    match meshos_policy_lint::lint(&bundle, &solver).await {
        Ok(report) => {
            if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => print(&format!("{text}\n")),
                    Err(e) => return failed(3, "report", format!("cannot write the report: {e}")),
                }
            } else {
                print(&report.to_human());
            }
            report.exit_code()
        }
        Err(e) => failed(3, "analysis", format!("policy lint could not finish: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_writes_one_line_per_input_and_reports_bad_lines() {
        let input =
            "{\"id\":1,\"text\":\"mail a@b.io\"}\nnot json\n{\"id\":\"x\",\"text\":\"clean\"}\n";
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let bad = scan(input.as_bytes(), &mut out, &mut err).unwrap();
        assert_eq!(bad, 1);
        let out = String::from_utf8(out).unwrap();
        let rows: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["findings"][0]["entity"], "EMAIL");
        assert_eq!(rows[0]["findings"][0]["start"], 5);
        assert_eq!(rows[1]["findings"].as_array().unwrap().len(), 0);
        assert_eq!(rows[1]["injection"]["flagged"], false);
        assert!(String::from_utf8(err).unwrap().starts_with("line 2:"));
    }

    #[test]
    fn shipped_bundle_passes_its_own_tests() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/default");
        let results = run_tests(&dir).unwrap();
        assert!(results.len() >= 10);
        let failures: Vec<_> = results.iter().filter(|r| r.failure.is_some()).collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn a_wrong_expectation_is_reported_with_the_actual_decision() {
        let dir = tempfile::tempdir().unwrap();
        meshos_service::test_support::copy_tree(
            &meshos_service::test_support::shipped_bundle_dir(),
            dir.path(),
            &["tests"],
        );
        std::fs::write(
            dir.path().join("wrong.tests.yaml"),
            "cases:\n  - name: shell is fine\n    request: {agent_id: a, action: shell.exec}\n    expect: allow\n",
        )
        .unwrap();
        let results = run_tests(dir.path()).unwrap();
        let failure = results[0].failure.as_deref().unwrap();
        assert!(
            failure.contains("expected allow, got deny") && failure.contains("denied-actions"),
            "{failure}"
        );
    }
}
