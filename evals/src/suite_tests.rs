use std::fs;

use super::*;

const FILE: &str = "suites/t.yaml";

fn parse_in(dir: &Path, text: &str) -> Result<Suite, SuiteError> {
    Suite::parse(FILE, text, dir)
}

fn parse(text: &str) -> Result<Suite, SuiteError> {
    parse_in(Path::new("."), text)
}

/// The error's `file:line[:column]: field` prefix and its message.
fn error(text: &str) -> (String, String) {
    let e = parse(text).unwrap_err();
    let SuiteError::Invalid {
        file,
        at,
        field,
        message,
    } = e
    else {
        panic!("expected Invalid, got {e:?}");
    };
    let at = at.map(|l| format!(":{l}")).unwrap_or_default();
    (format!("{file}{at}: {field}"), message)
}

const GOOD: &str = r#"id: support-bot
description: Support answers
agent_id: support-bot
dataset:
  - id: q1
    question: How long do refunds take?
    expected: { answer: 5 days, total: "12.50" }
  - id: q2
    question: Can I change my email?
    expected: { answer: yes, total: 3 }
target:
  type: openai
  base_url: http://127.0.0.1:8080/v1
  model: gpt-4o-mini
  api_key_env: OPENAI_API_KEY
  price: { input_per_million_usd: 0.15, output_per_million_usd: 0.6 }
prompt:
  system: You answer for Acme.
  user: "Q{{id}}: {{question}}"
scorers:
  - type: normalized
    mode: contains
  - type: regex
    name: no-apology
    pattern: '(?i)\bsorry\b'
    must_match: false
  - type: numeric
    expected: total
    abs_tol: 0.01
  - type: latency
    max_ms: 2000
sample: { size: 1, seed: 7 }
"#;

#[test]
fn a_valid_suite_loads_with_defaults() {
    let s = parse(GOOD).unwrap();
    assert_eq!(s.id(), "support-bot");
    assert_eq!(s.agent_id(), "support-bot");
    assert_eq!(s.dataset().len(), 2);
    assert_eq!(target_kind(s.target()), "openai");
    assert_eq!(target_model(s.target()), Some("gpt-4o-mini"));
    let names: Vec<&str> = s.scorers().iter().map(Scorer::name).collect();
    assert_eq!(
        names,
        vec!["normalized", "no-apology", "numeric", "latency"]
    );
    assert_eq!(s.lower_is_better(), vec!["latency"]);
    assert_eq!(
        (s.concurrency(), s.timeout_ms(), s.retries()),
        (4, 60_000, 2)
    );
    assert!(!s.store_raw());
    assert_eq!(s.selected_items().len(), 1);
    let prompt = s.prompt().unwrap().render(&s.dataset().items()[0]).unwrap();
    assert_eq!(prompt.user, "Qq1: How long do refunds take?");
    assert_eq!(s.digest().len(), 64);
    assert_eq!(s.definition_json()["dataset"]["source"]["kind"], "inline");
    let price = match s.target() {
        TargetConfig::OpenAi(t) => t.price.unwrap(),
        _ => unreachable!(),
    };
    assert!((price.cost(1_000_000, 1_000_000) - 0.75).abs() < 1e-12);
}

#[test]
fn the_digest_changes_with_content_not_with_formatting() {
    let a = parse(GOOD).unwrap();
    let reformatted = GOOD.replace(
        "sample: { size: 1, seed: 7 }",
        "sample:\n  size: 1\n  seed: 7\n# a comment",
    );
    assert_eq!(parse(&reformatted).unwrap().digest(), a.digest());
    let other_row = GOOD.replace("5 days", "6 days");
    let b = parse(&other_row).unwrap();
    assert_ne!(b.digest(), a.digest());
    assert_ne!(b.dataset_digest(), a.dataset_digest());
    let other_scorer = GOOD.replace("max_ms: 2000", "max_ms: 2500");
    let c = parse(&other_scorer).unwrap();
    assert_ne!(c.digest(), a.digest());
    assert_eq!(c.dataset_digest(), a.dataset_digest());
}

#[test]
fn sampling_is_seeded() {
    let many: String = (0..50)
        .map(|i| format!("  - {{ id: i{i}, q: x }}\n"))
        .collect();
    let text = format!(
        "id: s\ndescription: d\nagent_id: a\ndataset:\n{many}target: {{ type: recorded, path: out.jsonl }}\nscorers:\n  - {{ type: latency, max_ms: 1 }}\nsample: {{ size: 10, seed: 3 }}\n"
    );
    let s = parse(&text).unwrap();
    let ids = |s: &Suite| {
        s.selected_items()
            .iter()
            .map(|i| i.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&s).len(), 10);
    assert_eq!(ids(&s), ids(&parse(&text).unwrap()));
    let other = parse(&text.replace("seed: 3", "seed: 4")).unwrap();
    assert_ne!(ids(&s), ids(&other));
}

