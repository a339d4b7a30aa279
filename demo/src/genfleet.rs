//! The second fleet generator (`meshos demo --fleet random`): a fleet the healer has never seen.
//! Everything is drawn from the seed: 15–25 agents with their own names, a tool set (each agent
//! has a primary tool and a different, working fallback tool), model families with 1–3 versions
//! (newest first; the families are the ones the carbon router and the model registry know, the
//! versions are drawn), residency constraints under which the carbon router has at least two
//! eligible regions per agent, per-agent traffic rates, base latency, token counts and prices, and
//! the magnitude of every fault.
//!
//! Each fault's root entity must be told apart by the telemetry, without making it trivial: a
//! faulty tool or model has users on at least two models/tools and in at least two regions, a
//! degraded region hosts at least two models and two tools, and every other entity those agents
//! use also has healthy users. A leaking or overspending agent shares its tool, model and region
//! with healthy agents. The generator redraws the fleet (deterministically, from the same seed)
//! until that holds.
//!
//! Pure: the agents' home regions come from `meshos_carbon::route` over the embedded dataset, the
//! same answer `/v1/carbon/route` gives while no region is avoided.

use std::collections::{BTreeMap, BTreeSet};

use meshos_carbon::{Dataset, RouteRequest};
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::fleet::FaultKind;

/// Agents in a fleet.
pub const AGENTS: std::ops::RangeInclusive<usize> = 15..=25;
/// Tools in a fleet (one of them faces the web and can carry an injection campaign).
pub const TOOLS: std::ops::RangeInclusive<usize> = 4..=7;
/// Model families in a fleet.
pub const FAMILIES: std::ops::RangeInclusive<usize> = 3..=5;
/// Versions per model family.
pub const VERSIONS: std::ops::RangeInclusive<usize> = 1..=3;
/// Actions per second per agent.
pub const RATE: std::ops::Range<f64> = 0.5..3.0;
/// Base latency of an agent's calls, ms (before per-call noise).
pub const BASE_LATENCY_MS: std::ops::Range<f64> = 200.0..1200.0;
/// Mean prompt tokens per call, and mean completion tokens.
pub const INPUT_TOKENS: std::ops::Range<f64> = 300.0..3000.0;
pub const OUTPUT_TOKENS: std::ops::Range<f64> = 80.0..800.0;
/// Coefficient of variation of the per-call token counts (log-normal).
pub const TOKEN_CV: std::ops::Range<f64> = 0.15..0.45;
/// Baseline error probability of an agent's calls.
pub const BASE_ERROR: std::ops::Range<f64> = 0.002..0.02;

/// Fault magnitudes (drawn once per seed).
pub const TOOL_OUTAGE_LATENCY_ADD_MS: std::ops::Range<f64> = 1500.0..6000.0;
pub const TOOL_OUTAGE_ERROR: std::ops::Range<f64> = 0.3..0.9;
pub const REGION_LATENCY_MULT: std::ops::Range<f64> = 2.5..8.0;
pub const REGION_ERROR: std::ops::Range<f64> = 0.02..0.2;
pub const MODEL_LATENCY_MULT: std::ops::Range<f64> = 1.5..3.5;
pub const MODEL_ERROR: std::ops::Range<f64> = 0.15..0.5;
pub const COST_MULT: std::ops::Range<f64> = 15.0..120.0;
/// Share of the leaking agent's replies that skip `policy_check` (the bug under test).
pub const LEAK_SHARE: std::ops::Range<f64> = 0.3..0.8;
/// Share of the web tool's fetches that carry an injected page, and the share of those the
/// detector knows (the rest get through and show as violations).
pub const INJECTION_SHARE: std::ops::Range<f64> = 0.3..0.8;
pub const INJECTION_DETECTED: std::ops::Range<f64> = 0.1..0.5;

