//! The fleet model: agents, tools, models, providers and regions with "depends on" edges, built
//! from configuration and from relations observed in telemetry, and expanded into the metric-level
//! [`CausalGraph`] the ranking methods work on.
//!
//! **Entities** are written `kind:name` (`agent:support-bot`, `tool:crm`, `model:gpt-4o`,
//! `provider:openai`, `region:aws:eu-west-1`); the kind ends at the first colon, so names may
//! contain colons.
//!
//! **Observed relations** (one [`Observation`] per telemetry event: the agent and, when known, the
//! tool, model, provider and region of the call):
//! - the agent depends on the tool, the model and the region it ran in;
//! - the model depends on its provider;
//! - the tool and the model depend on the region the call ran in: a degraded region must be
//!   upstream of everything that ran there, or the diagnosis could never name it;
//! - a tool that is itself an agent (`agent:`-prefixed tool name, or the name of an agent already
//!   known) makes the caller depend on that agent. Agents calling each other give cycles; they are
//!   kept and reported by [`FleetTopology::cycles`], and every ranking method handles them.
//!
//! **Metrics per kind** ([`metrics_of`]): agents and models have latency, error_rate,
//! violation_rate and cost; tools latency, error_rate and violation_rate; providers and regions
//! latency and error_rate. Metric nodes are named `{entity}.{metric}`.
//!
//! **Metric edges**: when X depends on Y, `Y.m → X.m` for every metric m both have (a slow tool
//! makes its callers slow; a model that leaks makes its agents leak); inside one entity,
//! `latency → error_rate` (timeouts turn slowness into errors).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use petgraph::graph::{DiGraph, NodeIndex};
use serde::Deserialize;

use crate::{CausalError, CausalGraph, MetricSeries};

/// What an entity of the fleet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKind {
    Agent,
    Tool,
    Model,
    Provider,
    Region,
}

impl EntityKind {
    pub const ALL: [EntityKind; 5] = [
        EntityKind::Agent,
        EntityKind::Tool,
        EntityKind::Model,
        EntityKind::Provider,
        EntityKind::Region,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Agent => "agent",
            EntityKind::Tool => "tool",
            EntityKind::Model => "model",
            EntityKind::Provider => "provider",
            EntityKind::Region => "region",
        }
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The metrics an entity of this kind carries, in a fixed order.
pub fn metrics_of(kind: EntityKind) -> &'static [&'static str] {
    match kind {
        EntityKind::Agent | EntityKind::Model => {
            &["latency", "error_rate", "violation_rate", "cost"]
        }
        EntityKind::Tool => &["latency", "error_rate", "violation_rate"],
        EntityKind::Provider | EntityKind::Region => &["latency", "error_rate"],
    }
}

/// One entity, `kind:name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entity {
    pub kind: EntityKind,
    pub name: String,
}

impl Entity {
    pub fn new(kind: EntityKind, name: impl Into<String>) -> Entity {
        Entity {
            kind,
            name: name.into(),
        }
    }

    /// The metric node name `{kind}:{name}.{metric}`.
    pub fn metric(&self, metric: &str) -> String {
        format!("{self}.{metric}")
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

impl FromStr for Entity {
    type Err = String;
    fn from_str(s: &str) -> Result<Entity, String> {
        let (kind, name) = s.split_once(':').ok_or_else(|| {
            format!("`{s}` is not `kind:name` (kinds: agent, tool, model, provider, region)")
        })?;
        let kind = EntityKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .ok_or_else(|| {
                format!("unknown kind `{kind}` in `{s}`; expected agent, tool, model, provider or region")
            })?;
        if name.trim().is_empty() {
            return Err(format!("`{s}` has an empty name"));
        }
        Ok(Entity::new(kind, name))
    }
}

/// Where a dependency edge came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EdgeOrigin {
    /// Declared in the topology file.
    Configured,
    /// Seen in telemetry `count` times, most recently at `last_seen_ms`.
    Observed { count: u64, last_seen_ms: i64 },
}

/// One telemetry event's relations: which agent called which tool and model, from which provider,
/// in which region. Plain strings as events carry them (no `kind:` prefix).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    pub agent: String,
    pub tool: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub region: Option<String>,
}