// ---- errors name file, line, column and field ----------------------------------------------

#[test]
fn an_invalid_regex_names_its_line_and_field() {
    let text = GOOD.replace(r"'(?i)\bsorry\b'", "'(unclosed'");
    let (at, message) = error(&text);
    assert_eq!(at, "suites/t.yaml:25:5: scorers[1].pattern");
    assert!(message.starts_with("invalid regex"), "{message}");
}

#[test]
fn yaml_syntax_and_type_errors_carry_serde_yaml_locations() {
    let (at, message) = error("id: [unclosed\n");
    assert!(at.starts_with("suites/t.yaml:"), "{at}");
    assert!(!message.is_empty());
    let (at, message) = error(
        &GOOD
            .replace("concurrency", "x")
            .replace("sample:", "concurrency: many\nsample:"),
    );
    assert_eq!(at, "suites/t.yaml:32:14: concurrency");
    assert!(message.starts_with("invalid type"), "{message}");
}

#[test]
fn unknown_and_missing_fields_are_named() {
    let (at, message) = error(&GOOD.replace("sample:", "sampel:"));
    assert_eq!(at, "suites/t.yaml:32:1: sampel");
    assert!(message.starts_with("unknown field `sampel`"), "{message}");
    let (at, _) = error(&GOOD.replace("agent_id: support-bot\n", ""));
    assert!(at.ends_with(": agent_id"), "{at}");
    // Inside a scorer: the field's own line.
    let (at, message) = error(&GOOD.replace("    abs_tol: 0.01", "    abs_toll: 0.01"));
    assert_eq!(at, "suites/t.yaml:29:5: scorers[2].abs_toll");
    assert!(message.starts_with("unknown field `abs_toll`"), "{message}");
    let (at, message) = error(&GOOD.replace("    max_ms: 2000", "    max_ms: soon"));
    assert_eq!(at, "suites/t.yaml:31:5: scorers[3].max_ms");
    assert!(message.starts_with("invalid type"), "{message}");
    let (at, message) = error(&GOOD.replace("    max_ms: 2000", ""));
    assert_eq!(at, "suites/t.yaml:30:3: scorers[3].max_ms");
    assert!(message.starts_with("missing field `max_ms`"), "{message}");
    let (at, message) = error(&GOOD.replace("  model: gpt-4o-mini\n", ""));
    assert_eq!(at, "suites/t.yaml:11:1: target.model");
    assert!(message.starts_with("missing field"), "{message}");
}

#[test]
fn scorer_types_and_names_are_checked() {
    let (at, message) = error(&GOOD.replace("type: latency", "type: speed"));
    assert_eq!(at, "suites/t.yaml:30:5: scorers[3].type");
    assert!(
        message.starts_with("unknown scorer type `speed`; expected one of exact,"),
        "{message}"
    );
    let (at, message) = error(&GOOD.replace("name: no-apology", "name: normalized"));
    assert_eq!(at, "suites/t.yaml:24:5: scorers[1].name");
    assert_eq!(
        message,
        "scorers[0] is already named `normalized`; give each scorer a unique `name`"
    );
    let (at, message) = error(&GOOD.replace("  - type: latency\n    max_ms", "  - max_ms"));
    assert_eq!(at, "suites/t.yaml:30:3: scorers[3]");
    assert!(
        message.starts_with("every scorer needs a `type`: one of exact,"),
        "{message}"
    );
    let (at, _) = error(&GOOD.replace("name: no-apology", "name: 'no apology'"));
    assert_eq!(at, "suites/t.yaml:24:5: scorers[1].name");
}

#[test]
fn an_unknown_placeholder_names_the_field_and_the_item() {
    let (at, message) = error(&GOOD.replace("{{question}}", "{{questoin}}"));
    assert_eq!(at, "suites/t.yaml:19:3: prompt.user");
    assert_eq!(
        message,
        "unknown placeholder `{{questoin}}`: item `q1` (suites/t.yaml:5) has no input field `questoin`"
    );
    let (_, message) = error(&GOOD.replace("{{question}}", "{{answer}}"));
    assert!(
        message.ends_with("expected fields are not available to prompts"),
        "{message}"
    );
    let (at, message) = error(&GOOD.replace("{{question}}", "{{question"));
    assert_eq!(at, "suites/t.yaml:19:3: prompt.user");
    assert!(message.contains("never closed"), "{message}");
}