const ADJECTIVES: [&str; 24] = [
    "amber", "brisk", "cobalt", "dapper", "ember", "fable", "gentle", "hazel", "indigo", "jolly",
    "keen", "lucid", "mellow", "nimble", "onyx", "plucky", "quiet", "rustic", "sable", "tidy",
    "umber", "vivid", "witty", "zesty",
];
const NOUNS: [&str; 22] = [
    "otter", "heron", "lynx", "marten", "puffin", "wren", "badger", "ibex", "koala", "lemur",
    "newt", "ocelot", "panda", "quail", "raven", "stoat", "tapir", "urchin", "vole", "walrus",
    "yak", "zebu",
];
const TOOL_NAMES: [&str; 22] = [
    "atlas", "beacon", "courier", "dossier", "ferret", "gazette", "harbor", "inkwell", "journal",
    "keystone", "lantern", "mosaic", "notary", "oracle", "prism", "quarry", "relay", "sextant",
    "tally", "umbra", "vault", "wicket",
];
const WEB_TOOLS: [&str; 5] = [
    "webreader",
    "crawler",
    "pagefetch",
    "sitescout",
    "linkhound",
];
const VERBS: [&str; 10] = [
    "lookup",
    "summarize",
    "draft",
    "classify",
    "sync",
    "enrich",
    "triage",
    "annotate",
    "reconcile",
    "tag",
];

/// Model families both the carbon router and the shipped model registry know, with the shape of
/// their version ids: `(registry family, dashed dates?)`.
const MODEL_FAMILIES: [(&str, bool); 7] = [
    ("gpt-4o", true),
    ("gpt-4o-mini", true),
    ("claude-sonnet-4", false),
    ("claude-haiku-4-5", false),
    ("mistral-large", false),
    ("llama-3.1-70b", false),
    ("llama-3.1-8b", false),
];

/// Residency constraints an agent may have (jurisdiction tags the router knows).
const RESIDENCIES: [&[&str]; 7] = [
    &["EU"],
    &["US"],
    &["EEA"],
    &["AMERICAS"],
    &["APAC"],
    &["EUROPE"],
    &["EU", "US"],
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelFamily {
    pub family: String,
    /// Full model ids (`family-version`), newest first.
    pub versions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RandomAgent {
    pub id: String,
    pub tool: String,
    pub fallback_tool: String,
    pub verb: String,
    pub family: String,
    /// Model ids this agent may use, newest first: a pin of the first moves it to the next.
    pub models: Vec<String>,
    pub residency: Vec<String>,
    pub carbon_weight: f64,
    /// Where the router sends it while nothing is avoided, and where it goes when that is.
    pub home_region: String,
    pub alt_region: String,
    pub rate_per_sec: f64,
    pub base_latency_ms: f64,
    pub input_tokens: f64,
    pub output_tokens: f64,
    pub token_cv: f64,
    pub price_in_per_m: f64,
    pub price_out_per_m: f64,
    pub base_error: f64,
}

impl RandomAgent {
    pub fn model(&self) -> &str {
        &self.models[0]
    }
}

/// How hard a fault hits (only the fields of its kind are used).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Magnitude {
    pub latency_add_ms: f64,
    pub latency_mult: f64,
    pub error_rate: f64,
    pub cost_mult: f64,
    /// Leak: share of replies that skip the check. Injection: share of fetches injected.
    pub share: f64,
    /// Injection: share of injected pages the detector knows.
    pub detected_share: f64,
}

/// A fault this fleet is set up for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedFault {
    #[serde(serialize_with = "kind_name")]
    pub kind: FaultKind,
    /// `kind:name` of the root entity, as the healer names root causes.
    pub root_cause: String,
    /// The agents the fault touches at injection (the root's users, or the agent itself).
    pub agents: Vec<String>,
    pub magnitude: Magnitude,
    /// Only a human step can fix it (a leak that bypasses `policy_check` needs the quarantine).
    pub human_fix_expected: bool,
}

fn kind_name<S: serde::Serializer>(k: &FaultKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RandomFleet {
    pub seed: u64,
    /// Draws it took to get a fleet where every fault is distinguishable.
    pub attempts: u32,
    pub agents: Vec<RandomAgent>,
    pub tools: Vec<String>,
    pub web_tool: String,
    pub families: Vec<ModelFamily>,
    /// One per fault kind, in injection order.
    pub faults: Vec<PlannedFault>,
}

/// The three entity dimensions an agent's call runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    Tool,
    Model,
    Region,
}

impl Dim {
    const ALL: [Dim; 3] = [Dim::Tool, Dim::Model, Dim::Region];

