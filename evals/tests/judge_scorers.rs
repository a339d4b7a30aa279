//! The `judge` and `pairwise` scorers through [`JudgePool`] and [`JudgeClient`] against a real
//! local OpenAI-compatible server (`tests/fake_openai/server.py`, which plays a deterministic
//! judge: a grade passes when the output says PASS; in a comparison the output saying BETTER
//! wins, and an output saying BIAS makes it always pick the first shown).

mod common;

use common::FakeServer;
use meshos_evals::judging::JudgePool;
use meshos_evals::{Output, ScoreContext, Suite};

fn suite(server: &FakeServer, judge_model: bool) -> Suite {
    let model = if judge_model {
        format!(
            "\n    model: {{ endpoint: {{ base_url: '{}', model: judge-model }} }}",
            server.base_url()
        )
    } else {
        String::new()
    };
    let text = format!(
        "id: judged\ndescription: d\nagent_id: a\ndataset:\n  - {{ id: q1, question: Say PASS, expected: {{ answer: plain }} }}\ntarget: {{ type: recorded, path: none.jsonl }}\nprompt: {{ user: '{{{{question}}}}' }}\nscorers:\n  - type: judge\n    rubric: The answer must say PASS.\n    scale: likert5\n    pass_threshold: 0.5{model}\n  - type: pairwise\n    rubric: Prefer the better answer.\n    reference: answer{model}\n"
    );
    Suite::parse("judged.yaml", &text, std::path::Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

fn answer(text: &str) -> Output {
    Output {
        text: text.into(),
        ..Output::default()
    }
}

#[tokio::test]
async fn judge_and_pairwise_scorers_call_the_judge_model() {
    let Some(server) = FakeServer::start(&[]) else {
        return;
    };
    let suite = suite(&server, true);
    let pool = JudgePool::for_suite(&suite, None).unwrap_or_else(|e| panic!("{e}"));
    let item = &suite.dataset().items()[0];
    let prompt = suite.prompt().map(|p| p.render(item).unwrap());
    let ctx = ScoreContext {
        agent_id: suite.agent_id(),
        prompt: prompt.as_ref(),
        output_check: None,
        judge: Some(&pool),
    };
    let [judge, pairwise] = suite.scorers() else {
        panic!("two scorers")
    };

    let good = judge
        .score(item, &answer("PASS, as asked"), &ctx)
        .await
        .unwrap();
    assert!(good.score.passed && good.score.value == 1.0, "{good:?}");
    assert!(
        good.spend.input_tokens > 0,
        "the judge call's tokens come back"
    );
    let bad = judge.score(item, &answer("no"), &ctx).await.unwrap();
    assert!(!bad.score.passed && bad.score.value == 0.0, "{bad:?}");

    let better = pairwise
        .score(item, &answer("the BETTER one"), &ctx)
        .await
        .unwrap();
    assert_eq!(
        (better.score.passed, better.score.value),
        (true, 1.0),
        "{better:?}"
    );
    let biased = pairwise.score(item, &answer("BIAS"), &ctx).await.unwrap();
    assert_eq!(biased.score.value, 0.5, "{biased:?}");
    assert!(
        biased.score.detail.contains("position bias"),
        "{}",
        biased.score.detail
    );
    // Two grades, then two comparisons of two calls each.
    assert_eq!(server.stats()["chat_requests"], 6);
}

#[tokio::test]
async fn scorers_without_a_judge_model_use_the_default_or_say_there_is_none() {
    let Some(server) = FakeServer::start(&[]) else {
        return;
    };
    let suite = suite(&server, false);
    let item = &suite.dataset().items()[0];
    let none = JudgePool::for_suite(&suite, None).unwrap();
    let ctx = ScoreContext {
        agent_id: "a",
        judge: Some(&none),
        ..ScoreContext::default()
    };
    let e = suite.scorers()[0]
        .score(item, &answer("PASS"), &ctx)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no default judge"), "{e}");

    let default = meshos_evals::judge_client::JudgeConfig::new(
        meshos_evals::target::OpenAiTargetConfig::new(server.base_url(), "judge-model"),
    );
    let pool = JudgePool::for_suite(&suite, Some(default)).unwrap();
    let ctx = ScoreContext {
        agent_id: "a",
        judge: Some(&pool),
        ..ScoreContext::default()
    };
    let s = suite.scorers()[0]
        .score(item, &answer("PASS"), &ctx)
        .await
        .unwrap();
    assert!(s.score.passed);
}
