//! Mesh OS carbon & cost router.
//!
//! Owns:
//! - the embedded region / price dataset (`data/regions.json`): cloud regions with their annual-average,
//!   location-based grid carbon intensity, provider PUE and a typical client round-trip time, and AI models
//!   with an estimated energy per token and the offerings (provider, region, list price, base latency)
//!   that serve them, together with the dataset's provenance and licence;
//! - the cost–carbon–latency router ([`route`]): it filters a model's offerings by residency and latency,
//!   keeps the Pareto set over (cost, gCO2e, latency), picks one option with a carbon-vs-cost weight and
//!   explains the trade-off against the cheapest feasible option.
//!
//! Must not: touch the network or storage, read files at run time (the dataset is compiled in with
//! `include_str!`; other datasets are passed in as text), or mix marginal and average intensity signals
//! (a dataset declares exactly one `signal_type`). Live intensity providers belong at the edges, which
//! pass their numbers in as data.
//!
//! Maths, per offering: `energy_kwh = (in/1000 × wh_in + out/1000 × wh_out) / 1000 × PUE`,
//! `gco2e = energy_kwh × grid_gco2e_per_kwh`, `cost_usd = in/1e6 × price_in + out/1e6 × price_out`,
//! `latency_ms = base_latency_ms + network_rtt_ms`.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The dataset shipped with this crate (see its `provenance` block for sources and licence).
pub const EMBEDDED_DATASET_JSON: &str = include_str!("../data/regions.json");

/// Carbon weight used when a request does not give one.
pub const DEFAULT_CARBON_WEIGHT: f64 = 0.5;

/// Errors of this crate. Every message says what was wrong and what is accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CarbonError {
    /// The requested model is not in the dataset.
    #[error("unknown model `{model}`; known models: {}", known.join(", "))]
    UnknownModel { model: String, known: Vec<String> },
    /// A residency entry matches no jurisdiction tag, country code or region id.
    #[error("unknown residency value `{value}`: {hint}")]
    UnknownResidency { value: String, hint: String },
    /// The constraints leave no offering.
    #[error("no feasible option: {reason}")]
    NoFeasibleOption { reason: String },
    /// A request field is out of range or empty.
    #[error("invalid request: `{field}` must be {expected}")]
    InvalidRequest { field: String, expected: String },
    /// The dataset text does not parse or fails validation.
    #[error("invalid dataset: {0}")]
    InvalidDataset(String),
}

/// One cited source of the dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceRef {
    pub name: String,
    pub url: String,
    pub licence: String,
    /// Which fields of the dataset come from this source.
    pub used_for: String,
}

/// Where the dataset's numbers come from, under which licence, and how they were compiled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    pub name: String,
    pub version: String,
    /// All sources, named in one line.
    pub source: String,
    /// The sources one by one.
    #[serde(default)]
    pub sources: Vec<SourceRef>,
    pub licence: String,
    /// Year the figures were retrieved.
    pub retrieved: String,
    /// Data year of the grid intensities.
    pub as_of: String,
    /// `average` or `marginal`; one dataset never mixes the two.
    pub signal_type: String,
    /// `location-based` or `market-based`.
    pub emission_factor: String,
    /// How the values were compiled and how far to trust them.
    pub notes: String,
}

/// A cloud region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// `provider:name`, e.g. `aws:eu-north-1`.
    pub id: String,
    pub provider: String,
    /// City or area.
    pub location: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// Residency tags (e.g. `EU`, `EEA`, `US`, `APAC`) including the country code.
    pub jurisdiction: Vec<String>,
    /// Annual-average grid intensity, gCO2e per kWh.
    pub grid_gco2e_per_kwh: f64,
    /// Where the grid figure comes from.
    pub grid_basis: String,
    /// Power usage effectiveness (≥ 1).
    pub pue: f64,
    /// Typical round-trip time from a reference client on the same continent.
    pub network_rtt_ms: u32,
}

/// A model served in one region by one provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Offering {
    pub provider: String,
    /// A region id of the dataset.
    pub region: String,
    pub price_in_per_1m_usd: f64,
    pub price_out_per_1m_usd: f64,
    /// Typical time to first token at this provider, without network.
    pub base_latency_ms: u32,
}

/// A model with its estimated energy per token and its offerings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub name: String,
    /// Other names that resolve to this model.
    #[serde(default)]
    pub aliases: Vec<String>,
    pub energy_wh_per_1k_input_tokens: f64,
    pub energy_wh_per_1k_output_tokens: f64,
    /// Where the energy estimate comes from.
    pub energy_basis: String,
    pub offerings: Vec<Offering>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataset {
    provenance: Provenance,
    regions: Vec<Region>,
    models: Vec<Model>,
}

