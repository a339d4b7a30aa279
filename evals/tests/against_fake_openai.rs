//! The targets, the runner and the judge against a real local OpenAI-compatible HTTP server
//! (`tests/fake_openai/server.py`, started per test on a free port).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::FakeServer;
use meshos_evals::judge_client::{JudgeClient, JudgeConfig, Scale, Winner};
use meshos_evals::output::Output;
use meshos_evals::run::{Cache, ItemResult, RetryPolicy, RunConfig, Runner};
use meshos_evals::target::{
    ChatMessage, ChatRequest, HttpTarget, HttpTargetConfig, OpenAiTarget, OpenAiTargetConfig,
    Price, Target, TargetError,
};

macro_rules! server {
    ($($arg:expr),*) => {
        match FakeServer::start(&[$($arg),*]) {
            Some(server) => server,
            None => return,
        }
    };
}

fn ask(id: &str, text: &str) -> ChatRequest {
    ChatRequest {
        item_id: id.into(),
        messages: vec![
            ChatMessage::new("system", "You are terse."),
            ChatMessage::new("user", text),
        ],
        temperature: Some(0.0),
        seed: Some(1),
        ..Default::default()
    }
}

fn openai(server: &FakeServer, stream: bool) -> OpenAiTarget {
    let mut config = OpenAiTargetConfig::new(server.base_url(), "fake-model");
    config.stream = stream;
    config.price = Some(Price {
        input_per_million_usd: 1_000_000.0,
        output_per_million_usd: 2_000_000.0,
    });
    OpenAiTarget::new(config).unwrap_or_else(|e| panic!("{e}"))
}

fn fast_retries(max_attempts: u32) -> RunConfig {
    RunConfig {
        concurrency: 4,
        timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(5),
            retry_timeouts: false,
        },
        reorder_window: 64,
    }
}

async fn run_all(
    target: Arc<dyn Target>,
    config: RunConfig,
    requests: Vec<ChatRequest>,
) -> Vec<ItemResult> {
    let mut out = Vec::new();
    Runner::new(target, config)
        .run(requests, &mut out)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    out
}

fn weather_tool() -> serde_json::Value {
    serde_json::json!({
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }
    })
}