    fn of(self, a: &RandomAgent) -> &str {
        match self {
            Dim::Tool => &a.tool,
            Dim::Model => a.model(),
            Dim::Region => &a.home_region,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Dim::Tool => "tool",
            Dim::Model => "model",
            Dim::Region => "region",
        }
    }
}

impl RandomFleet {
    pub fn agent(&self, id: &str) -> Option<&RandomAgent> {
        self.agents.iter().find(|a| a.id == id)
    }

    /// Agents whose baseline `dim` is `name`.
    pub fn users(&self, dim: Dim, name: &str) -> BTreeSet<String> {
        self.agents
            .iter()
            .filter(|a| dim.of(a) == name)
            .map(|a| a.id.clone())
            .collect()
    }

    /// Why the telemetry could not tell this fault's root apart from the other entities its
    /// agents use (`Ok` when it can).
    pub fn distinguishable(&self, f: &PlannedFault) -> Result<(), String> {
        let (kind, name) = f
            .root_cause
            .split_once(':')
            .ok_or_else(|| format!("root cause {} is not kind:name", f.root_cause))?;
        let affected: Vec<&RandomAgent> = f
            .agents
            .iter()
            .map(|id| self.agent(id).ok_or_else(|| format!("unknown agent {id}")))
            .collect::<Result<_, _>>()?;
        if kind == "agent" {
            let [a] = affected.as_slice() else {
                return Err(format!(
                    "{}: an agent fault touches one agent",
                    f.root_cause
                ));
            };
            if a.id != name {
                return Err(format!("{}: touches {}", f.root_cause, a.id));
            }
            for dim in Dim::ALL {
                if self.users(dim, dim.of(a)).len() < 2 {
                    return Err(format!(
                        "{}: its {} {} has no other user",
                        f.root_cause,
                        dim.prefix(),
                        dim.of(a)
                    ));
                }
            }
            return Ok(());
        }
        let dim = Dim::ALL
            .into_iter()
            .find(|d| d.prefix() == kind)
            .ok_or_else(|| format!("unknown root kind {kind}"))?;
        let users = self.users(dim, name);
        let set: BTreeSet<String> = f.agents.iter().cloned().collect();
        if users != set {
            return Err(format!(
                "{}: the fault's agents are not the root's users",
                f.root_cause
            ));
        }
        let min = if dim == Dim::Region { 3 } else { 2 };
        if users.len() < min {
            return Err(format!(
                "{}: {} user(s), need {min}",
                f.root_cause,
                users.len()
            ));
        }
        for other in Dim::ALL.into_iter().filter(|d| *d != dim) {
            let values: BTreeSet<&str> = affected.iter().map(|a| other.of(a)).collect();
            if values.len() < 2 {
                return Err(format!(
                    "{}: every user shares one {} ({})",
                    f.root_cause,
                    other.prefix(),
                    values.into_iter().next().unwrap_or("?")
                ));
            }
            for v in values {
                if self.users(other, v).is_subset(&users) {
                    return Err(format!(
                        "{}: {} {v} has no healthy user",
                        f.root_cause,
                        other.prefix()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A log-normal draw with mean `mean` and coefficient of variation `cv`.
pub fn lognormal(rng: &mut impl Rng, mean: f64, cv: f64) -> f64 {
    let sigma2 = (1.0 + cv * cv).ln();
    let mu = mean.ln() - sigma2 / 2.0;
    mu.exp() * (sigma2.sqrt() * std_normal(rng)).exp()
}

/// A standard normal draw (Box–Muller).
pub fn std_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn round(v: f64, step: f64) -> f64 {
    (v / step).round() * step
}

/// Draws version ids for a family: distinct 2025 dates, newest first.
fn versions(rng: &mut StdRng, family: &str, dashed: bool, n: usize) -> Vec<String> {
    let mut dates = BTreeSet::new();
    while dates.len() < n {
        dates.insert((rng.gen_range(1..=12u32), rng.gen_range(1..=28u32)));
    }
    dates
        .into_iter()
        .rev()
        .map(|(m, d)| {
            if dashed {
                format!("{family}-2025-{m:02}-{d:02}")
            } else {
                format!("{family}-2025{m:02}{d:02}")
            }
        })
        .collect()
}

/// The router's first and second choice for an agent, if it has two.
fn home_and_alt(
    dataset: &Dataset,
    family: &str,
    residency: &[&str],
    weight: f64,
    input: f64,
    output: f64,
) -> Option<(String, String)> {
    let mut req = RouteRequest::new(family, input.round() as u64, output.round() as u64);
    req.residency = Some(residency.iter().map(|s| s.to_string()).collect());
    req.carbon_weight = Some(weight);
    let first = meshos_carbon::route(dataset, &req).ok()?;
    let home = first.choice.region.clone();
    let second = meshos_carbon::route_avoiding(dataset, &req, std::slice::from_ref(&home)).ok()?;
    Some((home, second.choice.region))
}

/// Agents, tools, the web tool and model families of one draw.
type Drawn = (Vec<RandomAgent>, Vec<String>, String, Vec<ModelFamily>);

/// One draw of a fleet (without faults), or `None` when some agent has no eligible second region.
fn draw_agents(rng: &mut StdRng, dataset: &Dataset, n_agents: usize) -> Option<Drawn> {
    let n_tools = rng.gen_range(TOOLS);
    let mut tools: Vec<String> = TOOL_NAMES
        .choose_multiple(rng, n_tools - 1)
        .map(|s| s.to_string())
        .collect();
    let web_tool = WEB_TOOLS.choose(rng)?.to_string();
    tools.push(web_tool.clone());
    tools.shuffle(rng);
    let n_families = rng.gen_range(FAMILIES);
    let mut families: Vec<ModelFamily> = MODEL_FAMILIES
        .choose_multiple(rng, n_families)
        .enumerate()
        .map(|(i, (family, dashed))| {
            // The first family has at least two versions, so a model can regress and be rolled back.
            let n = if i == 0 {
                rng.gen_range(2..=*VERSIONS.end())
            } else {
                rng.gen_range(VERSIONS)
            };
            ModelFamily {
                family: family.to_string(),
                versions: versions(rng, family, *dashed, n),
            }
        })
        .collect();
    families.sort_by(|a, b| a.family.cmp(&b.family));
    let mut names = BTreeSet::new();
    while names.len() < n_agents {
        names.insert(format!(
            "{}-{}",
            ADJECTIVES.choose(rng)?,
            NOUNS.choose(rng)?
        ));
    }
    let mut names: Vec<String> = names.into_iter().collect();
    names.shuffle(rng);
    let mut agents = Vec::new();
    for id in names {
        let fam = families.choose(rng)?;
        // Most agents run the family's newest version; some stayed on an older one.
        let start = if fam.versions.len() > 1 && rng.gen_bool(0.2) {
            1
        } else {
            0
        };
        let tool = tools.choose(rng)?.clone();
        let fallback_tool = tools.iter().filter(|t| **t != tool).collect::<Vec<_>>();
        let fallback_tool = (*fallback_tool.choose(rng)?).clone();
        let carbon_weight = round(rng.gen_range(0.0..=1.0), 0.05);
        let input_tokens = round(rng.gen_range(INPUT_TOKENS), 10.0);
        let output_tokens = round(rng.gen_range(OUTPUT_TOKENS), 10.0);
        let mut residencies: Vec<&[&str]> = RESIDENCIES.to_vec();
        residencies.shuffle(rng);
        let (residency, (home, alt)) = residencies.into_iter().find_map(|r| {
            home_and_alt(
                dataset,
                &fam.family,
                r,
                carbon_weight,
                input_tokens,
                output_tokens,
            )
            .map(|x| (r, x))
        })?;
        agents.push(RandomAgent {
            id,
            verb: VERBS.choose(rng)?.to_string(),
            tool,
            fallback_tool,
            family: fam.family.clone(),
            models: fam.versions[start..].to_vec(),
            residency: residency.iter().map(|s| s.to_string()).collect(),
            carbon_weight,
            home_region: home,
            alt_region: alt,
            rate_per_sec: round(rng.gen_range(RATE), 0.05),
            base_latency_ms: round(rng.gen_range(BASE_LATENCY_MS), 1.0),
            input_tokens,
            output_tokens,
            token_cv: round(rng.gen_range(TOKEN_CV), 0.01),
            price_in_per_m: round(rng.gen_range(0.2..15.0), 0.01),
            price_out_per_m: round(rng.gen_range(0.6..60.0), 0.01),
            base_error: round(rng.gen_range(BASE_ERROR), 0.001),
        });
    }
    agents.sort_by(|a, b| a.id.cmp(&b.id));
    Some((agents, tools, web_tool, families))
}

fn magnitude(rng: &mut StdRng, kind: FaultKind) -> Magnitude {
    let mut m = Magnitude {
        latency_add_ms: 0.0,
        latency_mult: 1.0,
        error_rate: 0.0,
        cost_mult: 1.0,
        share: 0.0,
        detected_share: 0.0,
    };
    match kind {
        FaultKind::ToolOutage => {
            m.latency_add_ms = round(rng.gen_range(TOOL_OUTAGE_LATENCY_ADD_MS), 10.0);
            m.error_rate = round(rng.gen_range(TOOL_OUTAGE_ERROR), 0.01);
        }
        FaultKind::RegionLatency => {
            m.latency_mult = round(rng.gen_range(REGION_LATENCY_MULT), 0.1);
            m.error_rate = round(rng.gen_range(REGION_ERROR), 0.01);
        }
        FaultKind::ModelRegression => {
            m.latency_mult = round(rng.gen_range(MODEL_LATENCY_MULT), 0.1);
            m.error_rate = round(rng.gen_range(MODEL_ERROR), 0.01);
        }
        FaultKind::CostSpike => m.cost_mult = round(rng.gen_range(COST_MULT), 1.0),
        FaultKind::PiiLeak => m.share = round(rng.gen_range(LEAK_SHARE), 0.01),
        FaultKind::InjectionCampaign => {
            m.share = round(rng.gen_range(INJECTION_SHARE), 0.01);
            m.detected_share = round(rng.gen_range(INJECTION_DETECTED), 0.01);
        }
    }
    m
}

/// Picks a root for `kind` in this fleet among the distinguishable ones (`None` if there is none).
fn pick_fault(
    rng: &mut StdRng,
    fleet: &RandomFleet,
    kind: FaultKind,
    taken: &BTreeSet<String>,
) -> Option<PlannedFault> {
    let mut candidates: Vec<(String, Vec<String>)> = match kind {
        FaultKind::ToolOutage => fleet
            .tools
            .iter()
            .filter(|t| **t != fleet.web_tool)
            .map(|t| (format!("tool:{t}"), Vec::new()))
            .collect(),
        FaultKind::InjectionCampaign => vec![(format!("tool:{}", fleet.web_tool), Vec::new())],
        FaultKind::ModelRegression => fleet
            .families
            .iter()
            .filter(|f| f.versions.len() > 1)
            .map(|f| (format!("model:{}", f.versions[0]), Vec::new()))
            .collect(),
        FaultKind::RegionLatency => {
            let regions: BTreeSet<&str> = fleet
                .agents
                .iter()
                .map(|a| a.home_region.as_str())
                .collect();
            regions
                .into_iter()
                .map(|r| (format!("region:{r}"), Vec::new()))
                .collect()
        }
        FaultKind::PiiLeak | FaultKind::CostSpike => fleet
            .agents
            .iter()
            .filter(|a| !taken.contains(&format!("agent:{}", a.id)))
            .map(|a| (format!("agent:{}", a.id), vec![a.id.clone()]))
            .collect(),
    };
    candidates.shuffle(rng);
    let mag = magnitude(rng, kind);
    candidates.into_iter().find_map(|(root, agents)| {
        let agents = if agents.is_empty() {
            let (k, name) = root.split_once(':')?;
            let dim = Dim::ALL.into_iter().find(|d| d.prefix() == k)?;
            fleet.users(dim, name).into_iter().collect()
        } else {
            agents
        };
        let f = PlannedFault {
            kind,
            root_cause: root,
            agents,
            magnitude: mag,
            human_fix_expected: kind == FaultKind::PiiLeak,
        };
        fleet.distinguishable(&f).ok().map(|()| f)
    })
}

/// The fleet of `seed`, set up for `kinds` (injected in a seed-shuffled order). `agents`
/// overrides the drawn fleet size.
pub fn generate(
    seed: u64,
    kinds: &[FaultKind],
    agents: Option<usize>,
) -> Result<RandomFleet, String> {
    let dataset = Dataset::embedded().map_err(|e| format!("carbon dataset: {e}"))?;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6d65_7368_6f73_2131);
    for attempt in 1..=500u32 {
        let n = agents.unwrap_or_else(|| rng.gen_range(AGENTS));
        let Some((agents, tools, web_tool, families)) = draw_agents(&mut rng, &dataset, n) else {
            continue;
        };
        let mut fleet = RandomFleet {
            seed,
            attempts: attempt,
            agents,
            tools,
            web_tool,
            families,
            faults: Vec::new(),
        };
        let mut order = kinds.to_vec();
        order.shuffle(&mut rng);
        let mut taken = BTreeSet::new();
        let mut faults = Vec::new();
        for kind in order {
            match pick_fault(&mut rng, &fleet, kind, &taken) {
                Some(f) => {
                    taken.insert(f.root_cause.clone());
                    faults.push(f);
                }
                None => break,
            }
        }
        if faults.len() == kinds.len() {
            fleet.faults = faults;
            return Ok(fleet);
        }
    }
    Err(format!(
        "seed {seed}: no fleet in 500 draws where every fault is distinguishable"
    ))
}

/// The shipped policy bundle with this fleet's model versions approved (the registry only knows
/// the shipped versions) and agent and tenant budgets a busy simulated agent does not exhaust:
/// it makes in minutes the calls a real agent makes in a day, so the shipped daily limits ($50
/// per agent) would stop a cost spike after a few calls (and a fast agent within a control run)
/// before the healer sees it. Everything else is the default bundle.
pub fn policy_files(fleet: &RandomFleet) -> Result<Vec<(String, String)>, String> {
    let bundle = meshos_policy::Bundle::embedded_default()
        .map_err(|e| format!("the embedded policy bundle: {e}"))?;
    let mut out = Vec::new();
    for f in bundle.files() {
        let text = match f.name.as_str() {
            // Written anew below, over the files as changed here.
            meshos_policy::MANIFEST_FILE => continue,
            "models.toml" => {
                let mut doc: toml::Table =
                    toml::from_str(&f.text).map_err(|e| format!("models.toml: {e}"))?;
                let models = doc
                    .get_mut("models")
                    .and_then(toml::Value::as_table_mut)
                    .ok_or("models.toml has no [models]")?;
                for fam in &fleet.families {
                    let entry = models.entry(fam.family.clone()).or_insert_with(|| {
                        toml::Value::Table(toml::Table::from_iter([(
                            "provider".to_string(),
                            toml::Value::String("demo".into()),
                        )]))
                    });
                    let table = entry
                        .as_table_mut()
                        .ok_or_else(|| format!("models.{} is not a table", fam.family))?;
                    let mut approved: Vec<toml::Value> = table
                        .get("approved")
                        .and_then(toml::Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    for v in &fam.versions {
                        let version = &v[fam.family.len() + 1..];
                        approved.push(toml::Value::String(version.to_string()));
                    }
                    table.insert("approved".into(), toml::Value::Array(approved));
                }
                toml::to_string(&doc).map_err(|e| format!("models.toml: {e}"))?
            }
            "budgets.toml" => {
                let mut doc: toml::Table =
                    toml::from_str(&f.text).map_err(|e| format!("budgets.toml: {e}"))?;
                if let Some(t) = doc
                    .get_mut("agent_default")
                    .and_then(toml::Value::as_table_mut)
                {
                    t.insert("tokens_per_day".into(), toml::Value::Integer(1_000_000_000));
                    t.insert("cost_usd_per_day".into(), toml::Value::Float(1_000_000.0));
                }
                if let Some(t) = doc.get_mut("tenant").and_then(toml::Value::as_table_mut) {
                    t.insert(
                        "tokens_per_month".into(),
                        toml::Value::Integer(100_000_000_000),
                    );
                    t.insert(
                        "cost_usd_per_month".into(),
                        toml::Value::Float(100_000_000.0),
                    );
                }
                toml::to_string(&doc).map_err(|e| format!("budgets.toml: {e}"))?
            }
            _ => f.text.clone(),
        };
        out.push((f.name.clone(), text));
    }
    let files: Vec<meshos_policy::BundleFile> = out
        .iter()
        .map(|(name, text)| meshos_policy::BundleFile {
            name: name.clone(),
            text: text.clone(),
        })
        .collect();
    out.push((
        meshos_policy::MANIFEST_FILE.to_string(),
        meshos_policy::manifest_text(&files),
    ));
    Ok(out)
}

/// A short description of the fleet for the report: agents per tool, model and region.
pub fn summary(fleet: &RandomFleet) -> serde_json::Value {
    let count = |dim: Dim| -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for a in &fleet.agents {
            *m.entry(dim.of(a).to_string()).or_default() += 1;
        }
        m
    };
    serde_json::json!({
        "agents": fleet.agents.len(),
        "attempts": fleet.attempts,
        "tools": count(Dim::Tool),
        "models": count(Dim::Model),
        "regions": count(Dim::Region),
        "web_tool": fleet.web_tool,
        "families": fleet.families,
        "faults": fleet.faults,
        "fleet": fleet.agents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(seed: u64) -> RandomFleet {
        generate(seed, &FaultKind::ALL, None).expect("a fleet")
    }

    #[test]
    fn the_same_seed_draws_the_same_fleet_and_another_seed_another() {
        assert_eq!(all(7), all(7));
        let (a, b) = (all(7), all(8));
        assert_ne!(
            a.agents.iter().map(|x| &x.id).collect::<Vec<_>>(),
            b.agents.iter().map(|x| &x.id).collect::<Vec<_>>()
        );
    }

    #[test]
    fn every_fault_of_every_seed_has_a_distinguishable_root() {
        for seed in 0..40 {
            let fleet = all(seed);
            assert_eq!(fleet.faults.len(), FaultKind::ALL.len(), "seed {seed}");
            let kinds: BTreeSet<&str> = fleet.faults.iter().map(|f| f.kind.as_str()).collect();
            assert_eq!(
                kinds.len(),
                FaultKind::ALL.len(),
                "seed {seed}: a kind twice"
            );
            for f in &fleet.faults {
                fleet
                    .distinguishable(f)
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            }
            let leaker = fleet.faults.iter().find(|f| f.kind == FaultKind::PiiLeak);
            let spender = fleet.faults.iter().find(|f| f.kind == FaultKind::CostSpike);
            assert_ne!(
                leaker.map(|f| &f.root_cause),
                spender.map(|f| &f.root_cause),
                "seed {seed}: one agent both leaks and overspends"
            );
        }
    }

    #[test]
    fn a_fault_whose_users_share_one_region_is_not_distinguishable() {
        let mut fleet = all(3);
        let f = fleet
            .faults
            .iter()
            .find(|f| f.kind == FaultKind::ToolOutage)
            .cloned()
            .expect("a tool outage");
        for a in fleet.agents.iter_mut().filter(|a| f.agents.contains(&a.id)) {
            a.home_region = "aws:us-east-1".into();
        }
        let err = fleet
            .distinguishable(&f)
            .expect_err("confounded with a region");
        assert!(err.contains("region"), "{err}");
        // An overspending agent that is the only user of its model could as well be a model fault.
        let mut fleet = all(3);
        let spike = fleet
            .faults
            .iter()
            .find(|f| f.kind == FaultKind::CostSpike)
            .cloned()
            .expect("a cost spike");
        let agent = fleet
            .agents
            .iter_mut()
            .find(|a| a.id == spike.agents[0])
            .expect("the spender");
        agent.models = vec!["gpt-4o-2099-01-01".into()];
        let err = fleet
            .distinguishable(&spike)
            .expect_err("no other user of its model");
        assert!(err.contains("model"), "{err}");
    }

    #[test]
    fn agents_have_a_different_fallback_tool_and_rates_within_the_documented_ranges() {
        let dataset = Dataset::embedded().expect("dataset");
        for seed in 0..20 {
            let fleet = all(seed);
            assert!(AGENTS.contains(&fleet.agents.len()), "seed {seed}");
            assert!(TOOLS.contains(&fleet.tools.len()), "seed {seed}");
            assert!(FAMILIES.contains(&fleet.families.len()), "seed {seed}");
            let ids: BTreeSet<&str> = fleet.agents.iter().map(|a| a.id.as_str()).collect();
            assert_eq!(
                ids.len(),
                fleet.agents.len(),
                "seed {seed}: duplicate names"
            );
            for fam in &fleet.families {
                assert!(VERSIONS.contains(&fam.versions.len()));
                let mut sorted = fam.versions.clone();
                sorted.sort();
                sorted.reverse();
                assert_eq!(sorted, fam.versions, "versions newest first");
            }
            for a in &fleet.agents {
                assert_ne!(a.tool, a.fallback_tool, "seed {seed}: {}", a.id);
                assert!(fleet.tools.contains(&a.fallback_tool));
                assert!(RATE.contains(&a.rate_per_sec) || a.rate_per_sec == RATE.end);
                assert!((BASE_LATENCY_MS.start..=BASE_LATENCY_MS.end).contains(&a.base_latency_ms));
                assert!((BASE_ERROR.start..=BASE_ERROR.end).contains(&a.base_error));
                assert_ne!(a.home_region, a.alt_region, "a second eligible region");
                assert!(dataset.region(&a.home_region).is_some());
                assert!(dataset.region(&a.alt_region).is_some());
                assert!(!a.models.is_empty());
            }
            for f in &fleet.faults {
                let m = f.magnitude;
                let within = |r: &std::ops::Range<f64>, v: f64| (r.start..=r.end).contains(&v);
                let ok = match f.kind {
                    FaultKind::ToolOutage => {
                        within(&TOOL_OUTAGE_LATENCY_ADD_MS, m.latency_add_ms)
                            && within(&TOOL_OUTAGE_ERROR, m.error_rate)
                    }
                    FaultKind::RegionLatency => {
                        within(&REGION_LATENCY_MULT, m.latency_mult)
                            && within(&REGION_ERROR, m.error_rate)
                    }
                    FaultKind::ModelRegression => {
                        within(&MODEL_LATENCY_MULT, m.latency_mult)
                            && within(&MODEL_ERROR, m.error_rate)
                    }
                    FaultKind::CostSpike => within(&COST_MULT, m.cost_mult),
                    FaultKind::PiiLeak => within(&LEAK_SHARE, m.share),
                    FaultKind::InjectionCampaign => {
                        within(&INJECTION_SHARE, m.share)
                            && within(&INJECTION_DETECTED, m.detected_share)
                    }
                };
                assert!(ok, "seed {seed}: {} magnitude {m:?}", f.kind.as_str());
                if f.kind == FaultKind::ModelRegression {
                    for id in &f.agents {
                        let a = fleet.agent(id).expect("agent");
                        assert!(a.models.len() >= 2, "{id} has no version to fall back to");
                    }
                }
            }
        }
    }

    fn files_budgets(fleet: &RandomFleet) -> toml::Table {
        let files = policy_files(fleet).expect("files");
        let (_, text) = files
            .iter()
            .find(|(n, _)| n == "budgets.toml")
            .expect("budgets.toml");
        let doc: toml::Table = toml::from_str(text).expect("budgets.toml parses");
        doc.get("agent_default")
            .and_then(toml::Value::as_table)
            .cloned()
            .expect("[agent_default]")
    }

    #[test]
    fn the_custom_bundle_approves_every_drawn_version_and_still_loads() {
        let fleet = all(5);
        let files = policy_files(&fleet).expect("files");
        let bundle = meshos_policy::Bundle::from_files(
            files
                .into_iter()
                .map(|(name, text)| meshos_policy::BundleFile { name, text })
                .collect(),
        )
        .expect("the patched bundle loads");
        let budgets = files_budgets(&fleet);
        assert_eq!(
            budgets
                .get("cost_usd_per_day")
                .and_then(toml::Value::as_float),
            Some(1_000_000.0)
        );
        for fam in &fleet.families {
            for v in &fam.versions {
                let r = bundle.models().resolve(Some(v));
                assert_eq!(
                    r.status,
                    meshos_policy::ModelStatus::Approved,
                    "{v} resolves to {r:?}"
                );
            }
        }
    }
}