/// A validated region / model dataset. Deserialising it validates it, like [`Dataset::from_json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawDataset")]
pub struct Dataset {
    provenance: Provenance,
    regions: Vec<Region>,
    models: Vec<Model>,
}

impl TryFrom<RawDataset> for Dataset {
    type Error = CarbonError;

    fn try_from(raw: RawDataset) -> Result<Self, Self::Error> {
        validate(&raw)?;
        Ok(Dataset {
            provenance: raw.provenance,
            regions: raw.regions,
            models: raw.models,
        })
    }
}

impl Dataset {
    /// The dataset compiled into this crate.
    pub fn embedded() -> Result<Dataset, CarbonError> {
        Self::from_json(EMBEDDED_DATASET_JSON)
    }

    /// Parses and validates a dataset document (same shape as `data/regions.json`).
    pub fn from_json(text: &str) -> Result<Dataset, CarbonError> {
        let raw: RawDataset = serde_json::from_str(text).map_err(|e| {
            CarbonError::InvalidDataset(format!("not a valid dataset document: {e}"))
        })?;
        Dataset::try_from(raw)
    }

    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    /// Canonical model names, in dataset order.
    pub fn model_names(&self) -> Vec<&str> {
        self.models.iter().map(|m| m.name.as_str()).collect()
    }

    /// Region ids, in dataset order.
    pub fn region_ids(&self) -> Vec<&str> {
        self.regions.iter().map(|r| r.id.as_str()).collect()
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    pub fn models(&self) -> &[Model] {
        &self.models
    }

    /// The region with this id (case-insensitive).
    pub fn region(&self, id: &str) -> Option<&Region> {
        self.regions
            .iter()
            .find(|r| r.id.eq_ignore_ascii_case(id.trim()))
    }

    /// The model with this name or alias (case-insensitive).
    pub fn model(&self, name: &str) -> Option<&Model> {
        let name = name.trim();
        self.models.iter().find(|m| {
            m.name.eq_ignore_ascii_case(name)
                || m.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
        })
    }

    /// Jurisdiction tags that are not country codes (e.g. `EU`, `EEA`, `APAC`), sorted.
    pub fn jurisdiction_tags(&self) -> Vec<&str> {
        let countries: HashSet<&str> = self.regions.iter().map(|r| r.country.as_str()).collect();
        let tags: BTreeSet<&str> = self
            .regions
            .iter()
            .flat_map(|r| r.jurisdiction.iter().map(String::as_str))
            .filter(|t| !countries.contains(t))
            .collect();
        tags.into_iter().collect()
    }

    /// Country codes of the regions, sorted.
    pub fn countries(&self) -> Vec<&str> {
        let set: BTreeSet<&str> = self.regions.iter().map(|r| r.country.as_str()).collect();
        set.into_iter().collect()
    }
}

fn invalid(msg: impl Into<String>) -> CarbonError {
    CarbonError::InvalidDataset(msg.into())
}

fn check_positive(what: &str, value: f64) -> Result<(), CarbonError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} must be a finite number > 0, got {value}"
        )))
    }
}

fn check_non_empty(what: &str, value: &str) -> Result<(), CarbonError> {
    if value.trim().is_empty() {
        Err(invalid(format!("{what} must not be empty")))
    } else {
        Ok(())
    }
}

