//! Router and dataset tests against the public API, with brute-force cross-checks computed here
//! independently of the crate's own evaluation.

use meshos_carbon::{
    CarbonError, Dataset, RouteDecision, RouteOption, RouteRequest, feasible_options, route,
    route_avoiding,
};

fn ds() -> Dataset {
    Dataset::embedded().expect("embedded dataset must load")
}

fn req(model: &str, input: u64, output: u64) -> RouteRequest {
    RouteRequest::new(model, input, output)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
}

/// (provider, region, cost, gco2e, latency) of every feasible offering, computed from the raw dataset.
#[derive(Debug, Clone)]
struct Brute {
    provider: String,
    region: String,
    cost: f64,
    g: f64,
    lat: u32,
}

fn brute_feasible(d: &Dataset, r: &RouteRequest) -> Vec<Brute> {
    let model = d
        .models()
        .iter()
        .find(|m| m.name == r.model || m.aliases.contains(&r.model))
        .expect("model exists");
    let mut out = Vec::new();
    for o in &model.offerings {
        let region = d
            .regions()
            .iter()
            .find(|x| x.id == o.region)
            .expect("region exists");
        if let Some(res) = &r.residency {
            let ok = res.iter().any(|e| {
                region.id.eq_ignore_ascii_case(e)
                    || region.country.eq_ignore_ascii_case(e)
                    || region
                        .jurisdiction
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(e))
            });
            if !ok {
                continue;
            }
        }
        let lat = o.base_latency_ms + region.network_rtt_ms;
        if let Some(max) = r.max_latency_ms
            && lat > max
        {
            continue;
        }
        let (i, t) = (r.input_tokens as f64, r.output_tokens as f64);
        let kwh = (i / 1000.0 * model.energy_wh_per_1k_input_tokens
            + t / 1000.0 * model.energy_wh_per_1k_output_tokens)
            / 1000.0
            * region.pue;
        out.push(Brute {
            provider: o.provider.clone(),
            region: region.id.clone(),
            cost: i / 1e6 * o.price_in_per_1m_usd + t / 1e6 * o.price_out_per_1m_usd,
            g: kwh * region.grid_gco2e_per_kwh,
            lat,
        });
    }
    out
}

fn brute_dominates(a: &Brute, b: &Brute) -> bool {
    a.cost <= b.cost
        && a.g <= b.g
        && a.lat <= b.lat
        && (a.cost < b.cost || a.g < b.g || a.lat < b.lat)
}

fn key(provider: &str, region: &str) -> (String, String) {
    (provider.to_string(), region.to_string())
}

fn option_keys(opts: &[RouteOption]) -> Vec<(String, String)> {
    let mut k: Vec<_> = opts.iter().map(|o| key(&o.provider, &o.region)).collect();
    k.sort();
    k
}