impl Observation {
    /// Every entity this observation touches (its metrics count toward each).
    fn entities(&self, topology: &FleetTopology) -> Vec<Entity> {
        let mut out = vec![Entity::new(EntityKind::Agent, &self.agent)];
        if let Some(tool) = self.tool.as_deref().filter(|t| !t.is_empty()) {
            out.push(topology.tool_entity(tool));
        }
        if let Some(m) = self.model.as_deref().filter(|m| !m.is_empty()) {
            out.push(Entity::new(EntityKind::Model, m));
        }
        if let Some(p) = self.provider.as_deref().filter(|p| !p.is_empty()) {
            out.push(Entity::new(EntityKind::Provider, p));
        }
        if let Some(r) = self.region.as_deref().filter(|r| !r.is_empty()) {
            out.push(Entity::new(EntityKind::Region, r));
        }
        out
    }
}

/// The provider of a model call: the `gen_ai.provider.name` or `gen_ai.system` attribute, else a
/// `provider/model` or `provider:model` prefix of the model name.
pub fn provider_of(
    model: Option<&str>,
    attributes: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Option<String> {
    let from_attrs = attributes.and_then(|a| {
        ["gen_ai.provider.name", "gen_ai.system"]
            .iter()
            .find_map(|k| a.get(*k).and_then(|v| v.as_str()))
            .filter(|s| !s.is_empty())
    });
    if let Some(p) = from_attrs {
        return Some(p.to_string());
    }
    let model = model?;
    let (prefix, rest) = model.split_once(['/', ':'])?;
    (!prefix.is_empty() && !rest.is_empty()).then(|| prefix.to_string())
}

/// The topology file: `{"entities":["kind:name",…], "depends_on":[["dependent","dependency"],…]}`.
/// The same shape deserialises from a TOML table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyFile {
    #[serde(default)]
    pub entities: Vec<String>,
    #[serde(default)]
    pub depends_on: Vec<(String, String)>,
}

/// Agents, tools, models, providers and regions with "depends on" edges (dependent → dependency).
#[derive(Debug, Clone, Default)]
pub struct FleetTopology {
    graph: DiGraph<Entity, EdgeOrigin>,
    index: HashMap<Entity, NodeIndex>,
}

impl FleetTopology {
    pub fn new() -> FleetTopology {
        FleetTopology::default()
    }

    /// Parses the topology file (JSON). Errors name `entities[i]` or `depends_on[i]`.
    pub fn from_json(text: &str) -> Result<FleetTopology, CausalError> {
        let file: TopologyFile =
            serde_json::from_str(text).map_err(|e| CausalError::Topology {
                location: "file".into(),
                message: format!(
                    "{e} (expected {{\"entities\":[\"kind:name\",…],\"depends_on\":[[dependent,dependency],…]}})"
                ),
            })?;
        FleetTopology::from_file(&file)
    }

    /// Builds the configured part of a topology.
    pub fn from_file(file: &TopologyFile) -> Result<FleetTopology, CausalError> {
        let mut t = FleetTopology::new();
        for (i, e) in file.entities.iter().enumerate() {
            let entity: Entity = e.parse().map_err(|m| CausalError::Topology {
                location: format!("entities[{i}]"),
                message: m,
            })?;
            t.node(entity);
        }
        for (i, (a, b)) in file.depends_on.iter().enumerate() {
            let parse = |s: &str| {
                s.parse::<Entity>().map_err(|m| CausalError::Topology {
                    location: format!("depends_on[{i}]"),
                    message: m,
                })
            };
            let (dependent, dependency) = (parse(a)?, parse(b)?);
            if dependent == dependency {
                return Err(CausalError::Topology {
                    location: format!("depends_on[{i}]"),
                    message: format!("`{a}` cannot depend on itself"),
                });
            }
            t.depend(dependent, dependency, EdgeOrigin::Configured);
        }
        Ok(t)
    }

