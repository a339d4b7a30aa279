use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use serde_json::json;

use super::*;
use crate::dataset::item_from_object;

fn item(v: Value) -> Item {
    item_from_object(v.as_object().cloned().unwrap_or_default()).unwrap()
}

fn answer(text: &str) -> Output {
    Output {
        text: text.into(),
        latency_ms: 100.0,
        ..Output::default()
    }
}

fn spec(yaml: &str) -> ScorerSpec {
    let mut map: serde_yaml::Mapping = serde_yaml::from_str(yaml).unwrap();
    let kind = map.remove("type").unwrap();
    let fields = serde_yaml::to_string(&map).unwrap();
    ScorerSpec::from_yaml_fields(kind.as_str().unwrap(), &fields)
        .unwrap()
        .unwrap()
}

fn scorer(yaml: &str) -> Scorer {
    let s = spec(yaml);
    Scorer::new(s.kind(), s, None).unwrap()
}

fn config_error_of(yaml: &str) -> ScorerConfigError {
    let s = spec(yaml);
    Scorer::new(s.kind(), s, None).unwrap_err()
}

fn pure(yaml: &str, i: &Item, o: &Output) -> Score {
    scorer(yaml).score_pure(i, o).unwrap()
}

/// Runs a future whose work is already done (the stubs below never wait).
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

// ---- exact, normalized -------------------------------------------------------------------

#[test]
fn exact_compares_trimmed_text_with_the_expected_field() {
    let i = item(json!({"id": "1", "expected": {"answer": "Paris"}}));
    let s = pure("type: exact", &i, &answer("Paris\n"));
    assert!(s.passed && s.value == 1.0, "{s:?}");
    assert_eq!(s.scorer, "exact");
    let s = pure("type: exact", &i, &answer("paris"));
    assert!(!s.passed && s.value == 0.0);
    assert_eq!(s.detail, "expected `Paris`, got `paris`");
    let s = pure("{type: exact, trim: false}", &i, &answer("Paris\n"));
    assert!(!s.passed);
}

#[test]
fn exact_reads_a_json_field_and_equates_numbers_with_their_csv_text() {
    let i = item(json!({"id": "1", "expected": {"total": "42", "name": "Ann"}}));
    let o = answer("```json\n{\"total\": 42, \"customer\": {\"name\": \"Ann\"}}\n```");
    assert!(pure("{type: exact, expected: total, pointer: /total}", &i, &o).passed);
    assert!(
        pure(
            "{type: exact, expected: name, pointer: /customer/name}",
            &i,
            &o
        )
        .passed
    );
    let s = pure("{type: exact, expected: name, pointer: /nope}", &i, &o);
    assert_eq!(s.detail, "the answer has no value at `/nope`");
    let s = pure(
        "{type: exact, expected: name, pointer: /x}",
        &i,
        &answer("not json"),
    );
    assert!(
        s.detail.starts_with("the answer is not JSON"),
        "{}",
        s.detail
    );
    let s = pure("{type: exact, expected: missing}", &i, &o);
    assert_eq!(s.detail, "item `1` has no expected field `missing`");
}

#[test]
fn normalized_folds_unicode_case_punctuation_and_whitespace() {
    let i = item(json!({"id": "1", "expected": {"answer": "ＡＢＣ – Café,  ok!"}}));
    let s = pure("type: normalized", &i, &answer("abc café ok"));
    assert!(s.passed, "{s:?}");
    assert_eq!(
        normalize("“Don’t”  STOP…", &Normalization::default()),
        "dont stop"
    );
    assert_eq!(normalize("ﬁne", &Normalization::default()), "fine");
    let s = pure(
        "{type: normalised, case: false}",
        &i,
        &answer("abc café ok"),
    );
    assert!(!s.passed, "case kept: ABC ≠ abc");
}