#[test]
fn expected_fields_must_exist_in_every_item_in_a_usable_form() {
    let (at, message) = error(&GOOD.replace(
        "expected: { answer: yes, total: 3 }",
        "expected: { total: 3 }",
    ));
    assert_eq!(at, "suites/t.yaml:21:3: scorers[0].expected");
    assert_eq!(
        message,
        "item `q2` (suites/t.yaml:8) has no expected field `answer`"
    );
    let (at, message) = error(&GOOD.replace("total: 3 }", "total: three }"));
    assert_eq!(at, "suites/t.yaml:28:5: scorers[2].expected");
    assert_eq!(
        message,
        "item `q2` (suites/t.yaml:8): expected field `total`: `three` is not a number"
    );
}

#[test]
fn duplicate_item_ids_name_both_items() {
    let (at, message) = error(&GOOD.replace("id: q2", "id: q1"));
    assert_eq!(at, "suites/t.yaml:8: id");
    assert_eq!(
        message,
        "duplicate item id `q1` (first at suites/t.yaml:5); item ids must be unique"
    );
}

#[test]
fn targets_and_run_settings_are_checked() {
    let (at, message) = error(&GOOD.replace("http://127.0.0.1:8080/v1", "127.0.0.1:8080"));
    assert_eq!(at, "suites/t.yaml:13:3: target.base_url");
    assert!(
        message.contains("is not an http:// or https:// URL"),
        "{message}"
    );
    let (at, _) = error(&GOOD.replace("type: openai", "type: grpc"));
    assert_eq!(at, "suites/t.yaml:12:3: target.type");
    let (at, message) = error(&GOOD.replace(
        "prompt:\n  system: You answer for Acme.\n  user: \"Q{{id}}: {{question}}\"\n",
        "",
    ));
    assert_eq!(at, "suites/t.yaml:11:1: target");
    assert!(message.contains("needs a `prompt`"), "{message}");
    let (at, _) = error(&GOOD.replace("OPENAI_API_KEY", "OPENAI-KEY"));
    assert_eq!(at, "suites/t.yaml:15:3: target.api_key_env");
    let (at, _) = error(&GOOD.replace("output_per_million_usd: 0.6", "output_per_million_usd: -1"));
    assert_eq!(
        at,
        "suites/t.yaml:16:41: target.price.output_per_million_usd"
    );
    let (at, message) = error(&GOOD.replace(
        "  model: gpt-4o-mini",
        "  model: gpt-4o-mini\n  temperature: 3",
    ));
    assert_eq!(at, "suites/t.yaml:15:3: target.temperature");
    assert_eq!(message, "3 is outside 0..=2");
    let (at, message) = error(&GOOD.replace(
        "  model: gpt-4o-mini",
        "  model: gpt-4o-mini\n  max_tokens: lots",
    ));
    assert_eq!(at, "suites/t.yaml:15:3: target.max_tokens");
    assert!(message.starts_with("invalid type"), "{message}");
    let (at, _) = error(&format!("{GOOD}concurrency: 0\n"));
    assert_eq!(at, "suites/t.yaml:33:1: concurrency");
    let (at, _) = error(&GOOD.replace("size: 1,", "size: 0,"));
    assert_eq!(at, "suites/t.yaml:32:11: sample.size");
    let (at, _) = error(&GOOD.replace("id: support-bot\n", "id: Support Bot\n"));
    assert_eq!(at, "suites/t.yaml:1:1: id");
    let http = GOOD.replace(
        "  type: openai\n  base_url: http://127.0.0.1:8080/v1\n  model: gpt-4o-mini\n  api_key_env: OPENAI_API_KEY\n  price: { input_per_million_usd: 0.15, output_per_million_usd: 0.6 }\n",
        "  type: http\n  url: http://127.0.0.1:9000/answer\n  headers: { \"x bad\": v }\n",
    );
    let (at, _) = error(&http);
    assert_eq!(at, "suites/t.yaml:14:3: target.headers");
}

