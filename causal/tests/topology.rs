//! The fleet model: configured and observed dependencies, the metric expansion, cycles, and
//! diagnosis from telemetry alone.

use meshos_causal::{
    EdgeOrigin, FleetTopology, Method, Observation, PointOutcome, SeriesBuilder, TelemetryPoint,
    provider_of, rank,
};

fn obs(agent: &str, tool: Option<&str>, model: Option<&str>, region: Option<&str>) -> Observation {
    Observation {
        agent: agent.into(),
        tool: tool.map(Into::into),
        model: model.map(Into::into),
        provider: model.and_then(|m| provider_of(Some(m), None)),
        region: region.map(Into::into),
    }
}

#[test]
fn a_topology_file_loads_and_bad_entries_are_named() {
    let t = FleetTopology::from_json(
        r#"{"entities":["agent:support-bot","tool:crm","region:aws:eu-west-1"],
            "depends_on":[["agent:support-bot","tool:crm"],["tool:crm","region:aws:eu-west-1"]]}"#,
    )
    .expect("valid topology");
    let names: Vec<String> = t.entities().map(|e| e.to_string()).collect();
    assert_eq!(
        names,
        ["agent:support-bot", "tool:crm", "region:aws:eu-west-1"]
    );
    assert!(
        t.dependencies()
            .all(|(_, _, o)| o == EdgeOrigin::Configured)
    );

    let err = |text: &str| {
        FleetTopology::from_json(text)
            .expect_err("must fail")
            .to_string()
    };
    let e = err(r#"{"entities":["agent:a","queue:q"]}"#);
    assert!(
        e.contains("entities[1]") && e.contains("unknown kind `queue`"),
        "{e}"
    );
    assert!(e.contains("agent, tool, model, provider or region"), "{e}");
    let e = err(r#"{"entities":["a"]}"#);
    assert!(e.contains("entities[0]") && e.contains("kind:name"), "{e}");
    let e = err(r#"{"depends_on":[["agent:a","tool:t"],["tool:t","tool:t"]]}"#);
    assert!(e.contains("depends_on[1]") && e.contains("itself"), "{e}");
    let e = err(r#"{"entities":[],"depend_on":[]}"#);
    assert!(
        e.contains("unknown field `depend_on`") && e.contains("expected"),
        "{e}"
    );
}

#[test]
fn observed_calls_give_the_documented_dependencies() {
    let mut t = FleetTopology::new();
    t.observe(
        &obs("bot", Some("crm"), Some("openai/gpt-4o"), Some("eu-west-1")),
        1_000,
    );
    t.observe(&obs("bot", Some("crm"), None, Some("eu-west-1")), 2_000);
    let mut deps: Vec<(String, String)> = t
        .dependencies()
        .map(|(a, b, _)| (a.to_string(), b.to_string()))
        .collect();
    deps.sort();
    assert_eq!(
        deps,
        [
            ("agent:bot", "model:openai/gpt-4o"),
            ("agent:bot", "region:eu-west-1"),
            ("agent:bot", "tool:crm"),
            ("model:openai/gpt-4o", "provider:openai"),
            ("model:openai/gpt-4o", "region:eu-west-1"),
            ("tool:crm", "region:eu-west-1"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let crm = t
        .dependencies()
        .find(|(a, b, _)| a.to_string() == "agent:bot" && b.to_string() == "tool:crm")
        .map(|(_, _, o)| o);
    assert_eq!(
        crm,
        Some(EdgeOrigin::Observed {
            count: 2,
            last_seen_ms: 2_000
        })
    );
}

#[test]
fn the_provider_comes_from_attributes_then_the_model_prefix() {
    let attrs: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"gen_ai.system":"anthropic"}"#).expect("json");
    assert_eq!(
        provider_of(Some("claude-3"), Some(&attrs)).as_deref(),
        Some("anthropic")
    );
    assert_eq!(
        provider_of(Some("bedrock:claude-3"), None).as_deref(),
        Some("bedrock")
    );
    assert_eq!(provider_of(Some("gpt-4o"), None), None);
    assert_eq!(provider_of(None, None), None);
}

#[test]
fn the_metric_graph_follows_dependencies() {
    let t = FleetTopology::from_json(
        r#"{"depends_on":[["agent:bot","tool:crm"],["tool:crm","region:r1"]]}"#,
    )
    .expect("valid");
    let g = t.causal_graph().expect("graph");
    let names: Vec<&str> = g.node_names().collect();
    assert_eq!(
        names,
        [
            "agent:bot.latency",
            "agent:bot.error_rate",
            "agent:bot.violation_rate",
            "agent:bot.cost",
            "tool:crm.latency",
            "tool:crm.error_rate",
            "tool:crm.violation_rate",
            "region:r1.latency",
            "region:r1.error_rate",
        ]
    );
    assert_eq!(
        g.parents("agent:bot.error_rate").expect("node"),
        ["agent:bot.latency", "tool:crm.error_rate"]
    );
    assert_eq!(
        g.parents("agent:bot.cost").expect("node"),
        Vec::<&str>::new()
    );
    assert_eq!(
        g.parents("tool:crm.latency").expect("node"),
        ["region:r1.latency"]
    );
    assert!(g.parents("region:r1.latency").expect("node").is_empty());
}

#[test]
fn agents_calling_each_other_are_a_reported_cycle() {
    let mut t = FleetTopology::new();
    t.observe(&obs("planner", Some("agent:coder"), None, None), 1);
    t.observe(&obs("coder", Some("planner"), None, None), 2);
    assert_eq!(t.cycles(), vec![vec!["agent:coder", "agent:planner"]]);
    let g = t.causal_graph().expect("graph");
    assert!(!g.cycles().is_empty());
}

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// The shared tool `crm` slows down and fails more often.
    ToolOutage,
    /// Everything running in the region slows down.
    DegradedRegion,
}

/// Ten agents, each making one LLM call per second and every other second a call to one of two
/// tools (`crm` shared by all, `kb`), all in one region. From 600 s on, `fault` strikes. The graph
/// is built from the observations alone and the series by the builder; returns the top five.
fn diagnose_simulated_fleet(fault: Fault) -> Vec<String> {
    let mut topology = FleetTopology::new();
    let mut builder = SeriesBuilder::new(10);
    let t0_ms = 1_700_000_000_000i64;
    let fault_ms = t0_ms + 600 * 1000;
    let mut seed = 7u64;
    let mut uniform = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut points = Vec::new();
    for s in 0..900i64 {
        let at_ms = t0_ms + s * 1000;
        let faulty = at_ms >= fault_ms;
        let region_slowdown = if faulty && fault == Fault::DegradedRegion {
            1.8
        } else {
            1.0
        };
        for a in 0..10 {
            let agent = format!("agent-{a}");
            let model = if a % 2 == 0 {
                "openai/gpt-4o"
            } else {
                "openai/gpt-4o-mini"
            };
            // Separate events per call, as OpenTelemetry GenAI spans are.
            points.push(TelemetryPoint {
                at_ms,
                observation: obs(&agent, None, Some(model), Some("eu-west-1")),
                outcome: PointOutcome::Ok,
                latency_ms: Some(200.0 * (0.8 + 0.4 * uniform()) * region_slowdown),
                cost_usd: Some(0.001),
            });
            if (s + a) % 2 == 0 {
                let tool = if (s / 2 + a) % 3 == 0 { "kb" } else { "crm" };
                let tool_down = faulty && fault == Fault::ToolOutage && tool == "crm";
                let latency = if tool_down { 450.0 } else { 120.0 } * (0.8 + 0.4 * uniform());
                let error_p = if tool_down { 0.25 } else { 0.02 };
                points.push(TelemetryPoint {
                    at_ms,
                    observation: obs(&agent, Some(tool), None, Some("eu-west-1")),
                    outcome: if uniform() < error_p {
                        PointOutcome::Error
                    } else {
                        PointOutcome::Ok
                    },
                    latency_ms: Some(latency * region_slowdown),
                    cost_usd: None,
                });
            }
        }
    }
    for p in &points {
        topology.observe(&p.observation, p.at_ms);
    }
    for p in &points {
        builder.push(&topology, p);
    }
    let graph = topology.causal_graph().expect("graph");
    let series = builder.build(&topology, &graph).expect("series");
    assert_eq!(series.timestamps.len(), 90);
    let ranking = rank(&graph, &series, Some(fault_ms / 1000), Method::Ensemble).expect("rank");
    ranking.into_iter().take(5).map(|c| c.node).collect()
}

#[test]
fn a_shared_tool_outage_is_blamed_on_the_tool_not_its_callers_or_region() {
    let top = diagnose_simulated_fleet(Fault::ToolOutage);
    assert!(
        top[0] == "tool:crm.latency" || top[0] == "tool:crm.error_rate",
        "top 5: {top:?}"
    );
}

#[test]
fn a_degraded_region_is_blamed_on_the_region_not_what_runs_in_it() {
    let top = diagnose_simulated_fleet(Fault::DegradedRegion);
    assert_eq!(top[0], "region:eu-west-1.latency", "top 5: {top:?}");
}