    fn node(&mut self, entity: Entity) -> NodeIndex {
        if let Some(&ix) = self.index.get(&entity) {
            return ix;
        }
        let ix = self.graph.add_node(entity.clone());
        self.index.insert(entity, ix);
        ix
    }

    fn depend(&mut self, dependent: Entity, dependency: Entity, origin: EdgeOrigin) {
        let a = self.node(dependent);
        let b = self.node(dependency);
        match self.graph.find_edge(a, b) {
            None => {
                self.graph.add_edge(a, b, origin);
            }
            Some(e) => {
                if let (
                    Some(EdgeOrigin::Observed {
                        count,
                        last_seen_ms,
                    }),
                    EdgeOrigin::Observed {
                        count: more,
                        last_seen_ms: seen,
                    },
                ) = (self.graph.edge_weight_mut(e), origin)
                {
                    *count += more;
                    *last_seen_ms = (*last_seen_ms).max(seen);
                }
            }
        }
    }

    /// The entity a tool name denotes: an agent when prefixed `agent:` or when an agent of that
    /// name is known, else a tool.
    fn tool_entity(&self, tool: &str) -> Entity {
        if let Some(agent) = tool.strip_prefix("agent:") {
            return Entity::new(EntityKind::Agent, agent);
        }
        let as_agent = Entity::new(EntityKind::Agent, tool);
        if self.index.contains_key(&as_agent) {
            as_agent
        } else {
            Entity::new(EntityKind::Tool, tool)
        }
    }

    /// Adds the relations one telemetry event shows (see the module doc for the rules).
    pub fn observe(&mut self, obs: &Observation, at_ms: i64) {
        self.observe_repeated(obs, 1, at_ms);
    }

    /// [`FleetTopology::observe`] for `count` events with the same relations, the newest at
    /// `last_seen_ms` (what a `GROUP BY` over stored events gives).
    pub fn observe_repeated(&mut self, obs: &Observation, count: u64, last_seen_ms: i64) {
        if obs.agent.is_empty() || count == 0 {
            return;
        }
        let origin = EdgeOrigin::Observed {
            count,
            last_seen_ms,
        };
        let agent = Entity::new(EntityKind::Agent, &obs.agent);
        self.node(agent.clone());
        let region = obs
            .region
            .as_deref()
            .filter(|r| !r.is_empty())
            .map(|r| Entity::new(EntityKind::Region, r));
        let tool = obs
            .tool
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(|t| self.tool_entity(t));
        let model = obs
            .model
            .as_deref()
            .filter(|m| !m.is_empty())
            .map(|m| Entity::new(EntityKind::Model, m));
        if let Some(tool) = tool.as_ref().filter(|t| **t != agent) {
            self.depend(agent.clone(), tool.clone(), origin);
        }
        if let Some(model) = &model {
            self.depend(agent.clone(), model.clone(), origin);
            if let Some(p) = obs.provider.as_deref().filter(|p| !p.is_empty()) {
                self.depend(model.clone(), Entity::new(EntityKind::Provider, p), origin);
            }
        }
        if let Some(region) = region {
            self.depend(agent.clone(), region.clone(), origin);
            for upstream in [&tool, &model].into_iter().flatten() {
                // An agent used as a tool runs where it runs, not where its caller does.
                if upstream.kind != EntityKind::Agent {
                    self.depend(upstream.clone(), region.clone(), origin);
                }
            }
        }
    }