#[test]
fn dataset_files_are_read_relative_to_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("data")).unwrap();
    fs::write(
        dir.path().join("data/items.jsonl"),
        "{\"id\": \"a\", \"question\": \"x\", \"expected\": {\"answer\": \"y\"}}\n{\"id\": \"b\", \"question\": \"z\", \"expected\": {\"answer\": \"w\"}}\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("data/items.csv"),
        "id,question,expected.answer\na,x,y\nb,z,w\n",
    )
    .unwrap();
    let base = "id: s\ndescription: d\nagent_id: a\ndataset: data/items.jsonl\ntarget: { type: recorded, path: out.jsonl }\nprompt: { user: '{{question}}' }\nscorers:\n  - type: exact\n";
    let jsonl = parse_in(dir.path(), base).unwrap();
    let csv = parse_in(dir.path(), &base.replace("items.jsonl", "items.csv")).unwrap();
    assert_eq!(jsonl.dataset_digest(), csv.dataset_digest());
    assert_eq!(
        jsonl.digest(),
        csv.digest(),
        "the suite digest does not hash the dataset's path"
    );
    assert_eq!(csv.resolve("out.jsonl"), dir.path().join("out.jsonl"));

    let e = parse_in(dir.path(), &base.replace("items.jsonl", "nope.jsonl")).unwrap_err();
    assert_eq!(e.field(), Some("dataset"));
    assert_eq!(e.line(), Some(4));
    assert!(e.to_string().contains("cannot read"), "{e}");
    let e = parse_in(dir.path(), &base.replace("items.jsonl", "items.txt")).unwrap_err();
    assert!(
        e.to_string().contains("expected a .jsonl or .csv file"),
        "{e}"
    );

    fs::write(
        dir.path().join("data/bad.jsonl"),
        "{\"id\": \"a\", \"question\": \"x\"}\n{oops}\n",
    )
    .unwrap();
    let e = parse_in(dir.path(), &base.replace("items.jsonl", "bad.jsonl")).unwrap_err();
    let file = dir.path().join("data/bad.jsonl").display().to_string();
    assert!(
        e.to_string()
            .starts_with(&format!("{file}:2:2: (item): invalid JSON")),
        "{e}"
    );
    // A missing expected field names the dataset file's line.
    fs::write(dir.path().join("data/short.csv"), "id,question\na,x\n").unwrap();
    let e = parse_in(dir.path(), &base.replace("items.jsonl", "short.csv")).unwrap_err();
    let file = dir.path().join("data/short.csv").display().to_string();
    assert!(
        e.to_string().ends_with(&format!(
            "item `a` ({file}:2) has no expected field `answer`"
        )),
        "{e}"
    );
}

#[test]
fn schema_files_are_inlined_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("schema.json"),
        r#"{"type": "object", "required": ["name"]}"#,
    )
    .unwrap();
    fs::write(dir.path().join("broken.json"), r#"{"type": 5}"#).unwrap();
    let base = "id: s\ndescription: d\nagent_id: a\ndataset: [ { id: a } ]\ntarget: { type: recorded, path: out.jsonl }\nscorers:\n  - type: json_schema\n    schema_path: schema.json\n";
    let s = parse_in(dir.path(), base).unwrap();
    let ScorerSpec::JsonSchema(spec) = s.scorers()[0].spec() else {
        unreachable!()
    };
    assert_eq!(spec.schema.as_ref().unwrap()["required"][0], "name");
    let e = parse_in(dir.path(), &base.replace("schema.json", "broken.json")).unwrap_err();
    assert_eq!(e.field(), Some("scorers[0].schema_path"));
    assert_eq!(e.line(), Some(8));
    let e = parse_in(dir.path(), &format!("{base}    schema: {{}}\n")).unwrap_err();
    assert_eq!(e.field(), Some("scorers[0].schema"));
    // The digest hashes the schema, so editing the file changes it.
    let before = s.digest().to_string();
    fs::write(dir.path().join("schema.json"), r#"{"type": "object"}"#).unwrap();
    assert_ne!(parse_in(dir.path(), base).unwrap().digest(), before);
}

#[test]
fn pairwise_baselines_and_tool_call_expectations_are_loaded_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("base.jsonl"),
        "{\"id\": \"a\", \"output\": {\"text\": \"hi\", \"latency_ms\": 5}}\n",
    )
    .unwrap();
    let base = "id: s\ndescription: d\nagent_id: a\ndataset:\n  - id: a\n    expected: { calls: [ { name: lookup, arguments: { id: 1 } } ] }\ntarget: { type: recorded, path: out.jsonl }\nscorers:\n  - type: pairwise\n    rubric: more helpful\n    baseline: base.jsonl\n  - type: tool_calls\n    expected: calls\n";
    let s = parse_in(dir.path(), base).unwrap();
    assert_eq!(s.scorers().len(), 2);
    let e = parse_in(dir.path(), &base.replace("base.jsonl", "gone.jsonl")).unwrap_err();
    assert_eq!(e.field(), Some("scorers[0].baseline"));
    assert_eq!(e.line(), Some(11));
    // The baseline must answer every item.
    let two = base.replace(
        "dataset:\n",
        "dataset:\n  - id: b\n    expected: { calls: [] }\n",
    );
    let e = parse_in(dir.path(), &two).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("`base.jsonl` has no output for item `b` (suites/t.yaml:5)"),
        "{e}"
    );
    let e = parse_in(
        dir.path(),
        &base.replace("{ name: lookup,", "{ tool: lookup,"),
    )
    .unwrap_err();
    assert_eq!(e.field(), Some("scorers[1].expected"));
    assert!(e.to_string().ends_with("call 0 has no `name`"), "{e}");
}

