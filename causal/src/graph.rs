//! The causal graph: metric nodes and cause → effect edges over a petgraph `DiGraph`.

use std::collections::HashMap;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Deserialize;

use crate::CausalError;

/// A directed graph of metric nodes, edges pointing from cause to effect.
///
/// Cycles are allowed (agents that call each other give mutual edges); every method here and every
/// ranking method is defined on cyclic graphs. Self-loops are rejected (a metric cannot be its own
/// parent in a regression) and duplicate edges are kept once.
#[derive(Debug, Clone)]
pub struct CausalGraph {
    graph: DiGraph<String, ()>,
    index: HashMap<String, NodeIndex>,
}

/// The graph file format: `{"nodes":[name...],"edges":[[cause,effect]...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GraphFile {
    nodes: Vec<String>,
    #[serde(default)]
    edges: Vec<(String, String)>,
}

impl CausalGraph {
    /// Parses the graph file format `{"nodes":[name...],"edges":[[cause,effect]...]}`.
    /// Syntax errors carry serde's line and column; semantic errors name the offending
    /// `nodes[i]` or `edges[i]` entry.
    pub fn from_json(text: &str) -> Result<CausalGraph, CausalError> {
        let file: GraphFile = serde_json::from_str(text).map_err(|e| CausalError::GraphJson {
            message: e.to_string(),
        })?;
        CausalGraph::new(file.nodes, file.edges)
    }

    /// Builds a graph from node names and `(cause, effect)` pairs.
    pub fn new(
        nodes: Vec<String>,
        edges: Vec<(String, String)>,
    ) -> Result<CausalGraph, CausalError> {
        if nodes.is_empty() {
            return Err(CausalError::Graph {
                location: "nodes".into(),
                message: "the graph has no nodes; give at least one metric name".into(),
            });
        }
        let mut graph = DiGraph::with_capacity(nodes.len(), edges.len());
        let mut index = HashMap::with_capacity(nodes.len());
        for (i, name) in nodes.into_iter().enumerate() {
            if name.trim().is_empty() {
                return Err(CausalError::Graph {
                    location: format!("nodes[{i}]"),
                    message: "empty node name".into(),
                });
            }
            if index.contains_key(&name) {
                return Err(CausalError::Graph {
                    location: format!("nodes[{i}]"),
                    message: format!("duplicate node `{name}`"),
                });
            }
            let ix = graph.add_node(name.clone());
            index.insert(name, ix);
        }
        for (i, (cause, effect)) in edges.into_iter().enumerate() {
            let lookup = |side: &str, name: &str| {
                index.get(name).copied().ok_or_else(|| CausalError::Graph {
                    location: format!("edges[{i}]"),
                    message: format!("{side} `{name}` is not in `nodes`"),
                })
            };
            let c = lookup("cause", &cause)?;
            let e = lookup("effect", &effect)?;
            if c == e {
                return Err(CausalError::Graph {
                    location: format!("edges[{i}]"),
                    message: format!("self-loop on `{cause}`; a metric cannot cause itself"),
                });
            }
            if graph.find_edge(c, e).is_none() {
                graph.add_edge(c, e, ());
            }
        }
        Ok(CausalGraph { graph, index })
    }

    /// Node names in the order they were given.
    pub fn node_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.graph.node_weights().map(String::as_str)
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    /// Number of (distinct) edges.
    pub fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// `(cause, effect)` for every edge, in insertion order.
    pub fn edges(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.graph.edge_indices().filter_map(|e| {
            let (a, b) = self.graph.edge_endpoints(e)?;
            Some((self.graph[a].as_str(), self.graph[b].as_str()))
        })
    }

    /// The graph file format `{"nodes":[name...],"edges":[[cause,effect]...]}`, which
    /// [`CausalGraph::from_json`] reads back.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "nodes": self.node_names().collect::<Vec<_>>(),
            "edges": self.edges().map(|(a, b)| [a, b]).collect::<Vec<_>>(),
        })
    }

    /// Direct causes of `node`, in node order.
    pub fn parents(&self, node: &str) -> Result<Vec<&str>, CausalError> {
        self.neighbours(node, Direction::Incoming)
    }

    /// Direct effects of `node`, in node order.
    pub fn children(&self, node: &str) -> Result<Vec<&str>, CausalError> {
        self.neighbours(node, Direction::Outgoing)
    }

    /// Strongly connected components with more than one node (the cycles), each in node order;
    /// the ranking methods handle them, this is for reporting.
    pub fn cycles(&self) -> Vec<Vec<&str>> {
        let mut out: Vec<Vec<&str>> = petgraph::algo::tarjan_scc(&self.graph)
            .into_iter()
            .filter(|scc| scc.len() > 1)
            .map(|mut scc| {
                scc.sort_unstable();
                scc.into_iter().map(|ix| self.graph[ix].as_str()).collect()
            })
            .collect();
        out.sort();
        out
    }

    fn neighbours(&self, node: &str, dir: Direction) -> Result<Vec<&str>, CausalError> {
        let ix = self
            .index
            .get(node)
            .ok_or_else(|| CausalError::UnknownNode {
                node: node.to_string(),
            })?;
        let mut ixs: Vec<NodeIndex> = self.graph.neighbors_directed(*ix, dir).collect();
        ixs.sort_unstable();
        Ok(ixs.into_iter().map(|i| self.graph[i].as_str()).collect())
    }

    /// Parent indices per node (indices are positions in [`CausalGraph::node_names`]), sorted.
    pub(crate) fn parent_lists(&self) -> Vec<Vec<usize>> {
        self.graph
            .node_indices()
            .map(|ix| {
                let mut v: Vec<usize> = self
                    .graph
                    .neighbors_directed(ix, Direction::Incoming)
                    .map(|n| n.index())
                    .collect();
                v.sort_unstable();
                v
            })
            .collect()
    }
}