fn validate(raw: &RawDataset) -> Result<(), CarbonError> {
    let p = &raw.provenance;
    for (what, value) in [
        ("provenance.name", &p.name),
        ("provenance.source", &p.source),
        ("provenance.licence", &p.licence),
        ("provenance.retrieved", &p.retrieved),
        ("provenance.as_of", &p.as_of),
        ("provenance.notes", &p.notes),
    ] {
        check_non_empty(what, value)?;
    }
    if p.signal_type != "average" && p.signal_type != "marginal" {
        return Err(invalid(format!(
            "provenance.signal_type must be `average` or `marginal`, got `{}`",
            p.signal_type
        )));
    }
    if p.emission_factor != "location-based" && p.emission_factor != "market-based" {
        return Err(invalid(format!(
            "provenance.emission_factor must be `location-based` or `market-based`, got `{}`",
            p.emission_factor
        )));
    }

    if raw.regions.is_empty() {
        return Err(invalid("regions must not be empty"));
    }
    let mut region_ids: HashSet<String> = HashSet::new();
    for r in &raw.regions {
        check_non_empty("region id", &r.id)?;
        let ctx = format!("region `{}`", r.id);
        match r.id.split_once(':') {
            Some((prefix, rest)) if prefix == r.provider && !rest.is_empty() => {}
            _ => {
                return Err(invalid(format!(
                    "{ctx}: id must be `<provider>:<name>` with provider `{}`",
                    r.provider
                )));
            }
        }
        if !region_ids.insert(r.id.to_ascii_lowercase()) {
            return Err(invalid(format!("{ctx} is listed twice")));
        }
        check_non_empty(&format!("{ctx}: location"), &r.location)?;
        check_non_empty(&format!("{ctx}: grid_basis"), &r.grid_basis)?;
        if r.country.len() != 2 || !r.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid(format!(
                "{ctx}: country must be an ISO 3166-1 alpha-2 code in upper case, got `{}`",
                r.country
            )));
        }
        if !r.jurisdiction.contains(&r.country) {
            return Err(invalid(format!(
                "{ctx}: jurisdiction must include the country code `{}`",
                r.country
            )));
        }
        for tag in &r.jurisdiction {
            if tag.trim().is_empty() || tag.contains(':') {
                return Err(invalid(format!(
                    "{ctx}: jurisdiction tags must be non-empty and contain no `:`, got `{tag}`"
                )));
            }
        }
        check_positive(&format!("{ctx}: grid_gco2e_per_kwh"), r.grid_gco2e_per_kwh)?;
        if !(r.pue.is_finite() && (1.0..5.0).contains(&r.pue)) {
            return Err(invalid(format!(
                "{ctx}: pue must be a finite number in [1, 5), got {}",
                r.pue
            )));
        }
    }

    if raw.models.is_empty() {
        return Err(invalid("models must not be empty"));
    }
    let mut model_names: HashSet<String> = HashSet::new();
    for m in &raw.models {
        check_non_empty("model name", &m.name)?;
        let ctx = format!("model `{}`", m.name);
        for name in std::iter::once(&m.name).chain(m.aliases.iter()) {
            check_non_empty(&format!("{ctx}: alias"), name)?;
            if !model_names.insert(name.trim().to_ascii_lowercase()) {
                return Err(invalid(format!(
                    "{ctx}: name or alias `{name}` is used by more than one model"
                )));
            }
        }
        check_positive(
            &format!("{ctx}: energy_wh_per_1k_input_tokens"),
            m.energy_wh_per_1k_input_tokens,
        )?;
        check_positive(
            &format!("{ctx}: energy_wh_per_1k_output_tokens"),
            m.energy_wh_per_1k_output_tokens,
        )?;
        if m.offerings.is_empty() {
            return Err(invalid(format!("{ctx} has no offerings")));
        }
        let mut seen: HashSet<(String, String)> = HashSet::new();
        for o in &m.offerings {
            let octx = format!("{ctx}, offering {} in {}", o.provider, o.region);
            check_non_empty(&format!("{ctx}: offering provider"), &o.provider)?;
            if !raw.regions.iter().any(|r| r.id == o.region) {
                return Err(invalid(format!(
                    "{octx}: region `{}` is not a region of the dataset",
                    o.region
                )));
            }
            if !seen.insert((o.provider.clone(), o.region.clone())) {
                return Err(invalid(format!("{octx} is listed twice")));
            }
            check_positive(
                &format!("{octx}: price_in_per_1m_usd"),
                o.price_in_per_1m_usd,
            )?;
            check_positive(
                &format!("{octx}: price_out_per_1m_usd"),
                o.price_out_per_1m_usd,
            )?;
            if o.base_latency_ms == 0 {
                return Err(invalid(format!("{octx}: base_latency_ms must be > 0")));
            }
        }
    }
    Ok(())
}

/// A routing question: where should this model call run?
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct RouteRequest {
    /// Model name or alias, e.g. `gpt-4o-mini` or `claude-sonnet-4`.
    pub model: String,
    /// Prompt (input) tokens.
    pub input_tokens: u64,
    /// Completion (output) tokens.
    pub output_tokens: u64,
    /// Allowed places: jurisdiction tags (`EU`, `EEA`, `US`, `APAC`, …), ISO country codes (`FR`) or region
    /// ids (`aws:eu-west-1`); an option qualifies if any entry matches. Omit for no constraint.
    #[serde(default)]
    pub residency: Option<Vec<String>>,
    /// Upper bound on base latency + network round trip, in milliseconds.
    #[serde(default)]
    pub max_latency_ms: Option<u32>,
    /// 0..=1, default 0.5: weight of carbon against cost when picking among the Pareto set
    /// (1 = least carbon, 0 = cheapest).
    #[serde(default)]
    pub carbon_weight: Option<f64>,
}