#[test]
fn a_large_inline_dataset_keeps_each_items_line() {
    let mut items: String = (0..3000)
        .map(|i| format!("  - id: i{i}\n    q: x\n"))
        .collect();
    items.push_str("  - id: i17\n    q: again\n");
    let text = format!(
        "id: s\ndescription: d\nagent_id: a\ndataset:\n{items}target: {{ type: recorded, path: out.jsonl }}\nscorers:\n  - {{ type: latency, max_ms: 1 }}\n"
    );
    let e = parse(&text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "suites/t.yaml:6005: id: duplicate item id `i17` (first at suites/t.yaml:39); item ids must be unique"
    );
}

#[test]
fn a_suite_makes_the_runners_requests_and_settings() {
    let text = GOOD
        .replace("  model: gpt-4o-mini", "  model: gpt-4o-mini\n  temperature: 0.2\n  seed: 7")
        .replace(
            "sample: { size: 1, seed: 7 }",
            "tools:\n  - { type: function, function: { name: lookup_order, parameters: { type: object } } }\nretries: 3\nconcurrency: 2\ntimeout_ms: 1500",
        );
    let s = parse(&text).unwrap();
    let requests = s.chat_requests().unwrap();
    assert_eq!(requests.len(), 2);
    let r = &requests[1];
    assert_eq!(r.item_id, "q2");
    assert_eq!(r.messages.len(), 2);
    assert_eq!(
        (r.messages[0].role.as_str(), r.messages[0].content.as_str()),
        ("system", "You answer for Acme.")
    );
    assert_eq!(r.messages[1].content, "Qq2: Can I change my email?");
    assert_eq!(
        (r.temperature, r.seed, r.max_tokens),
        (Some(0.2), Some(7), None)
    );
    assert_eq!(
        r.tools.as_ref().unwrap()[0]["function"]["name"],
        "lookup_order"
    );
    let config = s.run_config();
    assert_eq!(config.concurrency, 2);
    assert_eq!(config.timeout, Duration::from_millis(1500));
    assert_eq!(config.retry.max_attempts, 4);
    assert_ne!(
        parse(&text).unwrap().digest(),
        parse(GOOD).unwrap().digest()
    );

    let (at, _) = error(&text.replace("type: function,", "type: tool,"));
    assert_eq!(at, "suites/t.yaml:35:3: tools[0]");
}

#[test]
fn a_recorded_target_resolves_against_the_suite_and_needs_no_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let text = "id: s\ndescription: d\nagent_id: a\ndataset: [ { id: a } ]\ntarget: { type: recorded, path: out/r.jsonl }\nscorers:\n  - { type: latency, max_ms: 1 }\n";
    let s = parse_in(dir.path(), text).unwrap();
    let TargetConfig::Recorded(written) = s.target() else {
        unreachable!()
    };
    assert_eq!(written.path, Path::new("out/r.jsonl"));
    let TargetConfig::Recorded(resolved) = s.runner_target() else {
        unreachable!()
    };
    assert_eq!(resolved.path, dir.path().join("out/r.jsonl"));
    assert!(s.chat_requests().unwrap()[0].messages.is_empty());
    // An http target needs a prompt: its agent is sent the messages.
    let http = text.replace(
        "{ type: recorded, path: out/r.jsonl }",
        "{ type: http, url: 'http://127.0.0.1:9/answer' }",
    );
    let e = parse_in(dir.path(), &http).unwrap_err();
    assert!(
        e.to_string().contains("an `http` target needs a `prompt`"),
        "{e}"
    );
}
