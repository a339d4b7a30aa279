//! Mesh OS causal root-cause diagnosis.
//!
//! Owns:
//! - the causal graph ([`CausalGraph`]): metric nodes (agent/tool/model/provider/region latency,
//!   error rate, violation rate, cost…) and cause → effect edges over a petgraph `DiGraph`, loaded
//!   from the graph file format `{"nodes":[name...],"edges":[[cause,effect]...]}`; cycles (mutual
//!   calls) are allowed and handled by every method;
//! - the fleet model ([`FleetTopology`]): agents, tools, models, providers and regions with
//!   "depends on" edges from a topology file and from relations observed in telemetry, expanded
//!   into the metric-level causal graph; [`SeriesBuilder`] buckets telemetry into the matching
//!   metric series (module `topology`);
//! - metric series ([`MetricSeries`]) read from CSV (`timestamp` column in unix seconds plus one
//!   numeric column per node), with documented gap filling;
//! - change-point detection ([`detect_anomaly_start`]) for when the caller gives no anomaly start;
//! - the ranking methods ([`rank`] with a [`Method`]): BARO-style robust change scoring,
//!   CIRCA-style regression-on-parents hypothesis testing, personalised PageRank over the anomaly
//!   subgraph, and an ensemble built for faults that propagate and amplify downstream. Each returns
//!   every graph node as a [`Candidate`] with its [`Evidence`], best first.
//!
//! Must not: do I/O (callers pass file contents as text), read any ground truth, or panic on input
//! from outside the process. Everything is plain data in, plain data out.
//!
//! Window convention: rows with `timestamp < anomaly_start` are the baseline, rows with
//! `timestamp >= anomaly_start` the anomalous window.

mod changepoint;
mod graph;
mod methods;
mod series;
mod stats;
mod topology;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

pub use changepoint::detect_anomaly_start;
pub use graph::CausalGraph;
pub use methods::rank;
pub use series::MetricSeries;
pub use topology::{
    EdgeOrigin, Entity, EntityKind, FleetTopology, Observation, PointOutcome, SeriesBuilder,
    TelemetryPoint, TopologyFile, metrics_of, provider_of,
};

/// Fewest baseline rows a ranking accepts: the regression needs a few points beyond its
/// parameters and the quantiles need something to interpolate.
pub const MIN_BASELINE_ROWS: usize = 5;

/// Errors of this crate. Every message names the field, line, column or node at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CausalError {
    /// The graph file is not the expected JSON shape.
    #[error(
        "graph JSON: {message} (expected {{\"nodes\":[name...],\"edges\":[[cause,effect]...]}})"
    )]
    GraphJson { message: String },
    /// The graph is well-formed JSON but a node or edge is wrong.
    #[error("graph {location}: {message}")]
    Graph { location: String, message: String },
    /// The fleet topology file or an entity id is wrong.
    #[error("topology {location}: {message}")]
    Topology { location: String, message: String },
    /// A node name that is not in the graph.
    #[error("node `{node}` is not in the graph")]
    UnknownNode { node: String },
    /// The metrics CSV is malformed at a line (1-based).
    #[error("metrics CSV line {line}: {message}")]
    Csv { line: usize, message: String },
    /// A metric column is unusable as data.
    #[error("metric column `{column}`: {message}")]
    Series { column: String, message: String },
    /// Graph nodes with no metric column of the same name.
    #[error(
        "graph nodes without a metrics column: {}; every graph node needs a column of the same name",
        nodes.join(", ")
    )]
    MissingColumns { nodes: Vec<String> },
    /// The anomaly start leaves too little data on one side.
    #[error("anomaly start {start}: {message}")]
    Window { start: i64, message: String },
    /// No anomaly start was given and none could be detected.
    #[error(
        "no anomaly start given and no change point found ({message}); pass the anomaly start explicitly"
    )]
    NoChangePoint { message: String },
    /// An unknown method name.
    #[error("unknown method `{0}`; expected one of baro, circa, pagerank, ensemble")]
    UnknownMethod(String),
}

/// A ranking method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Robust change scoring: max |x − baseline median| / robust σ over the window. Graph-free.
    Baro,
    /// A mechanism fitted on the parents over the baseline (piecewise linear in each parent);
    /// score = the change test on its residuals (how far the window departs from what the
    /// parents explain).
    Circa,
    /// Personalised PageRank from effects toward causes over the anomalous subgraph.
    PageRank,
    /// The PageRank walk gated by CIRCA's residuals: a node keeps the walk's mass in proportion
    /// to how much of its movement its parents leave unexplained; nodes whose own residual change
    /// is significant rank above those their parents explain; see [`rank`].
    Ensemble,
}

impl Method {
    /// All methods, in a stable order.
    pub const ALL: [Method; 4] = [
        Method::Baro,
        Method::Circa,
        Method::PageRank,
        Method::Ensemble,
    ];

    /// The name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Baro => "baro",
            Method::Circa => "circa",
            Method::PageRank => "pagerank",
            Method::Ensemble => "ensemble",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = CausalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| CausalError::UnknownMethod(s.to_string()))
    }
}

/// One ranked candidate root cause.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The graph node (= metric column).
    pub node: String,
    /// The method's score; higher is more likely the root cause. Scales differ between methods.
    pub score: f64,
    pub evidence: Evidence,
}

/// What moved and by how much, against the baseline. Every method fills the graph-free fields;
/// the residual fields are filled by the methods that regress on parents (circa, ensemble).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// The metric that was scored (the node's column).
    pub metric: String,
    /// Rows in the baseline and in the anomalous window.
    pub baseline_rows: usize,
    pub window_rows: usize,
    /// The timestamp that split baseline from window.
    pub anomaly_start: i64,
    pub baseline_median: f64,
    pub baseline_mean: f64,
    /// Interquartile range of the baseline.
    pub baseline_iqr: f64,
    /// The window value farthest from the baseline median.
    pub anomalous_value: f64,
    /// Median of the window.
    pub window_median: f64,
    /// window median − baseline median, in the metric's units.
    pub shift: f64,
    /// BARO score: max over the window of |x − baseline median| / (IQR / 1.349).
    pub robust_z: f64,
    /// Marginal change test of the window against the baseline (no parents), as a z-value: the
    /// larger of a median-shift z and a log-σ-ratio z (robust σ = 1.4826·MAD), both corrected
    /// for the baseline's lag-1 autocorrelation. See `docs/causal.md`.
    pub marginal_z: f64,
    /// Two-sided p-value of the marginal test (Bonferroni over its two parts).
    pub marginal_p: f64,
    /// The scale part of the marginal test alone (signed: > 0 means the window is noisier).
    pub marginal_scale_z: f64,
    /// The same test on the node's residuals from one mechanism fitted on its parents over the
    /// baseline and the window together (additive, piecewise linear in each parent).
    pub residual_z: Option<f64>,
    /// Median residual shift over the window, in units of the baseline residual's robust σ.
    pub residual_shift: Option<f64>,
    /// p-value of the residual test.
    pub residual_p: Option<f64>,
    /// The scale part of the residual test alone (signed).
    pub residual_scale_z: Option<f64>,
    /// Parents whose own marginal test is significant (they moved too).
    pub anomalous_parents: Vec<String>,
}