#[test]
fn normalized_contains_mode_finds_the_expected_text_inside_the_answer() {
    let i = item(json!({"id": "1", "expected": {"answer": "30 days"}}));
    let yaml = "{type: normalized, mode: contains}";
    assert!(pure(yaml, &i, &answer("You can return items within 30 Days.")).passed);
    let s = pure(yaml, &i, &answer("Within a month."));
    assert!(!s.passed);
    assert!(
        s.detail.contains("does not contain `30 days`"),
        "{}",
        s.detail
    );
    // Nothing left after normalising would be contained in any answer: refused.
    let empty = item(json!({"id": "2", "expected": {"answer": "?!"}}));
    assert!(!pure(yaml, &empty, &answer("anything")).passed);
}

// ---- regex ---------------------------------------------------------------------------------

#[test]
fn regex_must_or_must_not_match() {
    let i = item(json!({"id": "1"}));
    let s = pure(
        r"{type: regex, pattern: '(?i)ticket #\d+'}",
        &i,
        &answer("Opened Ticket #123."),
    );
    assert!(s.passed);
    assert_eq!(s.detail, "matched `Ticket #123`");
    let s = pure(
        r"{type: regex, pattern: '\bsorry\b', must_match: false}",
        &i,
        &answer("So sorry!"),
    );
    assert!(!s.passed);
    assert!(
        pure(
            r"{type: regex, pattern: '\bsorry\b', must_match: false}",
            &i,
            &answer("ok")
        )
        .passed
    );
}

#[test]
fn regex_errors_and_oversized_patterns_are_refused_at_load() {
    let e = config_error_of("{type: regex, pattern: 'a(b'}");
    assert_eq!(e.field, "pattern");
    assert!(e.message.starts_with("invalid regex"), "{}", e.message);
    let e = config_error_of(r"{type: regex, pattern: '(\w{100}){100}'}");
    assert_eq!(e.field, "pattern");
    assert!(e.message.contains("size limit"), "{}", e.message);
    let long = format!(
        "{{type: regex, pattern: '{}'}}",
        "a".repeat(MAX_PATTERN_LEN + 1)
    );
    assert!(config_error_of(&long).message.contains("at most"));
    assert_eq!(
        config_error_of("{type: regex, pattern: a, pointer: name}").field,
        "pointer"
    );
}

// ---- contains --------------------------------------------------------------------------------