impl RouteRequest {
    /// A request without residency, latency or weight constraints.
    pub fn new(model: impl Into<String>, input_tokens: u64, output_tokens: u64) -> Self {
        RouteRequest {
            model: model.into(),
            input_tokens,
            output_tokens,
            residency: None,
            max_latency_ms: None,
            carbon_weight: None,
        }
    }
}

/// One way to serve the request, with its cost, emissions and latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RouteOption {
    pub provider: String,
    pub region: String,
    pub location: String,
    pub cost_usd: f64,
    pub gco2e: f64,
    pub latency_ms: u32,
    pub energy_kwh: f64,
    pub grid_gco2e_per_kwh: f64,
    pub pue: f64,
    /// No other feasible option is at least as good on cost, gCO2e and latency and better on one.
    pub pareto_optimal: bool,
}

/// The chosen option compared with the cheapest feasible option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tradeoff {
    /// Plain-English summary.
    pub text: String,
    /// Region id of the cheapest feasible option.
    pub cheapest_region: String,
    /// Provider of the cheapest feasible option.
    pub cheapest_provider: String,
    /// choice − cheapest, USD.
    pub cost_delta_usd: f64,
    /// (choice − cheapest) / cheapest × 100.
    pub cost_delta_pct: f64,
    /// choice − cheapest, grams CO2e.
    pub gco2e_delta: f64,
    /// (choice − cheapest) / cheapest × 100.
    pub gco2e_delta_pct: f64,
    /// choice − cheapest, milliseconds.
    pub latency_delta_ms: i64,
}

/// Where the numbers come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DataInfo {
    pub source: String,
    /// Data year of the grid intensities.
    pub as_of: String,
    /// `average` (annual-average, location-based) or `marginal`.
    pub signal_type: String,
    pub licence: String,
}

/// The router's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RouteDecision {
    pub choice: RouteOption,
    /// The Pareto set over (cost, gCO2e, latency), sorted by the same score as the choice, choice first.
    pub alternatives: Vec<RouteOption>,
    pub tradeoff: Tradeoff,
    pub data: DataInfo,
    /// Offerings that satisfy residency and latency (and are not avoided).
    pub feasible_count: usize,
    /// Regions or providers left out because an open incident avoids them (see
    /// [`route_avoiding`]); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub avoided: Vec<String>,
}

struct Evaluation<'a> {
    model: &'a Model,
    weight: f64,
    /// Offerings within residency, before the latency bound, marked with whether they meet it.
    in_residency: Vec<(RouteOption, bool)>,
    allowed_regions: Option<Vec<&'a str>>,
}

fn validate_request(req: &RouteRequest) -> Result<f64, CarbonError> {
    if req.model.trim().is_empty() {
        return Err(CarbonError::InvalidRequest {
            field: "model".into(),
            expected: "a non-empty model name (see the dataset's model list)".into(),
        });
    }
    if req.input_tokens == 0 && req.output_tokens == 0 {
        return Err(CarbonError::InvalidRequest {
            field: "input_tokens/output_tokens".into(),
            expected: "token counts whose sum is at least 1, got 0 input and 0 output tokens"
                .into(),
        });
    }
    let weight = req.carbon_weight.unwrap_or(DEFAULT_CARBON_WEIGHT);
    if !(weight.is_finite() && (0.0..=1.0).contains(&weight)) {
        return Err(CarbonError::InvalidRequest {
            field: "carbon_weight".into(),
            expected: format!(
                "a number between 0 and 1 inclusive (0 = cheapest, 1 = least carbon; default 0.5), got {weight}"
            ),
        });
    }
    if let Some(list) = &req.residency
        && list.is_empty()
    {
        return Err(CarbonError::InvalidRequest {
            field: "residency".into(),
            expected: "a non-empty list of jurisdiction tags, country codes or region ids \
                       (omit the field for no residency constraint), got an empty list"
                .into(),
        });
    }
    Ok(weight)
}

fn residency_hint(dataset: &Dataset) -> String {
    format!(
        "use a jurisdiction tag ({}), an ISO country code ({}) or a region id ({})",
        dataset.jurisdiction_tags().join(", "),
        dataset.countries().join(", "),
        dataset.region_ids().join(", ")
    )
}