/// A spread of requests over every model, token mixes, residencies, latency bounds and weights.
fn request_grid(d: &Dataset) -> Vec<RouteRequest> {
    let residencies: Vec<Option<Vec<String>>> = vec![
        None,
        Some(vec!["EU".into()]),
        Some(vec!["EEA".into()]),
        Some(vec!["US".into()]),
        Some(vec!["APAC".into(), "CA".into()]),
        Some(vec!["aws:eu-west-1".into(), "FR".into()]),
    ];
    let mut out = Vec::new();
    for model in d.model_names() {
        for (i, o) in [(1000, 500), (0, 2000), (50_000, 0), (12_345, 678)] {
            for res in &residencies {
                for lat in [None, Some(500), Some(700), Some(1400)] {
                    for w in [None, Some(0.0), Some(0.25), Some(1.0)] {
                        let mut r = req(model, i, o);
                        r.residency = res.clone();
                        r.max_latency_ms = lat;
                        r.carbon_weight = w;
                        out.push(r);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn embedded_dataset_loads_and_validates() {
    let d = ds();
    let p = d.provenance();
    assert_eq!(p.signal_type, "average");
    assert_eq!(p.emission_factor, "location-based");
    assert!(!p.licence.is_empty() && !p.source.is_empty() && !p.as_of.is_empty());
    assert!(p.notes.contains("ANNUAL AVERAGES") && p.notes.contains("never marginal"));
    assert!(p.source.contains("Ember"));
    assert!(d.region_ids().len() >= 16, "{:?}", d.region_ids());
    assert!(d.model_names().len() >= 7, "{:?}", d.model_names());
    for id in [
        "aws:us-east-1",
        "aws:eu-north-1",
        "gcp:europe-west9",
        "azure:norwayeast",
        "gcp:asia-south1",
    ] {
        assert!(d.region(id).is_some(), "{id}");
    }
    for m in [
        "gpt-4o",
        "gpt-4o-mini",
        "claude-sonnet-4",
        "claude-haiku-4",
        "llama-3.1-70b",
        "llama-3.1-8b",
        "mistral-large",
    ] {
        assert!(d.model(m).is_some(), "{m}");
    }
    for m in d.models() {
        assert!(!m.offerings.is_empty());
        for o in &m.offerings {
            assert!(d.region(&o.region).is_some(), "{} -> {}", m.name, o.region);
            assert!(o.price_in_per_1m_usd > 0.0 && o.price_out_per_1m_usd > 0.0);
        }
    }
    for r in d.regions() {
        assert!(r.jurisdiction.contains(&r.country));
        assert!(r.pue >= 1.0 && r.pue < 1.3, "{}", r.id);
        assert!(r.grid_gco2e_per_kwh > 0.0 && r.grid_gco2e_per_kwh < 1000.0);
    }
    // Norway is EEA but not EU.
    let no = d.region("azure:norwayeast").unwrap();
    assert!(
        no.jurisdiction.iter().any(|t| t == "EEA") && !no.jurisdiction.iter().any(|t| t == "EU")
    );
    // Deserialize also validates and round-trips.
    let text = serde_json::to_string(&d).unwrap();
    let back: Dataset = serde_json::from_str(&text).unwrap();
    assert_eq!(back, d);
}

fn mutate(f: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(meshos_carbon::EMBEDDED_DATASET_JSON).unwrap();
    f(&mut v);
    v.to_string()
}

fn dataset_error(text: &str) -> String {
    match Dataset::from_json(text) {
        Err(CarbonError::InvalidDataset(msg)) => msg,
        other => panic!("expected InvalidDataset, got {other:?}"),
    }
}

#[test]
fn invalid_datasets_are_rejected_with_reasons() {
    let msg = dataset_error("{ not json");
    assert!(msg.contains("not a valid dataset document"), "{msg}");

    let msg = dataset_error(&mutate(|v| {
        v["models"][0]["offerings"][0]["price_in_per_1m_usd"] = (-1.0).into()
    }));
    assert!(
        msg.contains("price_in_per_1m_usd") && msg.contains("> 0"),
        "{msg}"
    );

    let msg = dataset_error(&mutate(|v| {
        v["models"][0]["offerings"][0]["region"] = "aws:mars-1".into()
    }));
    assert!(
        msg.contains("aws:mars-1") && msg.contains("not a region"),
        "{msg}"
    );

    let msg = dataset_error(&mutate(|v| {
        v["regions"][0]["grid_gco2e_per_kwh"] = 0.into()
    }));
    assert!(msg.contains("grid_gco2e_per_kwh"), "{msg}");

    let msg = dataset_error(&mutate(|v| v["regions"][0]["pue"] = 0.9.into()));
    assert!(msg.contains("pue"), "{msg}");

    let msg = dataset_error(&mutate(|v| v["provenance"]["signal_type"] = "mixed".into()));
    assert!(msg.contains("signal_type"), "{msg}");

    let msg = dataset_error(&mutate(|v| v["models"][1]["name"] = "gpt-4o".into()));
    assert!(msg.contains("more than one model"), "{msg}");

    let msg = dataset_error(&mutate(|v| v["regions"][0]["id"] = "gcp:us-east-1".into()));
    assert!(msg.contains("<provider>:<name>"), "{msg}");

    let msg = dataset_error(&mutate(|v| v["regions"][0]["surprise"] = 1.into()));
    assert!(msg.contains("surprise"), "{msg}");

    // serde's Deserialize path validates too.
    let bad = mutate(|v| v["models"][0]["energy_wh_per_1k_output_tokens"] = 0.into());
    assert!(serde_json::from_str::<Dataset>(&bad).is_err());
}

#[test]
fn energy_cost_and_carbon_follow_the_formulas() {
    let d = ds();
    let mut r = req("llama-3.1-8b", 1000, 1000);
    r.residency = Some(vec!["aws:us-east-1".into()]);
    let opts = feasible_options(&d, &r).unwrap();
    assert_eq!(opts.len(), 1);
    let o = &opts[0];
    // (1 × 0.01 + 1 × 0.1) Wh / 1000 × PUE 1.15
    assert!(
        close(o.energy_kwh, 0.11 / 1000.0 * 1.15),
        "{}",
        o.energy_kwh
    );
    assert!(close(o.gco2e, o.energy_kwh * 322.0));
    assert!(close(o.cost_usd, 0.00022 + 0.00022));
    assert_eq!(o.latency_ms, 300 + 20);
    assert_eq!(o.pue, 1.15);
    assert_eq!(o.grid_gco2e_per_kwh, 322.0);
}

#[test]
fn eu_residency_returns_only_eu_regions() {
    let d = ds();
    for model in d.model_names() {
        let mut r = req(model, 2000, 800);
        r.residency = Some(vec!["EU".into()]);
        let in_eu = |o: &RouteOption| {
            d.region(&o.region)
                .unwrap()
                .jurisdiction
                .iter()
                .any(|t| t == "EU")
        };
        match route(&d, &r) {
            Ok(dec) => {
                assert!(in_eu(&dec.choice), "{model}: {}", dec.choice.region);
                assert!(dec.alternatives.iter().all(in_eu), "{model}");
                assert!(feasible_options(&d, &r).unwrap().iter().all(in_eu));
                assert_eq!(dec.feasible_count, brute_feasible(&d, &r).len());
            }
            Err(CarbonError::NoFeasibleOption { reason }) => {
                assert!(brute_feasible(&d, &r).is_empty(), "{model}: {reason}");
                assert!(reason.contains("residency"), "{reason}");
            }
            Err(e) => panic!("{model}: {e}"),
        }
    }
    // Norway (EEA, not EU) is excluded for EU and included for EEA.
    let mut r = req("gpt-4o", 1000, 1000);
    r.residency = Some(vec!["eu".into()]);
    let eu = feasible_options(&d, &r).unwrap();
    assert!(!eu.is_empty() && eu.iter().all(|o| o.region != "azure:norwayeast"));
    r.residency = Some(vec!["EEA".into()]);
    let eea = feasible_options(&d, &r).unwrap();
    assert!(eea.iter().any(|o| o.region == "azure:norwayeast"));
    assert_eq!(eea.len(), eu.len() + 1);
}

#[test]
fn residency_accepts_region_ids_and_country_codes() {
    let d = ds();
    let mut r = req("claude-sonnet-4", 1000, 1000);
    r.residency = Some(vec!["AWS:EU-WEST-1".into()]);
    let dec = route(&d, &r).unwrap();
    assert_eq!(dec.choice.region, "aws:eu-west-1");
    assert_eq!(dec.feasible_count, 1);
    assert_eq!(dec.alternatives.len(), 1);

    r.residency = Some(vec!["de".into(), "JP".into()]);
    let opts = feasible_options(&d, &r).unwrap();
    assert_eq!(
        option_keys(&opts),
        vec![
            key("aws-bedrock", "aws:ap-northeast-1"),
            key("aws-bedrock", "aws:eu-central-1")
        ]
    );
}

#[test]
fn latency_bound_filters() {
    let d = ds();
    for model in d.model_names() {
        let all = brute_feasible(&d, &req(model, 1000, 1000));
        let lo = all.iter().map(|b| b.lat).min().unwrap();
        let hi = all.iter().map(|b| b.lat).max().unwrap();
        if lo == hi {
            continue;
        }
        let bound = lo + (hi - lo) / 2;
        let mut r = req(model, 1000, 1000);
        r.max_latency_ms = Some(bound);
        let dec = route(&d, &r).unwrap();
        assert!(
            dec.alternatives.iter().all(|o| o.latency_ms <= bound),
            "{model}"
        );
        let expected = all.iter().filter(|b| b.lat <= bound).count();
        assert_eq!(dec.feasible_count, expected, "{model}");
        assert!(expected < all.len());
        let opts = feasible_options(&d, &r).unwrap();
        assert_eq!(opts.len(), expected);
        assert!(opts.iter().all(|o| o.latency_ms <= bound));
    }
}

#[test]
fn weight_one_is_min_carbon_and_weight_zero_is_cheapest() {
    let d = ds();
    for base in request_grid(&d) {
        let all = brute_feasible(&d, &base);
        if all.is_empty() {
            continue;
        }
        let min_g = all.iter().map(|b| b.g).fold(f64::INFINITY, f64::min);
        let min_c = all.iter().map(|b| b.cost).fold(f64::INFINITY, f64::min);
        let mut r = base.clone();
        r.carbon_weight = Some(1.0);
        let dec = route(&d, &r).unwrap();
        assert!(
            close(dec.choice.gco2e, min_g),
            "{r:?}: {} vs {min_g}",
            dec.choice.gco2e
        );
        r.carbon_weight = Some(0.0);
        let dec = route(&d, &r).unwrap();
        assert!(
            close(dec.choice.cost_usd, min_c),
            "{r:?}: {} vs {min_c}",
            dec.choice.cost_usd
        );
    }
}

fn assert_pareto_exact(r: &RouteRequest, dec: &RouteDecision, all: &[Brute]) {
    let front: Vec<&Brute> = all
        .iter()
        .filter(|b| !all.iter().any(|o| brute_dominates(o, b)))
        .collect();
    let mut want: Vec<_> = front.iter().map(|b| key(&b.provider, &b.region)).collect();
    want.sort();
    assert_eq!(option_keys(&dec.alternatives), want, "{r:?}");
    assert!(dec.alternatives.iter().all(|o| o.pareto_optimal));
    assert_eq!(dec.alternatives[0], dec.choice);
    // Every dominated feasible option is excluded, and each excluded one is dominated by some alternative.
    for b in all {
        let listed = dec
            .alternatives
            .iter()
            .any(|o| o.provider == b.provider && o.region == b.region);
        let dominated = all.iter().any(|o| brute_dominates(o, b));
        assert_eq!(listed, !dominated, "{r:?}: {b:?}");
    }
    // No alternative dominates another.
    for a in &dec.alternatives {
        for b in &dec.alternatives {
            assert!(
                !meshos_carbon::dominates(a, b),
                "{r:?}: {} dominates {}",
                a.region,
                b.region
            );
        }
    }
}

fn assert_sorted_by_score(r: &RouteRequest, dec: &RouteDecision) {
    let w = r.carbon_weight.unwrap_or(0.5);
    let alts = &dec.alternatives;
    let (cmin, cmax) = alts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), o| {
            (l.min(o.cost_usd), h.max(o.cost_usd))
        });
    let (gmin, gmax) = alts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), o| {
            (l.min(o.gco2e), h.max(o.gco2e))
        });
    let n = |v: f64, lo: f64, hi: f64| if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
    let score =
        |o: &RouteOption| w * n(o.gco2e, gmin, gmax) + (1.0 - w) * n(o.cost_usd, cmin, cmax);
    for pair in alts.windows(2) {
        let (a, b) = (score(&pair[0]), score(&pair[1]));
        assert!(a <= b + 1e-9, "{r:?}: scores out of order {a} > {b}");
        if (a - b).abs() <= 1e-9 {
            assert!(
                (pair[0].latency_ms, &pair[0].region) <= (pair[1].latency_ms, &pair[1].region),
                "{r:?}: tie not broken by latency then region"
            );
        }
    }
}

fn assert_tradeoff_consistent(r: &RouteRequest, dec: &RouteDecision, all: &[Brute]) {
    let min_c = all.iter().map(|b| b.cost).fold(f64::INFINITY, f64::min);
    let t = &dec.tradeoff;
    let cheapest = all
        .iter()
        .find(|b| b.region == t.cheapest_region && b.provider == t.cheapest_provider)
        .expect("cheapest is a feasible option");
    assert!(close(cheapest.cost, min_c), "{r:?}");
    assert!(
        close(t.cost_delta_usd, dec.choice.cost_usd - cheapest.cost),
        "{r:?}"
    );
    assert!(close(t.gco2e_delta, dec.choice.gco2e - cheapest.g), "{r:?}");
    assert!(
        close(t.cost_delta_pct, t.cost_delta_usd / cheapest.cost * 100.0),
        "{r:?}"
    );
    assert!(
        close(t.gco2e_delta_pct, t.gco2e_delta / cheapest.g * 100.0),
        "{r:?}"
    );
    assert_eq!(
        t.latency_delta_ms,
        i64::from(dec.choice.latency_ms) - i64::from(cheapest.lat)
    );
    assert!(
        t.cost_delta_usd >= 0.0,
        "the cheapest costs no more than the choice"
    );
    assert!(t.text.contains(&dec.choice.region), "{}", t.text);
    assert!(t.text.contains(&t.cheapest_region), "{}", t.text);
    assert!(
        t.text
            .contains(&format!("{} feasible option", dec.feasible_count)),
        "{}",
        t.text
    );
}

#[test]
fn pareto_set_scores_and_tradeoffs_match_brute_force() {
    let d = ds();
    let mut checked = 0;
    for r in request_grid(&d) {
        let all = brute_feasible(&d, &r);
        match route(&d, &r) {
            Ok(dec) => {
                assert_eq!(dec.feasible_count, all.len());
                assert_pareto_exact(&r, &dec, &all);
                assert_sorted_by_score(&r, &dec);
                assert_tradeoff_consistent(&r, &dec, &all);
                assert_eq!(dec.data.signal_type, "average");
                // feasible_options agrees on the feasible set and the flags.
                let opts = feasible_options(&d, &r).unwrap();
                assert_eq!(opts.len(), all.len());
                let flagged: Vec<RouteOption> =
                    opts.into_iter().filter(|o| o.pareto_optimal).collect();
                assert_eq!(option_keys(&flagged), option_keys(&dec.alternatives));
                checked += 1;
            }
            Err(CarbonError::NoFeasibleOption { .. }) => assert!(all.is_empty(), "{r:?}"),
            Err(e) => panic!("{r:?}: {e}"),
        }
    }
    assert!(checked > 500, "only {checked} routed requests");
}

#[test]
fn example_eu_sonnet_prefers_stockholm_and_explains() {
    let d = ds();
    let mut r = req("claude-sonnet-4", 3000, 1000);
    r.residency = Some(vec!["EU".into()]);
    let dec = route(&d, &r).unwrap();
    // Equal list prices across EU offerings: Stockholm's grid makes it the lowest-carbon one.
    assert_eq!(dec.choice.region, "aws:eu-north-1");
    assert_eq!(dec.tradeoff.cheapest_region, "aws:eu-north-1");
    assert!(
        dec.tradeoff
            .text
            .contains("is the cheapest feasible option"),
        "{}",
        dec.tradeoff.text
    );

    // gpt-4o-mini: Sweden vs Virginia at equal price; with residency none, Sweden is greener, Virginia faster.
    let dec = route(&d, &req("gpt-4o-mini", 1000, 1000)).unwrap();
    assert_eq!(dec.alternatives.len(), 2);
    assert_eq!(dec.choice.region, "azure:swedencentral");

    // llama-3.1-70b: Bedrock is cheaper; Azure Sweden is far greener; the text states both sides.
    let mut r = req("llama-3.1-70b", 2000, 2000);
    r.carbon_weight = Some(0.9);
    let dec = route(&d, &r).unwrap();
    assert_eq!(dec.choice.region, "azure:swedencentral");
    assert_eq!(dec.tradeoff.cheapest_region, "aws:us-west-2");
    let text = &dec.tradeoff.text;
    assert!(
        text.contains("more than the cheapest feasible option (aws:us-west-2 via aws-bedrock)"),
        "{text}"
    );
    assert!(text.contains("less CO2e"), "{text}");
    assert!(dec.tradeoff.cost_delta_pct > 0.0 && dec.tradeoff.gco2e_delta_pct < 0.0);
}

#[test]
fn aliases_resolve_and_requests_deserialize() {
    let d = ds();
    let a = route(&d, &req("claude-haiku-4", 100, 100)).unwrap();
    let b = route(&d, &req("Claude-Haiku-4.5", 100, 100)).unwrap();
    assert_eq!(a, b);
    let r: RouteRequest =
        serde_json::from_str(r#"{"model":"gpt-4o","input_tokens":10,"output_tokens":20}"#).unwrap();
    assert_eq!(r, req("gpt-4o", 10, 20));
    let dec = route(&d, &r).unwrap();
    let json = serde_json::to_value(&dec).unwrap();
    assert!(json["tradeoff"]["text"].is_string());
    assert_eq!(json["data"]["signal_type"], "average");
    // Output schemas exist for the MCP surface.
    let schema = serde_json::to_value(schemars::schema_for!(RouteDecision)).unwrap();
    assert!(schema.to_string().contains("pareto_optimal"));
    let schema = serde_json::to_value(schemars::schema_for!(RouteRequest)).unwrap();
    assert!(schema.to_string().contains("carbon_weight"));
    // Deterministic.
    assert_eq!(route(&d, &r).unwrap(), dec);
}

#[test]
fn unknown_model_names_value_and_known_models() {
    let d = ds();
    let err = route(&d, &req("gpt-5-ultra", 10, 10)).unwrap_err();
    match &err {
        CarbonError::UnknownModel { model, known } => {
            assert_eq!(model, "gpt-5-ultra");
            assert!(known.iter().any(|k| k == "gpt-4o-mini"));
            assert_eq!(known.len(), d.model_names().len());
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("gpt-5-ultra") && msg.contains("llama-3.1-8b") && msg.contains("known models"),
        "{msg}"
    );
}

#[test]
fn unknown_residency_names_value_and_accepted_forms() {
    let d = ds();
    let mut r = req("gpt-4o", 10, 10);
    r.residency = Some(vec!["EU".into(), "Atlantis".into()]);
    let err = route(&d, &r).unwrap_err();
    match &err {
        CarbonError::UnknownResidency { value, hint } => {
            assert_eq!(value, "Atlantis");
            for accepted in [
                "EU",
                "EEA",
                "APAC",
                "FR",
                "aws:eu-west-1",
                "azure:norwayeast",
            ] {
                assert!(hint.contains(accepted), "{accepted} missing from {hint}");
            }
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("Atlantis"));
    r.residency = Some(vec!["  ".into()]);
    assert!(matches!(
        route(&d, &r),
        Err(CarbonError::UnknownResidency { .. })
    ));
}

#[test]
fn too_tight_latency_is_no_feasible_option() {
    let d = ds();
    let mut r = req("claude-sonnet-4", 1000, 1000);
    r.max_latency_ms = Some(100);
    match route(&d, &r).unwrap_err() {
        CarbonError::NoFeasibleOption { reason } => {
            assert!(reason.contains("max_latency_ms is 100"), "{reason}");
            // Fastest: 1300 ms base + 3 ms RTT in Frankfurt or Singapore.
            assert!(reason.contains("1303 ms"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let mut r = req("gpt-4o", 1000, 1000);
    r.residency = Some(vec!["APAC".into()]);
    match route(&d, &r).unwrap_err() {
        CarbonError::NoFeasibleOption { reason } => {
            assert!(
                reason.contains("no offering within residency [APAC]"),
                "{reason}"
            );
            assert!(reason.contains("azure:eastus"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_requests_name_the_field() {
    let d = ds();
    let field_of = |r: &RouteRequest| match route(&d, r) {
        Err(CarbonError::InvalidRequest { field, expected }) => (field, expected),
        other => panic!("expected InvalidRequest, got {other:?}"),
    };
    let (f, e) = field_of(&req("gpt-4o", 0, 0));
    assert_eq!(f, "input_tokens/output_tokens");
    assert!(e.contains("at least 1"), "{e}");
    assert_eq!(field_of(&req("  ", 1, 1)).0, "model");
    for w in [1.5, -0.1, f64::NAN, f64::INFINITY] {
        let mut r = req("gpt-4o", 1, 1);
        r.carbon_weight = Some(w);
        let (f, e) = field_of(&r);
        assert_eq!(f, "carbon_weight");
        assert!(
            e.contains("between 0 and 1") && e.contains(&format!("got {w}")),
            "{e}"
        );
    }
    let mut r = req("gpt-4o", 1, 1);
    r.residency = Some(vec![]);
    assert_eq!(field_of(&r).0, "residency");
    let msg = route(&d, &req("gpt-4o", 0, 0)).unwrap_err().to_string();
    assert!(
        msg.starts_with("invalid request: `input_tokens/output_tokens` must be"),
        "{msg}"
    );
}

#[test]
fn avoided_regions_and_providers_are_left_out_and_named() {
    let d = ds();
    let r = req("gpt-4o-mini", 1000, 200);
    let first = route(&d, &r).unwrap();
    assert!(first.avoided.is_empty());
    let region = first.choice.region.clone();
    let moved = route_avoiding(&d, &r, std::slice::from_ref(&region)).unwrap();
    assert_ne!(moved.choice.region, region);
    assert!(moved.alternatives.iter().all(|o| o.region != region));
    assert_eq!(moved.avoided, vec![region.clone()]);
    assert_eq!(moved.feasible_count + 1, first.feasible_count);

    // A place the model is not offered in changes nothing and is not reported.
    let nowhere = route_avoiding(&d, &r, &["mars:olympus-1".to_string()]).unwrap();
    assert_eq!(nowhere.choice, first.choice);
    assert!(nowhere.avoided.is_empty());

    // This model has one provider: avoiding it avoids everything, and the error says why.
    let provider = first.choice.provider.clone();
    assert!(first.alternatives.iter().all(|o| o.provider == provider));
    let err = route_avoiding(&d, &r, std::slice::from_ref(&provider))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("avoided by an open incident") && err.contains(&provider),
        "{err}"
    );
}