    /// Entities, in the order they were first seen.
    pub fn entities(&self) -> impl Iterator<Item = &Entity> + '_ {
        self.graph.node_weights()
    }

    /// `(dependent, dependency, origin)` for every edge.
    pub fn dependencies(&self) -> impl Iterator<Item = (&Entity, &Entity, EdgeOrigin)> + '_ {
        self.graph.edge_indices().filter_map(|e| {
            let (a, b) = self.graph.edge_endpoints(e)?;
            Some((&self.graph[a], &self.graph[b], *self.graph.edge_weight(e)?))
        })
    }

    /// Groups of entities that depend on each other in a cycle (mutual calls), each sorted.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = petgraph::algo::tarjan_scc(&self.graph)
            .into_iter()
            .filter(|scc| scc.len() > 1)
            .map(|scc| {
                let mut names: Vec<String> = scc
                    .into_iter()
                    .map(|ix| self.graph[ix].to_string())
                    .collect();
                names.sort();
                names
            })
            .collect();
        out.sort();
        out
    }

    /// The metric-level causal graph: `{entity}.{metric}` nodes for every entity and every metric
    /// of its kind, `Y.m → X.m` when X depends on Y, and `latency → error_rate` inside an entity.
    pub fn causal_graph(&self) -> Result<CausalGraph, CausalError> {
        let mut nodes = Vec::new();
        let mut edges = Vec::new();
        for entity in self.graph.node_weights() {
            let metrics = metrics_of(entity.kind);
            nodes.extend(metrics.iter().map(|m| entity.metric(m)));
            if metrics.contains(&"latency") && metrics.contains(&"error_rate") {
                edges.push((entity.metric("latency"), entity.metric("error_rate")));
            }
        }
        for (dependent, dependency, _) in self.dependencies() {
            let theirs = metrics_of(dependency.kind);
            for m in metrics_of(dependent.kind) {
                if theirs.contains(m) {
                    edges.push((dependency.metric(m), dependent.metric(m)));
                }
            }
        }
        if nodes.is_empty() {
            return Err(CausalError::Topology {
                location: "entities".into(),
                message: "the topology is empty; configure entities or observe telemetry first"
                    .into(),
            });
        }
        CausalGraph::new(nodes, edges)
    }
}