fn region_matches(region: &Region, entry: &str) -> bool {
    region.id.eq_ignore_ascii_case(entry)
        || region.country.eq_ignore_ascii_case(entry)
        || region
            .jurisdiction
            .iter()
            .any(|t| t.eq_ignore_ascii_case(entry))
}

/// Region ids allowed by the residency entries; every entry must match at least one region.
fn resolve_residency<'a>(
    dataset: &'a Dataset,
    entries: &[String],
) -> Result<Vec<&'a str>, CarbonError> {
    let mut allowed: Vec<&str> = Vec::new();
    for entry in entries {
        let e = entry.trim();
        let matched: Vec<&str> = dataset
            .regions
            .iter()
            .filter(|r| !e.is_empty() && region_matches(r, e))
            .map(|r| r.id.as_str())
            .collect();
        if matched.is_empty() {
            return Err(CarbonError::UnknownResidency {
                value: entry.clone(),
                hint: residency_hint(dataset),
            });
        }
        for id in matched {
            if !allowed.contains(&id) {
                allowed.push(id);
            }
        }
    }
    Ok(allowed)
}

fn evaluate<'a>(dataset: &'a Dataset, req: &RouteRequest) -> Result<Evaluation<'a>, CarbonError> {
    let weight = validate_request(req)?;
    let model = dataset
        .model(&req.model)
        .ok_or_else(|| CarbonError::UnknownModel {
            model: req.model.clone(),
            known: dataset
                .model_names()
                .into_iter()
                .map(String::from)
                .collect(),
        })?;
    let allowed_regions = match &req.residency {
        Some(entries) => Some(resolve_residency(dataset, entries)?),
        None => None,
    };
    let tokens_in = req.input_tokens as f64;
    let tokens_out = req.output_tokens as f64;
    let mut in_residency = Vec::new();
    for o in &model.offerings {
        let region = dataset.region(&o.region).ok_or_else(|| {
            invalid(format!(
                "offering region `{}` is not a region of the dataset",
                o.region
            ))
        })?;
        if let Some(allowed) = &allowed_regions
            && !allowed.contains(&region.id.as_str())
        {
            continue;
        }
        let wh = tokens_in / 1000.0 * model.energy_wh_per_1k_input_tokens
            + tokens_out / 1000.0 * model.energy_wh_per_1k_output_tokens;
        let energy_kwh = wh / 1000.0 * region.pue;
        let option = RouteOption {
            provider: o.provider.clone(),
            region: region.id.clone(),
            location: region.location.clone(),
            cost_usd: tokens_in / 1e6 * o.price_in_per_1m_usd
                + tokens_out / 1e6 * o.price_out_per_1m_usd,
            gco2e: energy_kwh * region.grid_gco2e_per_kwh,
            latency_ms: o.base_latency_ms.saturating_add(region.network_rtt_ms),
            energy_kwh,
            grid_gco2e_per_kwh: region.grid_gco2e_per_kwh,
            pue: region.pue,
            pareto_optimal: false,
        };
        let within_latency = req
            .max_latency_ms
            .is_none_or(|max| option.latency_ms <= max);
        in_residency.push((option, within_latency));
    }
    Ok(Evaluation {
        model,
        weight,
        in_residency,
        allowed_regions,
    })
}

/// `a` dominates `b`: no worse on cost, gCO2e and latency, and better on at least one.
pub fn dominates(a: &RouteOption, b: &RouteOption) -> bool {
    let no_worse = a.cost_usd <= b.cost_usd && a.gco2e <= b.gco2e && a.latency_ms <= b.latency_ms;
    let better = a.cost_usd < b.cost_usd || a.gco2e < b.gco2e || a.latency_ms < b.latency_ms;
    no_worse && better
}

fn mark_pareto(options: &mut [RouteOption]) {
    let flags: Vec<bool> = options
        .iter()
        .map(|o| !options.iter().any(|other| dominates(other, o)))
        .collect();
    for (o, f) in options.iter_mut().zip(flags) {
        o.pareto_optimal = f;
    }
}

/// Every feasible option (residency and latency satisfied), each marked with `pareto_optimal`, sorted by
/// cost, then gCO2e, latency, region id and provider. Empty when nothing is feasible.
pub fn feasible_options(
    dataset: &Dataset,
    req: &RouteRequest,
) -> Result<Vec<RouteOption>, CarbonError> {
    let eval = evaluate(dataset, req)?;
    let mut options: Vec<RouteOption> = eval
        .in_residency
        .into_iter()
        .filter_map(|(o, ok)| ok.then_some(o))
        .collect();
    mark_pareto(&mut options);
    options.sort_by(cheapest_order);
    Ok(options)
}