#[tokio::test]
async fn non_streaming_answer_with_usage_and_cost() {
    let server = server!();
    let out = openai(&server, false)
        .complete(&ask("1", "hello there world"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.text, "hello there world");
    assert_eq!(out.model.as_deref(), Some("fake-model"));
    // Words: "You are terse." + "hello there world" = 6 in, 3 out.
    assert_eq!((out.input_tokens, out.output_tokens), (6, 3));
    assert!((out.cost_usd - 12.0).abs() < 1e-9, "{}", out.cost_usd);
    assert!(out.latency_ms > 0.0);
}

#[tokio::test]
async fn the_api_key_comes_from_the_named_variable_and_only_then() {
    let server = server!();
    openai(&server, false)
        .complete(&ask("1", "no key"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        server.stats()["last_authorization"],
        serde_json::Value::Null
    );

    let var = "MESHOS_EVALS_TEST_API_KEY";
    // SAFETY: nextest runs each test in its own process; nothing else reads the environment now.
    unsafe { std::env::set_var(var, "sk-test-1") };
    let mut config = OpenAiTargetConfig::new(server.base_url(), "m");
    config.api_key_env = Some(var.into());
    let target = OpenAiTarget::new(config).unwrap_or_else(|e| panic!("{e}"));
    assert!(!target.identity().contains("sk-test-1"));
    target
        .complete(&ask("2", "with key"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(server.stats()["last_authorization"], "Bearer sk-test-1");
}

#[tokio::test]
async fn streaming_answer_is_assembled_from_deltas() {
    let server = server!();
    let out = openai(&server, true)
        .complete(&ask("1", "one two  three, four"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.text, "one two  three, four");
    assert_eq!((out.input_tokens, out.output_tokens), (7, 4));
    assert_eq!(out.model.as_deref(), Some("fake-model"));
}

#[tokio::test]
async fn scenario_table_answers() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("scenarios.json");
    std::fs::write(&path, r#"{"What is the capital of France?": "Paris."}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let server = server!("--scenarios", path.to_str().unwrap_or_default());
    for stream in [false, true] {
        let out = openai(&server, stream)
            .complete(&ask("1", "What is the capital of France?"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.text, "Paris.");
    }
}

#[tokio::test]
async fn tool_calls_streaming_and_not() {
    let server = server!();
    for stream in [false, true] {
        let mut request = ask("1", r#"CALL get_weather {"city": "Paris"}"#);
        request.tools = Some(vec![weather_tool()]);
        let out = openai(&server, stream)
            .complete(&request)
            .await
            .unwrap_or_else(|e| panic!("stream={stream}: {e}"));
        assert_eq!(out.text, "", "stream={stream}");
        assert_eq!(out.tool_calls.len(), 1, "stream={stream}");
        assert_eq!(out.tool_calls[0].name, "get_weather");
        assert_eq!(
            out.tool_calls[0].arguments,
            serde_json::json!({"city": "Paris"})
        );
    }
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_succeeds() {
    let server = server!();
    let target: Arc<dyn Target> = Arc::new(openai(&server, false));
    let started = Instant::now();
    let out = run_all(
        target.clone(),
        fast_retries(4),
        vec![ask("1", "limited [[429 x2 retry-after=1]]")],
    )
    .await;
    let elapsed = started.elapsed();
    assert!(out[0].outcome.is_ok(), "{:?}", out[0].outcome);
    assert_eq!(out[0].attempts, 3);
    // Two waits of Retry-After: 1 s each, not the 10–50 ms backoff.
    assert!(elapsed >= Duration::from_millis(1900), "{elapsed:?}");
    let stats = server.stats();
    assert_eq!(stats["statuses"]["429"], 2);
    assert_eq!(stats["statuses"]["200"], 1);

    // Retry-After as an HTTP date (one-second resolution: the wait is within (1, 2] s).
    let started = Instant::now();
    let out = run_all(
        target,
        fast_retries(4),
        vec![ask("2", "dated [[429 x1 retry-after=date:2]]")],
    )
    .await;
    assert!(out[0].outcome.is_ok(), "{:?}", out[0].outcome);
    assert_eq!(out[0].attempts, 2);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_500_is_retried_then_succeeds_streaming_too() {
    let server = server!();
    for stream in [false, true] {
        let target: Arc<dyn Target> = Arc::new(openai(&server, stream));
        let out = run_all(
            target,
            fast_retries(4),
            vec![ask("1", &format!("flaky {stream} [[500 x2]]"))],
        )
        .await;
        assert_eq!(out[0].attempts, 3, "stream={stream}");
        assert_eq!(
            out[0].output().map(|o| o.text.as_str()),
            Some(format!("flaky {stream} [[500 x2]]").as_str())
        );
    }
    assert_eq!(server.stats()["statuses"]["500"], 4);
}

#[tokio::test]
async fn exhausted_retries_are_recorded_per_item() {
    let server = server!();
    let target: Arc<dyn Target> = Arc::new(openai(&server, false));
    let out = run_all(
        target,
        fast_retries(3),
        vec![
            ask("ok-1", "fine"),
            ask("down", "down [[500 x99]]"),
            ask("ok-2", "also fine"),
        ],
    )
    .await;
    assert_eq!(out.len(), 3);
    assert!(out[0].outcome.is_ok() && out[2].outcome.is_ok());
    assert_eq!(out[1].item_id, "down");
    assert_eq!(out[1].attempts, 3);
    match &out[1].outcome {
        Err(TargetError::Status {
            status: 500, body, ..
        }) => {
            assert!(body.contains("injected 500"), "{body}")
        }
        other => panic!("{other:?}"),
    }
    // A client error is not retried.
    let mut bad = ask("bad", r#"CALL nope {}"#);
    bad.tools = Some(vec![weather_tool()]);
    let out = run_all(Arc::new(openai(&server, false)), fast_retries(3), vec![bad]).await;
    assert_eq!(out[0].attempts, 1);
    assert!(matches!(
        out[0].outcome,
        Err(TargetError::Status { status: 400, .. })
    ));
}

#[tokio::test]
async fn slow_answers_time_out() {
    let server = server!();
    let mut config = fast_retries(3);
    config.timeout = Duration::from_millis(300);
    let target: Arc<dyn Target> = Arc::new(openai(&server, false));
    let out = run_all(
        target.clone(),
        config.clone(),
        vec![
            ask("slow", "slow [[sleep 3000]]"),
            ask("quick", "quick [[sleep 50]]"),
        ],
    )
    .await;
    assert_eq!(
        out[0].outcome,
        Err(TargetError::Timeout(Duration::from_millis(300)))
    );
    assert_eq!(out[0].attempts, 1);
    assert!(out[1].outcome.is_ok());

    // With timeouts retried, every attempt is spent.
    config.retry.retry_timeouts = true;
    let out = run_all(target, config, vec![ask("slow-2", "slow2 [[sleep 3000]]")]).await;
    assert_eq!(out[0].attempts, 3);
    assert!(matches!(out[0].outcome, Err(TargetError::Timeout(_))));
}

#[tokio::test]
async fn connection_errors_are_retried_and_recorded() {
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let target = OpenAiTarget::new(OpenAiTargetConfig::new(
        format!("http://127.0.0.1:{port}/v1"),
        "m",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let out = run_all(Arc::new(target), fast_retries(2), vec![ask("1", "hi")]).await;
    assert_eq!(out[0].attempts, 2);
    match &out[0].outcome {
        Err(TargetError::Transport(m)) => assert!(m.to_lowercase().contains("connect"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn oversized_answers_are_cut_off() {
    let server = server!();
    for stream in [false, true] {
        let mut config = OpenAiTargetConfig::new(server.base_url(), "m");
        config.stream = stream;
        config.max_response_bytes = 4096;
        let target = OpenAiTarget::new(config).unwrap_or_else(|e| panic!("{e}"));
        let result = target.complete(&ask("1", "[[big 20000]]")).await;
        assert_eq!(
            result,
            Err(TargetError::TooLarge { limit: 4096 }),
            "stream={stream}"
        );
        let fine = target.complete(&ask("2", "[[big 100]]")).await;
        assert_eq!(
            fine.map(|o| o.text.len()).ok(),
            Some(100),
            "stream={stream}"
        );
    }
}

#[tokio::test]
async fn the_cache_makes_a_second_identical_run_request_free() {
    let server = server!();
    let target: Arc<dyn Target> = Arc::new(openai(&server, false));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let requests = || {
        (0..5)
            .map(|i| ask(&format!("i{i}"), &format!("question {i}")))
            .collect::<Vec<_>>()
    };

    let cache = Arc::new(Cache::open_dir(dir.path(), 100).unwrap_or_else(|e| panic!("{e}")));
    let runner = Runner::new(target.clone(), fast_retries(1)).with_cache(cache.clone());
    let first = runner
        .run(requests(), &mut Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((first.succeeded, first.cached), (5, 0));
    assert_eq!(server.stats()["chat_requests"], 5);

    let mut out = Vec::new();
    let second = runner
        .run(requests(), &mut out)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(second.cached, 5);
    assert_eq!(second.input_tokens, 0);
    assert_eq!(
        server.stats()["chat_requests"],
        5,
        "no request on the second run"
    );
    assert_eq!(out[3].output().map(|o| o.text.as_str()), Some("question 3"));

    // A new process's cache, from the same directory, answers too.
    drop(runner);
    let reopened = Arc::new(Cache::open_dir(dir.path(), 0).unwrap_or_else(|e| panic!("{e}")));
    let third = Runner::new(target, fast_retries(1))
        .with_cache(reopened)
        .run(requests(), &mut Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(third.cached, 5);
    assert_eq!(server.stats()["chat_requests"], 5);
}

#[tokio::test]
async fn the_concurrency_limit_holds_at_the_server() {
    let server = server!("--delay-ms", "100");
    let target: Arc<dyn Target> = Arc::new(openai(&server, false));
    let mut config = fast_retries(1);
    config.concurrency = 6;
    let requests: Vec<_> = (0..36)
        .map(|i| ask(&format!("i{i}"), &format!("q{i}")))
        .collect();
    let started = Instant::now();
    let out = run_all(target, config, requests).await;
    assert!(out.iter().all(|r| r.outcome.is_ok()));
    let stats = server.stats();
    assert_eq!(stats["max_concurrent"], 6, "{stats}");
    // 36 items, 6 at a time, 100 ms each: at least 600 ms.
    assert!(started.elapsed() >= Duration::from_millis(600));
}

#[tokio::test]
async fn http_agent_target_with_env_headers() {
    let server = server!();
    let var = "MESHOS_EVALS_TEST_AGENT_KEY";
    // SAFETY: nextest runs each test in its own process; nothing else reads the environment now.
    unsafe { std::env::set_var(var, "s3cret") };
    let mut config = HttpTargetConfig::new(server.url("/agent"));
    config
        .headers
        .insert("X-Agent-Key".into(), format!("${{{var}}}"));
    let target = HttpTarget::new(config.clone()).unwrap_or_else(|e| panic!("{e}"));
    assert!(!target.identity().contains("s3cret"));
    let mut request = ask("item-7", "what now");
    request.tools = Some(vec![weather_tool()]);
    let out = target
        .complete(&request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.text, "item-7: what now [key=s3cret]");
    assert_eq!(out.tool_calls[0].name, "get_weather");
    assert_eq!(
        out.tool_calls[0].arguments,
        serde_json::json!({"item": "item-7"})
    );
    assert_eq!(out.model.as_deref(), Some("agent-1"));

    config
        .headers
        .insert("X-Other".into(), "${MESHOS_EVALS_TEST_UNSET_VAR}".into());
    match HttpTarget::new(config) {
        Err(TargetError::MissingEnv { var, field }) => {
            assert_eq!(var, "MESHOS_EVALS_TEST_UNSET_VAR");
            assert_eq!(field, "headers.X-Other");
        }
        other => panic!("{other:?}"),
    }
}

fn judge(server: &FakeServer) -> JudgeClient {
    let mut config = JudgeConfig::new(OpenAiTargetConfig::new(server.base_url(), "judge-model"));
    config.retry.base_delay = Duration::from_millis(10);
    JudgeClient::new(config).unwrap_or_else(|e| panic!("{e}"))
}

fn answer(text: &str) -> Output {
    Output {
        text: text.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn judge_grades_with_structured_output() {
    let server = server!();
    let judge = judge(&server);
    let item = serde_json::json!({"id": "q1", "input": "Say PASS"});
    let good = judge
        .grade(
            "The answer must say PASS.",
            &item,
            &answer("PASS, as asked"),
            Scale::Unit,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(good.passed);
    assert_eq!((good.score, good.normalised), (1.0, 1.0));
    assert!(good.usage.input_tokens > 0 && good.usage.attempts == 1);

    let bad = judge
        .grade(
            "The answer must say PASS.",
            &item,
            &answer("no"),
            Scale::Likert5,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!bad.passed);
    assert_eq!((bad.score, bad.normalised), (1.0, 0.0));
}

#[tokio::test]
async fn judge_pairwise_swaps_positions() {
    let server = server!();
    let judge = judge(&server);
    let item = serde_json::json!({"id": "q1"});
    let rubric = "Prefer the better answer.";

    let v = judge
        .compare(rubric, &item, &answer("the BETTER one"), &answer("plain"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((v.winner, v.consistent), (Winner::A, true));
    assert_eq!(v.usage.attempts, 2);

    let v = judge
        .compare(rubric, &item, &answer("plain"), &answer("the BETTER one"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((v.winner, v.consistent), (Winner::B, true));

    // A judge that always picks the first position: the two orders disagree → tie.
    let v = judge
        .compare(rubric, &item, &answer("BIAS"), &answer("plain"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((v.a_first, v.b_first), (Winner::A, Winner::B));
    assert_eq!((v.winner, v.consistent), (Winner::Tie, false));
    assert_eq!(server.stats()["chat_requests"], 6);
}