/// One telemetry record for [`SeriesBuilder`].
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryPoint {
    pub at_ms: i64,
    pub observation: Observation,
    /// `ok`, `error` or `violation`.
    pub outcome: PointOutcome,
    pub latency_ms: Option<f64>,
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointOutcome {
    Ok,
    Error,
    Violation,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    calls: f64,
    latency_sum: f64,
    latency_n: f64,
    errors: f64,
    violations: f64,
    cost: f64,
}

/// Buckets telemetry into a [`MetricSeries`] whose columns are the metric nodes of a topology's
/// causal graph: per bucket and entity, latency = mean latency of the calls touching it,
/// error_rate / violation_rate = share of those calls with that outcome, cost = sum. A record
/// counts toward every entity it touches. A bucket with no call for an entity carries the
/// entity's previous value forward (no call is not "zero latency"); before an entity's first
/// call, and for metrics never observed, the value is 0.
#[derive(Debug, Clone)]
pub struct SeriesBuilder {
    bucket_ms: i64,
    cells: BTreeMap<i64, HashMap<Entity, Bucket>>,
}

impl SeriesBuilder {
    /// `bucket_seconds` ≥ 1.
    pub fn new(bucket_seconds: u32) -> SeriesBuilder {
        SeriesBuilder {
            bucket_ms: i64::from(bucket_seconds.max(1)) * 1000,
            cells: BTreeMap::new(),
        }
    }

    pub fn push(&mut self, topology: &FleetTopology, point: &TelemetryPoint) {
        let bucket = point.at_ms.div_euclid(self.bucket_ms);
        let row = self.cells.entry(bucket).or_default();
        for entity in point.observation.entities(topology) {
            let b = row.entry(entity).or_default();
            b.calls += 1.0;
            if let Some(l) = point.latency_ms.filter(|l| l.is_finite()) {
                b.latency_sum += l;
                b.latency_n += 1.0;
            }
            match point.outcome {
                PointOutcome::Ok => {}
                PointOutcome::Error => b.errors += 1.0,
                PointOutcome::Violation => b.violations += 1.0,
            }
            if let Some(c) = point.cost_usd.filter(|c| c.is_finite()) {
                b.cost += c;
            }
        }
    }

    /// The series over every bucket from the first to the last seen (timestamps in unix seconds,
    /// the start of each bucket), one column per node of `graph` (built from `topology`).
    ///
    /// Regions and providers have no telemetry of their own: every call that ran there is also a
    /// call of some tool or model, so a plain aggregate would move whenever any one of them moves
    /// and, being upstream in the graph, would take the blame for it. Their series is instead the
    /// median, bucket by bucket, of the services that run on them (the tools and models depending
    /// on a region; the models of a provider): one failing service does not move it, a degradation
    /// of the whole region does. Without such services the plain aggregate is used.
    pub fn build(
        &self,
        topology: &FleetTopology,
        graph: &CausalGraph,
    ) -> Result<MetricSeries, CausalError> {
        let (Some(&first), Some(&last)) = (self.cells.keys().next(), self.cells.keys().next_back())
        else {
            return Err(CausalError::Series {
                column: "timestamp".into(),
                message: "no telemetry in the window".into(),
            });
        };
        let timestamps: Vec<i64> = (first..=last).map(|b| b * self.bucket_ms / 1000).collect();
        let mut columns = Vec::new();
        for node in graph.node_names() {
            let (entity, metric) = split_node(node)?;
            let services = infrastructure_services(topology, &entity);
            let col = if services.is_empty() {
                self.direct_column(&entity, metric, first, last)
            } else {
                let cols: Vec<Vec<f64>> = services
                    .iter()
                    .map(|e| self.direct_column(e, metric, first, last))
                    .collect();
                (0..timestamps.len())
                    .map(|i| {
                        let mut at: Vec<f64> = cols.iter().map(|c| c[i]).collect();
                        at.sort_by(f64::total_cmp);
                        let n = at.len();
                        if n % 2 == 1 {
                            at[n / 2]
                        } else {
                            (at[n / 2 - 1] + at[n / 2]) / 2.0
                        }
                    })
                    .collect()
            };
            columns.push((node.to_string(), col));
        }
        Ok(MetricSeries {
            timestamps,
            columns,
        })
    }

    /// One entity's own aggregate per bucket, carried forward over buckets without calls.
    fn direct_column(&self, entity: &Entity, metric: &str, first: i64, last: i64) -> Vec<f64> {
        let mut last_value = 0.0;
        (first..=last)
            .map(|b| {
                let cell = self.cells.get(&b).and_then(|row| row.get(entity));
                if let Some(c) = cell.filter(|c| c.calls > 0.0) {
                    let v = match metric {
                        "latency" if c.latency_n > 0.0 => Some(c.latency_sum / c.latency_n),
                        "error_rate" => Some(c.errors / c.calls),
                        "violation_rate" => Some(c.violations / c.calls),
                        "cost" => Some(c.cost),
                        _ => None,
                    };
                    if let Some(v) = v {
                        last_value = v;
                    }
                }
                last_value
            })
            .collect()
    }
}

fn split_node(node: &str) -> Result<(Entity, &str), CausalError> {
    let unknown = || CausalError::UnknownNode { node: node.into() };
    let (entity, metric) = node.rsplit_once('.').ok_or_else(unknown)?;
    let entity: Entity = entity.parse().map_err(|_| unknown())?;
    Ok((entity, metric))
}

/// The services whose median stands for a region's or provider's metrics (see
/// [`SeriesBuilder::build`]); empty for other kinds.
fn infrastructure_services(topology: &FleetTopology, entity: &Entity) -> Vec<Entity> {
    let serves = |k: EntityKind| match entity.kind {
        EntityKind::Region => matches!(k, EntityKind::Tool | EntityKind::Model),
        EntityKind::Provider => k == EntityKind::Model,
        _ => false,
    };
    let mut out: Vec<Entity> = topology
        .dependencies()
        .filter(|(dependent, dependency, _)| *dependency == entity && serves(dependent.kind))
        .map(|(dependent, _, _)| dependent.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}