fn cheapest_order(a: &RouteOption, b: &RouteOption) -> Ordering {
    a.cost_usd
        .total_cmp(&b.cost_usd)
        .then(a.gco2e.total_cmp(&b.gco2e))
        .then(a.latency_ms.cmp(&b.latency_ms))
        .then_with(|| a.region.cmp(&b.region))
        .then_with(|| a.provider.cmp(&b.provider))
}

fn greenest_order(a: &RouteOption, b: &RouteOption) -> Ordering {
    a.gco2e
        .total_cmp(&b.gco2e)
        .then(a.cost_usd.total_cmp(&b.cost_usd))
        .then(a.latency_ms.cmp(&b.latency_ms))
        .then_with(|| a.region.cmp(&b.region))
        .then_with(|| a.provider.cmp(&b.provider))
}

fn no_feasible_reason(dataset: &Dataset, req: &RouteRequest, eval: &Evaluation<'_>) -> String {
    let model = eval.model;
    let offered: Vec<&str> = model.offerings.iter().map(|o| o.region.as_str()).collect();
    if eval.in_residency.is_empty() {
        let residency = req.residency.as_deref().unwrap_or_default().join(", ");
        let allowed = eval
            .allowed_regions
            .as_deref()
            .unwrap_or_default()
            .join(", ");
        return format!(
            "`{}` has no offering within residency [{residency}] (regions allowed: {allowed}); \
             it is offered in: {}; widen residency or choose another model (models: {})",
            model.name,
            offered.join(", "),
            dataset.model_names().join(", ")
        );
    }
    let fastest = eval.in_residency.iter().map(|(o, _)| o).min_by(|a, b| {
        a.latency_ms
            .cmp(&b.latency_ms)
            .then_with(|| a.region.cmp(&b.region))
    });
    match (fastest, req.max_latency_ms) {
        (Some(f), Some(max)) => format!(
            "max_latency_ms is {max} but the fastest of the {} offering(s) of `{}`{}, {} ({}), \
             needs {} ms (base latency + network round trip); raise max_latency_ms to at least {}",
            eval.in_residency.len(),
            model.name,
            if req.residency.is_some() {
                " within residency"
            } else {
                ""
            },
            f.region,
            f.provider,
            f.latency_ms,
            f.latency_ms
        ),
        _ => format!("no offering of `{}` satisfies the constraints", model.name),
    }
}

fn normalise(value: f64, min: f64, max: f64) -> f64 {
    if max > min {
        (value - min) / (max - min)
    } else {
        0.0
    }
}

/// Routes one model call: filters by residency and latency, keeps the Pareto set over (cost, gCO2e,
/// latency), picks the option minimising `w × norm(gCO2e) + (1 − w) × norm(cost)` (min–max normalised over
/// the Pareto set; ties broken by latency, then region id, then provider), and explains the trade-off
/// against the cheapest feasible option.
pub fn route(dataset: &Dataset, req: &RouteRequest) -> Result<RouteDecision, CarbonError> {
    route_avoiding(dataset, req, &[])
}