#[test]
fn contains_any_and_all_with_literal_values() {
    let i = item(json!({"id": "1"}));
    let o = answer("Please RESET your password from Settings.");
    assert!(pure("{type: contains_any, values: [reset, restart]}", &i, &o).passed);
    assert!(
        !pure(
            "{type: contains_any, values: [reset], case_sensitive: true}",
            &i,
            &o
        )
        .passed
    );
    let s = pure(
        "{type: contains_all, values: [reset, settings, support]}",
        &i,
        &o,
    );
    assert!(!s.passed);
    assert!((s.value - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(s.detail, "missing `support`");
    let s = pure("{type: contains_all, values: [reset, settings]}", &i, &o);
    assert!(s.passed && s.value == 1.0);
}

#[test]
fn contains_reads_lists_from_expected_fields_and_json_strings() {
    let i = item(
        json!({"id": "1", "expected": {"keywords": ["refund", "30 days"], "csv": "[\"refund\"]", "bad": 3}}),
    );
    let o = answer("A refund is possible within 30 days.");
    assert!(pure("{type: contains_all, expected: keywords}", &i, &o).passed);
    assert!(pure("{type: contains_any, expected: csv}", &i, &o).passed);
    let s = pure("{type: contains_any, expected: bad}", &i, &o);
    assert!(
        !s.passed && s.detail.contains("expected a list"),
        "{}",
        s.detail
    );
}

#[test]
fn contains_needs_exactly_one_source_of_strings() {
    assert_eq!(config_error_of("{type: contains_any}").field, "values");
    assert_eq!(
        config_error_of("{type: contains_any, values: [a], expected: b}").field,
        "values"
    );
    assert_eq!(
        config_error_of("{type: contains_all, values: []}").field,
        "values"
    );
    assert_eq!(
        config_error_of("{type: contains_all, values: [a, '']}").field,
        "values[1]"
    );
}

// ---- json_schema -----------------------------------------------------------------------------

const SCHEMA: &str = r#"{type: json_schema, schema: {type: object, required: [name, total], properties: {name: {type: string}, total: {type: number, minimum: 0}}, additionalProperties: false}}"#;

#[test]
fn json_schema_accepts_valid_answers_and_names_what_is_wrong() {
    let i = item(json!({"id": "1"}));
    assert!(pure(SCHEMA, &i, &answer(r#"{"name": "Ann", "total": 3.5}"#)).passed);
    assert!(
        pure(
            SCHEMA,
            &i,
            &answer("```json\n{\"name\": \"Ann\", \"total\": 0}\n```")
        )
        .passed
    );
    let s = pure(SCHEMA, &i, &answer(r#"{"name": "Ann", "total": -1}"#));
    assert!(!s.passed);
    assert!(s.detail.starts_with("/total:"), "{}", s.detail);
    let s = pure(SCHEMA, &i, &answer(r#"{"name": 3}"#));
    assert!(s.detail.contains("total"), "{}", s.detail);
    let s = pure(SCHEMA, &i, &answer("Sure! Here it is"));
    assert!(
        s.detail.starts_with("the answer is not JSON"),
        "{}",
        s.detail
    );
}

#[test]
fn json_schema_refuses_invalid_or_missing_schemas() {
    let e = config_error_of("{type: json_schema, schema: {type: 12}}");
    assert_eq!(e.field, "schema");
    assert!(
        e.message.starts_with("not a valid JSON Schema"),
        "{}",
        e.message
    );
    assert_eq!(config_error_of("{type: json_schema}").field, "schema");
}

// ---- numeric ---------------------------------------------------------------------------------

#[test]
fn numeric_tolerances() {
    let i = item(json!({"id": "1", "expected": {"answer": "100", "total": 1234.5}}));
    assert!(pure("{type: numeric, abs_tol: 0.5}", &i, &answer("100.4")).passed);
    assert!(!pure("{type: numeric, abs_tol: 0.5}", &i, &answer("100.6")).passed);
    assert!(pure("{type: numeric, rel_tol: 0.01}", &i, &answer("101")).passed);
    assert!(!pure("{type: numeric, rel_tol: 0.001}", &i, &answer("101")).passed);
    // Either tolerance suffices.
    assert!(
        pure(
            "{type: numeric, abs_tol: 0.1, rel_tol: 0.02}",
            &i,
            &answer("101.5")
        )
        .passed
    );
    // Neither given: exactly equal.
    assert!(pure("type: numeric", &i, &answer("100")).passed);
    assert!(!pure("type: numeric", &i, &answer("100.001")).passed);
}

#[test]
fn numeric_reads_the_first_number_in_prose_or_a_json_field() {
    let i = item(json!({"id": "1", "expected": {"total": 1234.5}}));
    let s = pure(
        "{type: numeric, expected: total}",
        &i,
        &answer("The total is $1,234.50 (incl. 2 items)."),
    );
    assert!(s.passed, "{s:?}");
    assert!(
        pure(
            "{type: numeric, expected: total, pointer: /t}",
            &i,
            &answer(r#"{"t": "1234.5"}"#)
        )
        .passed
    );
    let s = pure("{type: numeric, expected: total}", &i, &answer("no idea"));
    assert!(!s.passed && s.value == 0.0);
    assert_eq!(s.detail, "no number in the answer");
    assert_eq!(first_number("x -3.5e2 y"), Some(-350.0));
    assert_eq!(first_number("v.5"), Some(0.5));
    assert_eq!(first_number("12,34"), Some(12.0));
    assert_eq!(
        config_error_of("{type: numeric, abs_tol: -1}").field,
        "abs_tol"
    );
}

// ---- tool_calls ------------------------------------------------------------------------------

fn calls(list: &[(&str, Value)]) -> Output {
    Output {
        tool_calls: list
            .iter()
            .map(|(n, a)| ToolCall {
                name: n.to_string(),
                arguments: a.clone(),
            })
            .collect(),
        ..Output::default()
    }
}

#[test]
fn tool_calls_exact_arguments_in_any_order() {
    let i = item(json!({"id": "1", "expected": {"tool_calls": [
        {"name": "lookup_order", "arguments": {"order_id": "A1"}},
        {"name": "refund", "arguments": {"order_id": "A1", "amount": 20}}
    ]}}));
    let o = calls(&[
        ("refund", json!("{\"amount\": 20.0, \"order_id\": \"A1\"}")),
        ("lookup_order", json!({"order_id": "A1"})),
    ]);
    let s = pure("type: tool_calls", &i, &o);
    assert!(s.passed && s.value == 1.0, "{s:?}");
    let s = pure("{type: tool_calls, order: exact}", &i, &o);
    assert!(!s.passed && s.value == 0.0, "{s:?}");
    let wrong = calls(&[
        ("lookup_order", json!({"order_id": "A1"})),
        ("refund", json!({"order_id": "A1", "amount": 25})),
    ]);
    let s = pure("type: tool_calls", &i, &wrong);
    assert!(!s.passed && s.value == 0.5);
    assert!(s.detail.contains("matched 1 of 2"), "{}", s.detail);
}

#[test]
fn tool_calls_subset_arguments_extras_and_a_matching_greedy_would_miss() {
    let i = item(
        json!({"id": "1", "expected": {"tool_calls": "[{\"name\": \"search\"}, {\"name\": \"search\", \"arguments\": {\"q\": \"a\"}}]"}}),
    );
    // The first expected call (any arguments) must not take the only call with q = a.
    let o = calls(&[
        ("search", json!({"q": "a", "limit": 5})),
        ("search", json!({"q": "b"})),
    ]);
    let s = pure("{type: tool_calls, arguments: subset}", &i, &o);
    assert!(s.passed, "{s:?}");
    assert!(!pure("{type: tool_calls, arguments: exact}", &i, &o).passed);
    let extra = calls(&[
        ("search", json!({"q": "a"})),
        ("search", json!({})),
        ("log", json!({})),
    ]);
    let s = pure("type: tool_calls", &i, &extra);
    assert!(
        !s.passed && s.detail.contains("1 not expected"),
        "{}",
        s.detail
    );
    assert!(pure("{type: tool_calls, allow_extra: true}", &i, &extra).passed);
    // In order: the call with q = a comes first here, so the any-arguments call cannot precede
    // it; with the calls the other way round, the expected sequence is there.
    let s = pure(
        "{type: tool_calls, allow_extra: true, order: exact}",
        &i,
        &extra,
    );
    assert!(!s.passed && s.value == 0.5, "{s:?}");
    let in_order = calls(&[
        ("search", json!({})),
        ("log", json!({})),
        ("search", json!({"q": "a"})),
    ]);
    assert!(
        pure(
            "{type: tool_calls, allow_extra: true, order: exact}",
            &i,
            &in_order
        )
        .passed
    );
    assert!(!pure("{type: tool_calls, order: exact}", &i, &in_order).passed);
}

#[test]
fn tool_calls_with_nothing_expected_pass_only_without_calls() {
    let i = item(json!({"id": "1", "expected": {"tool_calls": []}}));
    assert!(pure("type: tool_calls", &i, &answer("just text")).passed);
    let s = pure("type: tool_calls", &i, &calls(&[("x", json!({}))]));
    assert!(!s.passed && s.value == 0.0);
}

// ---- latency, cost ---------------------------------------------------------------------------

#[test]
fn latency_and_cost_limits_report_the_measured_number() {
    let i = item(json!({"id": "1"}));
    let o = Output {
        latency_ms: 1500.0,
        cost_usd: 0.002,
        ..Output::default()
    };
    let s = pure("{type: latency, max_ms: 1000}", &i, &o);
    assert!(!s.passed && s.value == 1500.0);
    assert!(pure("{type: latency, max_ms: 2000}", &i, &o).passed);
    let s = pure("{type: cost, max_usd: 0.001}", &i, &o);
    assert!(!s.passed && s.value == 0.002);
    assert!(!spec("{type: cost, max_usd: 1}").higher_is_better());
    assert!(spec("type: exact").higher_is_better());
    assert_eq!(
        config_error_of("{type: latency, max_ms: 0}").field,
        "max_ms"
    );
}

// ---- policy_check ----------------------------------------------------------------------------

struct StubPolicy {
    verdict: OutputCheckVerdict,
    seen: Mutex<Vec<String>>,
}

impl OutputCheck for StubPolicy {
    fn check<'a>(
        &'a self,
        request: OutputCheckRequest<'a>,
    ) -> BoxFuture<'a, Result<OutputCheckVerdict, CheckError>> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(format!(
                "{}|{}|{}",
                request.agent_id, request.action, request.content
            ));
        }
        let v = self.verdict.clone();
        Box::pin(async move { Ok(v) })
    }
}

fn policy(decision: Verdict, entities: &[&str], injection: bool) -> StubPolicy {
    StubPolicy {
        verdict: OutputCheckVerdict {
            decision,
            findings: entities
                .iter()
                .map(|e| Finding {
                    entity: e.to_string(),
                    start: 0,
                    end: 1,
                    detector: "stub".into(),
                })
                .collect(),
            injection_flagged: injection,
            reasons: vec!["deny-pii: personal data in output".into()],
        },
        seen: Mutex::new(Vec::new()),
    }
}

fn policy_score(yaml: &str, checker: &StubPolicy, o: &Output) -> Result<Score, ScoreError> {
    let ctx = ScoreContext {
        agent_id: "support-bot",
        output_check: Some(checker),
        ..ScoreContext::default()
    };
    ready(scorer(yaml).score(&item(json!({"id": "q1"})), o, &ctx)).map(|s| s.score)
}

#[test]
fn policy_check_passes_clean_allowed_answers_and_sends_text_and_tool_calls() {
    let checker = policy(Verdict::Allow, &[], false);
    let mut o = answer("Your order shipped.");
    o.tool_calls.push(ToolCall {
        name: "notify".into(),
        arguments: json!({"channel": "email"}),
    });
    let s = policy_score("type: policy_check", &checker, &o).unwrap();
    assert!(s.passed && s.value == 1.0, "{s:?}");
    assert_eq!(s.detail, "passed no_pii, no_injection, allowed");
    let seen = checker.seen.lock().unwrap();
    assert_eq!(
        seen[0],
        "support-bot|eval.output|Your order shipped.\nnotify {\"channel\":\"email\"}"
    );
}

#[test]
fn policy_check_fails_on_findings_injection_or_a_refusal() {
    let o = answer("Call Ann on +44 20 7946 0958");
    let s = policy_score(
        "type: policy_check",
        &policy(Verdict::Redact, &["PHONE", "PERSON", "PHONE"], false),
        &o,
    )
    .unwrap();
    assert!(!s.passed);
    assert_eq!(
        s.detail,
        "personal data or secrets found (PERSON, PHONE); decision `redact`: deny-pii: personal data in output"
    );
    let s = policy_score("type: policy_check", &policy(Verdict::Allow, &[], true), &o).unwrap();
    assert_eq!(s.detail, "flagged as prompt injection");
    // Only the checks asked for count.
    let s = policy_score(
        "{type: policy_check, checks: [no_injection]}",
        &policy(Verdict::Deny, &["EMAIL"], false),
        &o,
    )
    .unwrap();
    assert!(s.passed, "{s:?}");
    assert_eq!(
        config_error_of("{type: policy_check, checks: []}").field,
        "checks"
    );
}

#[test]
fn scorers_that_need_io_say_so_without_it() {
    let s = scorer("type: policy_check");
    assert!(
        s.score_pure(&item(json!({"id": "1"})), &answer("x"))
            .is_none()
    );
    let e = ready(s.score(
        &item(json!({"id": "1"})),
        &answer("x"),
        &ScoreContext::default(),
    ))
    .unwrap_err();
    assert_eq!(e.scorer, "policy_check");
    assert!(matches!(e.error, CheckError::Permanent(ref m) if m.contains("policy engine")));
    let e = ready(scorer("{type: judge, rubric: r}").score(
        &item(json!({"id": "1"})),
        &answer("x"),
        &ScoreContext::default(),
    ))
    .unwrap_err();
    assert!(e.to_string().contains("judge model"), "{e}");
}

// ---- judge, pairwise -------------------------------------------------------------------------

/// Which of two texts shown in this order a stub judge prefers.
#[derive(Clone, Copy)]
enum Shown {
    First,
    Second,
    Tie,
}

/// Grades by a fixed score; prefers by a rule over (first shown, second shown), asked in both
/// orders as the real client does.
struct StubJudge {
    score: f64,
    prefer: fn(&str, &str) -> Shown,
    references: Mutex<Vec<Option<String>>>,
}

impl Judge for StubJudge {
    fn grade<'a>(&'a self, request: GradeRequest<'a>) -> BoxFuture<'a, Result<Grade, CheckError>> {
        if let Ok(mut r) = self.references.lock() {
            r.push(request.reference.clone());
        }
        let score = self.score;
        Box::pin(async move {
            Ok(Grade {
                score,
                reasoning: "clear and correct".into(),
                spend: Spend {
                    input_tokens: 100,
                    output_tokens: 20,
                    cost_usd: 0.001,
                },
            })
        })
    }

    fn compare<'a>(
        &'a self,
        request: PairwiseRequest<'a>,
    ) -> BoxFuture<'a, Result<PairwiseJudgement, CheckError>> {
        let (c, o) = (request.candidate.text.as_str(), request.other.text.as_str());
        let candidate_first = match (self.prefer)(c, o) {
            Shown::First => Preference::Candidate,
            Shown::Second => Preference::Other,
            Shown::Tie => Preference::Tie,
        };
        let other_first = match (self.prefer)(o, c) {
            Shown::First => Preference::Other,
            Shown::Second => Preference::Candidate,
            Shown::Tie => Preference::Tie,
        };
        Box::pin(async move {
            Ok(PairwiseJudgement {
                candidate_first,
                other_first,
                reasoning: "because".into(),
                spend: Spend::default(),
            })
        })
    }
}

fn judge(score: f64, prefer: fn(&str, &str) -> Shown) -> StubJudge {
    StubJudge {
        score,
        prefer,
        references: Mutex::new(Vec::new()),
    }
}

fn judged(s: &Scorer, j: &StubJudge, i: &Item, o: &Output) -> Result<Scored, ScoreError> {
    let ctx = ScoreContext {
        agent_id: "a",
        judge: Some(j),
        ..ScoreContext::default()
    };
    ready(s.score(i, o, &ctx))
}

#[test]
fn judge_grades_against_the_threshold_with_the_reference_answer() {
    let i = item(json!({"id": "1", "expected": {"answer": "42"}}));
    let s = scorer(
        "{type: judge, rubric: 'Correct and polite', pass_threshold: 0.7, reference: answer}",
    );
    let j = judge(0.8, |_, _| Shown::Tie);
    let scored = judged(&s, &j, &i, &answer("It is 42")).unwrap();
    assert_eq!(scored.spend.cost_usd, 0.001, "the judge's spend comes back");
    let score = scored.score;
    assert!(score.passed && score.value == 0.8);
    assert!(
        score.detail.starts_with("judge score 0.80 (pass at 0.7)"),
        "{}",
        score.detail
    );
    assert_eq!(j.references.lock().unwrap()[0].as_deref(), Some("42"));
    let low = judge(0.6, |_, _| Shown::Tie);
    assert!(!judged(&s, &low, &i, &answer("x")).unwrap().score.passed);
    let broken = judge(7.0, |_, _| Shown::Tie);
    let e = judged(&s, &broken, &i, &answer("x")).unwrap_err();
    assert!(e.to_string().contains("outside 0..1"), "{e}");
    assert_eq!(
        config_error_of("{type: judge, rubric: r, pass_threshold: 2}").field,
        "pass_threshold"
    );
}

#[test]
fn pairwise_swaps_positions_and_cancels_position_bias() {
    let i = item(json!({"id": "1", "expected": {"answer": "short"}}));
    let s = scorer("{type: pairwise, rubric: 'more helpful', reference: answer}");
    let o = answer("a longer, better answer");
    // Prefers the longer text wherever it is shown: a consistent win.
    let longer = judge(0.0, |a, b| {
        if a.len() > b.len() {
            Shown::First
        } else {
            Shown::Second
        }
    });
    let score = judged(&s, &longer, &i, &o).unwrap().score;
    assert_eq!((score.passed, score.value), (true, 1.0));
    assert!(
        score.detail.starts_with("preferred in both orders"),
        "{}",
        score.detail
    );
    // Prefers the shorter: a consistent loss.
    let shorter = judge(0.0, |a, b| {
        if a.len() < b.len() {
            Shown::First
        } else {
            Shown::Second
        }
    });
    let score = judged(&s, &shorter, &i, &o).unwrap().score;
    assert_eq!((score.passed, score.value), (false, 0.0));
    // Always the first shown: pure position bias, a tie.
    let first = judge(0.0, |_, _| Shown::First);
    let score = judged(&s, &first, &i, &o).unwrap().score;
    assert_eq!((score.passed, score.value), (true, 0.5));
    assert!(score.detail.contains("position bias"), "{}", score.detail);
    // A win one way and a tie the other.
    let lean = judge(0.0, |a, _| {
        if a.len() > 10 {
            Shown::First
        } else {
            Shown::Tie
        }
    });
    assert_eq!(judged(&s, &lean, &i, &o).unwrap().score.value, 0.75);
}

#[test]
fn pairwise_against_a_recorded_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("base.jsonl");
    std::fs::write(
        &path,
        "{\"id\": \"1\", \"output\": \"baseline answer that is long\"}\n",
    )
    .unwrap();
    let baseline = RecordedTarget::open(&crate::target::RecordedTargetConfig { path }).unwrap();
    let s = Scorer::new(
        "vs-last-release",
        spec("{type: pairwise, rubric: r, baseline: base.jsonl}"),
        Some(Arc::new(baseline)),
    )
    .unwrap();
    let longer = judge(0.0, |a, b| {
        if a.len() > b.len() {
            Shown::First
        } else {
            Shown::Second
        }
    });
    let score = judged(&s, &longer, &item(json!({"id": "1"})), &answer("short"))
        .unwrap()
        .score;
    assert_eq!(
        (score.scorer.as_str(), score.value),
        ("vs-last-release", 0.0)
    );
    let e = judged(&s, &longer, &item(json!({"id": "2"})), &answer("short")).unwrap_err();
    assert!(e.to_string().contains("no answer to compare with"), "{e}");
    assert_eq!(
        config_error_of("{type: pairwise, rubric: r}").field,
        "reference"
    );
}

// ---- the vocabulary ------------------------------------------------------------------------

#[test]
fn every_kind_is_listed_and_parses() {
    for kind in ScorerSpec::KINDS {
        let yaml = match *kind {
            "regex" => "{type: regex, pattern: x}".to_string(),
            "latency" => "{type: latency, max_ms: 1}".to_string(),
            "cost" => "{type: cost, max_usd: 1}".to_string(),
            "judge" | "pairwise" => format!("{{type: {kind}, rubric: r}}"),
            other => format!("{{type: {other}}}"),
        };
        assert_eq!(spec(&yaml).kind(), *kind);
    }
    assert!(
        ScorerSpec::from_yaml_fields("nope", "{}")
            .unwrap()
            .is_none()
    );
}

#[test]
fn scorers_serialise_as_written_with_their_name() {
    let s = Scorer::new(
        "refund-window",
        spec("{type: regex, pattern: '\\d+ days'}"),
        None,
    )
    .unwrap();
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(
        v,
        json!({"type": "regex", "name": "refund-window", "pattern": "\\d+ days", "must_match": true})
    );
    let score = Score {
        scorer: "x".into(),
        passed: true,
        value: 0.25,
        detail: "d".into(),
    };
    let back: Score = serde_json::from_str(&serde_json::to_string(&score).unwrap()).unwrap();
    assert_eq!(back, score);
}

#[test]
fn score_all_keeps_the_scorers_order() {
    let scorers = vec![
        scorer("{type: latency, max_ms: 50}"),
        scorer("{type: contains_any, values: [hi]}"),
    ];
    let results = ready(score_all(
        &scorers,
        &item(json!({"id": "1"})),
        &answer("hi"),
        &ScoreContext::default(),
    ));
    let names: Vec<&str> = results
        .iter()
        .map(|r| r.as_ref().unwrap().score.scorer.as_str())
        .collect();
    assert_eq!(names, vec!["latency", "contains_any"]);
    assert!(!results[0].as_ref().unwrap().score.passed);
}