/// [`route`] with some places taken out: each entry of `avoid` is a region id
/// (`aws:eu-west-1`) or a provider (`gcp`), e.g. what open incidents marked as degraded. The
/// decision lists what was avoided; when nothing else is feasible the error says so.
pub fn route_avoiding(
    dataset: &Dataset,
    req: &RouteRequest,
    avoid: &[String],
) -> Result<RouteDecision, CarbonError> {
    let eval = evaluate(dataset, req)?;
    let is_avoided = |o: &RouteOption| avoid.iter().any(|a| *a == o.region || *a == o.provider);
    let mut feasible: Vec<RouteOption> = eval
        .in_residency
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(o, _)| o.clone())
        .collect();
    let before_avoiding = feasible.len();
    feasible.retain(|o| !is_avoided(o));
    let mut avoided: Vec<String> = avoid
        .iter()
        .filter(|a| {
            eval.in_residency
                .iter()
                .any(|(o, _)| **a == o.region || **a == o.provider)
        })
        .cloned()
        .collect();
    avoided.sort();
    avoided.dedup();
    if feasible.is_empty() {
        let reason = if before_avoiding > 0 {
            format!(
                "every feasible option is in a place avoided by an open incident ({}); \
                 widen residency or latency, or resolve the incident",
                avoided.join(", ")
            )
        } else {
            no_feasible_reason(dataset, req, &eval)
        };
        return Err(CarbonError::NoFeasibleOption { reason });
    }
    mark_pareto(&mut feasible);
    let feasible_count = feasible.len();

    let cheapest = feasible
        .iter()
        .min_by(|a, b| cheapest_order(a, b))
        .cloned()
        .ok_or_else(|| CarbonError::NoFeasibleOption {
            reason: "no feasible option".into(),
        })?;
    let greenest = feasible
        .iter()
        .filter(|o| o.pareto_optimal)
        .min_by(|a, b| greenest_order(a, b))
        .cloned()
        .unwrap_or_else(|| cheapest.clone());

    let mut pareto: Vec<RouteOption> = feasible.into_iter().filter(|o| o.pareto_optimal).collect();
    let (cmin, cmax) = min_max(pareto.iter().map(|o| o.cost_usd));
    let (gmin, gmax) = min_max(pareto.iter().map(|o| o.gco2e));
    let w = eval.weight;
    let score = |o: &RouteOption| -> i64 {
        let s = w * normalise(o.gco2e, gmin, gmax) + (1.0 - w) * normalise(o.cost_usd, cmin, cmax);
        // Quantised so that scores equal up to rounding noise tie and fall through to latency.
        (s * 1e12).round() as i64
    };
    pareto.sort_by(|a, b| {
        score(a)
            .cmp(&score(b))
            .then(a.latency_ms.cmp(&b.latency_ms))
            .then_with(|| a.region.cmp(&b.region))
            .then_with(|| a.provider.cmp(&b.provider))
    });
    let choice = pareto
        .first()
        .cloned()
        .ok_or_else(|| CarbonError::NoFeasibleOption {
            reason: "the Pareto set is empty".into(),
        })?;

    let tradeoff = tradeoff(&choice, &cheapest, &greenest, feasible_count, pareto.len());
    let p = &dataset.provenance;
    Ok(RouteDecision {
        choice,
        alternatives: pareto,
        tradeoff,
        data: DataInfo {
            source: p.source.clone(),
            as_of: p.as_of.clone(),
            signal_type: p.signal_type.clone(),
            licence: p.licence.clone(),
        },
        feasible_count,
        avoided,
    })
}

fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

fn pct(delta: f64, base: f64) -> f64 {
    if base == 0.0 {
        0.0
    } else {
        delta / base * 100.0
    }
}

fn same_option(a: &RouteOption, b: &RouteOption) -> bool {
    a.region == b.region && a.provider == b.provider
}

fn tradeoff(
    choice: &RouteOption,
    cheapest: &RouteOption,
    greenest: &RouteOption,
    feasible: usize,
    pareto: usize,
) -> Tradeoff {
    let cost_delta_usd = choice.cost_usd - cheapest.cost_usd;
    let gco2e_delta = choice.gco2e - cheapest.gco2e;
    let cost_delta_pct = pct(cost_delta_usd, cheapest.cost_usd);
    let gco2e_delta_pct = pct(gco2e_delta, cheapest.gco2e);
    let latency_delta_ms = i64::from(choice.latency_ms) - i64::from(cheapest.latency_ms);

    let mut text = String::new();
    if same_option(choice, cheapest) {
        let _ = write!(
            text,
            "{} ({}) is the cheapest feasible option at {} and emits {} g CO2e at about {} ms",
            choice.region,
            choice.provider,
            fmt_usd(choice.cost_usd),
            fmt_g(choice.gco2e),
            choice.latency_ms
        );
        if greenest.gco2e < choice.gco2e && !same_option(greenest, choice) {
            let dg = greenest.gco2e - choice.gco2e;
            let dc = greenest.cost_usd - choice.cost_usd;
            let _ = write!(
                text,
                "; the lowest-carbon feasible option, {} ({}), would emit {} g ({}) less CO2e {}",
                greenest.region,
                greenest.provider,
                fmt_g(dg.abs()),
                fmt_pct(pct(dg, choice.gco2e)),
                cost_phrase(dc, pct(dc, choice.cost_usd), "for", "")
            );
        }
    } else {
        let _ = write!(
            text,
            "{} ({}) {} the cheapest feasible option ({} via {}) and {}",
            choice.region,
            choice.provider,
            cost_phrase(cost_delta_usd, cost_delta_pct, "costs", " than"),
            cheapest.region,
            cheapest.provider,
            emission_phrase(gco2e_delta, gco2e_delta_pct)
        );
        match latency_delta_ms.cmp(&0) {
            Ordering::Greater => {
                let _ = write!(text, ", and is {latency_delta_ms} ms slower");
            }
            Ordering::Less => {
                let _ = write!(text, ", and is {} ms faster", -latency_delta_ms);
            }
            Ordering::Equal => {}
        }
    }
    let _ = write!(
        text,
        ". {feasible} feasible option{}, {pareto} on the cost/carbon/latency Pareto front.",
        if feasible == 1 { "" } else { "s" }
    );

    Tradeoff {
        text,
        cheapest_region: cheapest.region.clone(),
        cheapest_provider: cheapest.provider.clone(),
        cost_delta_usd,
        cost_delta_pct,
        gco2e_delta,
        gco2e_delta_pct,
        latency_delta_ms,
    }
}

/// "costs $0.0012 (+4.1%) more than" / "costs the same as" / "for $0.001 (+3%) more".
fn cost_phrase(delta: f64, delta_pct: f64, verb: &str, than: &str) -> String {
    match delta.partial_cmp(&0.0) {
        Some(Ordering::Greater) => {
            format!(
                "{verb} {} ({}) more{than}",
                fmt_usd(delta),
                fmt_pct(delta_pct)
            )
        }
        Some(Ordering::Less) => {
            format!(
                "{verb} {} ({}) less{than}",
                fmt_usd(-delta),
                fmt_pct(delta_pct)
            )
        }
        _ if than.is_empty() => format!("{verb} the same price"),
        _ => format!("{verb} the same as"),
    }
}

fn emission_phrase(delta: f64, delta_pct: f64) -> String {
    match delta.partial_cmp(&0.0) {
        Some(Ordering::Greater) => format!(
            "emits {} g ({}) more CO2e",
            fmt_g(delta),
            fmt_pct(delta_pct)
        ),
        Some(Ordering::Less) => format!(
            "emits {} g ({}) less CO2e",
            fmt_g(-delta),
            fmt_pct(delta_pct)
        ),
        _ => "emits the same CO2e".to_string(),
    }
}

/// Decimals that show about two significant digits of a value below 1.
fn small_decimals(x: f64) -> usize {
    let d = (-x.log10()).floor() as i64 + 2;
    d.clamp(2, 12) as usize
}

fn fmt_usd(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 {
        "$0".to_string()
    } else if a >= 1.0 {
        format!("${a:.2}")
    } else {
        format!("${a:.prec$}", prec = small_decimals(a))
    }
}

fn fmt_g(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 {
        "0".to_string()
    } else if a >= 100.0 {
        format!("{a:.0}")
    } else if a >= 1.0 {
        format!("{a:.1}")
    } else {
        format!("{a:.prec$}", prec = small_decimals(a))
    }
}

/// Signed percentage with a typographic minus: "+4.1%", "−88%".
fn fmt_pct(p: f64) -> String {
    let sign = if p > 0.0 {
        "+"
    } else if p < 0.0 {
        "\u{2212}"
    } else {
        ""
    };
    let a = p.abs();
    if a < 10.0 {
        format!("{sign}{a:.1}%")
    } else {
        format!("{sign}{a:.0}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_money_grams_and_percentages() {
        assert_eq!(fmt_usd(0.0012), "$0.0012");
        assert_eq!(fmt_usd(0.00022), "$0.00022");
        assert_eq!(fmt_usd(-2.5), "$2.50");
        assert_eq!(fmt_usd(0.0), "$0");
        assert_eq!(fmt_g(3.24), "3.2");
        assert_eq!(fmt_g(0.052), "0.052");
        assert_eq!(fmt_g(123.4), "123");
        assert_eq!(fmt_pct(4.123), "+4.1%");
        assert_eq!(fmt_pct(-88.2), "\u{2212}88%");
        assert_eq!(fmt_pct(0.0), "0.0%");
    }

    #[test]
    fn dominance_is_strict() {
        let base = RouteOption {
            provider: "p".into(),
            region: "r".into(),
            location: "l".into(),
            cost_usd: 1.0,
            gco2e: 1.0,
            latency_ms: 10,
            energy_kwh: 1.0,
            grid_gco2e_per_kwh: 1.0,
            pue: 1.0,
            pareto_optimal: false,
        };
        assert!(!dominates(&base, &base));
        let better = RouteOption {
            latency_ms: 9,
            ..base.clone()
        };
        assert!(dominates(&better, &base));
        let mixed = RouteOption {
            latency_ms: 9,
            cost_usd: 2.0,
            ..base.clone()
        };
        assert!(!dominates(&mixed, &base) && !dominates(&base, &mixed));
    }
}
