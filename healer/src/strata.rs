//! Diagnosis that separates what moves together.
//!
//! A model regression, the region its agents run in, the tool they call and the agents
//! themselves all co-move in one agent's telemetry. The fleet separates them for free: the same
//! model in other regions, other models in the same region, the same tool from other agents. So
//! each entity the symptomatic agent's work touched (its agent, tools, models, regions) is a
//! candidate, judged on every event of the window that touched it, from any agent:
//!
//! - **moved**: the share of its events that are anomalous (for the symptom's metric, against
//!   each agent's own pre-fault baseline) rose clearly above its own baseline share;
//! - **not contradicted**: split its events by each other dimension (agents, tools, models,
//!   regions); no stratum with enough events stayed unaffected while the rest moved. A region
//!   whose other models are fine did not cause a model's regression;
//! - **dominance**: of two candidates that pass, the one whose events *outside* the other still
//!   moved explains more (a model used by four agents over one of those agents). A candidate
//!   that dominates every other is the root cause with confidence; a tie (an agent that is its
//!   model's only user) is an ambiguous diagnosis, which gets no automatic action.
//!
//! Pure: events in, evidence out. Every number the decision used is in the result.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::alarm::{EffectFloors, is_work, median, two_proportion_greater};
use meshos_types::{EventRecord, Outcome};

/// Fewest events a stratum needs to contradict a candidate.
const MIN_STRATUM: usize = 8;
/// Fewest events a candidate needs to be judged at all.
const MIN_CANDIDATE: usize = 5;
/// Significance of "moved" and "did not move": strict, because a fleet has many strata.
const ALPHA: f64 = 0.001;
/// The least rise in anomalous share that counts as moved.
const MIN_RISE: f64 = 0.10;
/// Robust z beyond which one value is anomalous against its agent's baseline.
const Z_ANOMALOUS: f64 = 3.0;

/// One slice of a candidate's events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stratum {
    /// `agent:…`, `tool:…`, `model:…` or `region:…`.
    pub entity: String,
    pub events: usize,
    pub anomalous: usize,
}

/// What the fleet's telemetry says about one candidate root cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateEvidence {
    pub entity: String,
    /// Its events since the change, and how many were anomalous.
    pub events: usize,
    pub anomalous: usize,
    /// Its events before the change, and the anomalous share then.
    pub baseline_events: usize,
    pub baseline_share: f64,
    /// One-sided p-value of "its anomalous share rose".
    pub p_value: f64,
    pub moved: bool,
    /// Strata of its events that did not move while the rest did.
    pub unaffected: Vec<Stratum>,
    /// Strata that moved (agents among them are the ones it explains).
    pub affected: Vec<Stratum>,
}

impl CandidateEvidence {
    pub fn share(&self) -> f64 {
        self.anomalous as f64 / self.events.max(1) as f64
    }

    /// Moved and not contradicted by unaffected users.
    pub fn consistent(&self) -> bool {
        self.moved && self.unaffected.is_empty()
    }
}

/// The stratified diagnosis of one symptom.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stratified {
    /// The blamed entity; `None` when no candidate moved.
    pub root: Option<String>,
    /// Whether the root dominates every other consistent candidate.
    pub confident: bool,
    /// Agents whose work on the root moved.
    pub affected_agents: Vec<String>,
    pub candidates: Vec<CandidateEvidence>,
    pub note: String,
}

/// The entities an event touched, as `kind:name`.
pub(crate) fn entities_of(e: &EventRecord) -> Vec<String> {
    let mut out = vec![format!("agent:{}", e.agent_id)];
    if let Some(t) = &e.tool {
        out.push(format!("tool:{t}"));
    }
    if let Some(m) = &e.model {
        out.push(format!("model:{m}"));
    }
    if let Some(r) = &e.region {
        out.push(format!("region:{r}"));
    }
    out
}

fn kind_of(entity: &str) -> &str {
    entity.split_once(':').map_or(entity, |(k, _)| k)
}

/// Per-agent robust baselines of a continuous metric on the log scale: (median, scale).
struct Baselines {
    per_agent: BTreeMap<String, (f64, f64)>,
    pooled: Option<(f64, f64)>,
}

fn robust(values: &[f64]) -> Option<(f64, f64)> {
    if values.len() < 10 {
        return None;
    }
    let m = median(values);
    let dev: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    // A floor of 5 % (on the log scale) keeps a near-constant metric from making every wiggle
    // anomalous.
    Some((m, (1.4826 * median(&dev)).max(0.05)))
}

fn log_value(metric: &str, e: &EventRecord) -> Option<f64> {
    let v = match metric {
        "latency" => e.latency_ms,
        "cost" => e.cost_usd,
        _ => None,
    }?;
    (v.is_finite() && v >= 0.0).then(|| (v + 1e-6).ln())
}

impl Baselines {
    fn new(metric: &str, before: &[&EventRecord]) -> Baselines {
        let mut by_agent: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut all = Vec::new();
        for e in before {
            if let Some(v) = log_value(metric, e) {
                by_agent.entry(e.agent_id.clone()).or_default().push(v);
                all.push(v);
            }
        }
        Baselines {
            per_agent: by_agent
                .into_iter()
                .filter_map(|(a, v)| robust(&v).map(|r| (a, r)))
                .collect(),
            pooled: robust(&all),
        }
    }
}

/// Whether an event is anomalous for `metric`; `None` when the event says nothing about it.
fn anomalous(
    metric: &str,
    e: &EventRecord,
    baselines: &Baselines,
    floors: &EffectFloors,
) -> Option<bool> {
    match metric {
        "error_rate" => Some(e.outcome == Outcome::Error),
        "violation_rate" => Some(e.outcome == Outcome::Violation),
        "latency" | "cost" => {
            let v = log_value(metric, e)?;
            let (m, s) = baselines
                .per_agent
                .get(&e.agent_id)
                .copied()
                .or(baselines.pooled)?;
            let floor = if metric == "latency" {
                floors.latency_ratio
            } else {
                floors.cost_ratio
            };
            Some((v - m) / s > Z_ANOMALOUS && v - m >= floor.ln())
        }
        _ => None,
    }
}

/// Counts of (events, anomalous) per entity.
#[derive(Default, Clone, Copy)]
struct Tally {
    n: usize,
    k: usize,
}

impl Tally {
    fn add(&mut self, hit: bool) {
        self.n += 1;
        self.k += usize::from(hit);
    }
    fn share(self) -> f64 {
        self.k as f64 / self.n.max(1) as f64
    }
}

fn rose(after: Tally, before_share: f64, before_n: usize) -> (bool, f64) {
    let k0 = (before_share * before_n as f64).round() as usize;
    let p = two_proportion_greater(after.k, after.n, k0, before_n.max(1));
    (
        after.n >= MIN_CANDIDATE && p < ALPHA && after.share() - before_share >= MIN_RISE,
        p,
    )
}

/// Diagnoses a symptom of `agent` in `metric` that began at `change_ms`, on the tenant's
/// events (any order). `events` must reach back before the change for the baselines.
pub(crate) fn diagnose_symptom(
    agent: &str,
    metric: &str,
    change_ms: i64,
    events: &[EventRecord],
    floors: &EffectFloors,
) -> Stratified {
    let before: Vec<&EventRecord> = events
        .iter()
        .filter(|e| e.created_at_ms < change_ms - 15_000 && is_work(e))
        .collect();
    let after: Vec<&EventRecord> = events
        .iter()
        .filter(|e| e.created_at_ms >= change_ms - 5_000 && is_work(e))
        .collect();
    let baselines = Baselines::new(metric, &before);
    let judged = |list: &[&EventRecord]| -> Vec<(Vec<String>, bool)> {
        list.iter()
            .filter_map(|e| anomalous(metric, e, &baselines, floors).map(|a| (entities_of(e), a)))
            .collect()
    };
    let before_j = judged(&before);
    let after_j = judged(&after);
    let candidates: BTreeSet<String> = after_j
        .iter()
        .filter(|(ents, _)| ents.first().is_some_and(|a| a == &format!("agent:{agent}")))
        .flat_map(|(ents, _)| ents.iter().cloned())
        .collect();
    if candidates.is_empty() {
        return Stratified {
            root: None,
            confident: false,
            affected_agents: vec![agent.to_string()],
            candidates: Vec::new(),
            note: format!("no {metric} telemetry from agent {agent} since the change"),
        };
    }
    let mut base_tally: BTreeMap<&str, Tally> = BTreeMap::new();
    for (ents, a) in &before_j {
        for e in ents {
            if candidates.contains(e) {
                base_tally.entry(e.as_str()).or_default().add(*a);
            }
        }
    }
    let mut evidence: Vec<CandidateEvidence> = candidates
        .iter()
        .map(|c| {
            let base = base_tally.get(c.as_str()).copied().unwrap_or_default();
            // Without a baseline of its own, a candidate is held to the fleet's usual share,
            // and without any history (a young fleet) to the rest of the fleet right now.
            let tally = |list: &mut dyn Iterator<Item = &(Vec<String>, bool)>| {
                list.fold(Tally::default(), |mut t, (_, a)| {
                    t.add(*a);
                    t
                })
            };
            let fleet_before = tally(&mut before_j.iter());
            let others_now = tally(&mut after_j.iter().filter(|(ents, _)| !ents.contains(c)));
            let (base_share, base_n) = if base.n >= MIN_STRATUM {
                (base.share(), base.n)
            } else if fleet_before.n >= MIN_STRATUM {
                (fleet_before.share(), fleet_before.n)
            } else {
                (others_now.share(), others_now.n)
            };
            let mine: Vec<&(Vec<String>, bool)> = after_j
                .iter()
                .filter(|(ents, _)| ents.contains(c))
                .collect();
            let total = mine.iter().fold(Tally::default(), |mut t, (_, a)| {
                t.add(*a);
                t
            });
            let (moved, p_value) = rose(total, base_share, base_n);
            let mut strata: BTreeMap<String, Tally> = BTreeMap::new();
            for (ents, a) in &mine {
                for e in ents.iter().filter(|e| kind_of(e) != kind_of(c)) {
                    strata.entry(e.clone()).or_default().add(*a);
                }
            }
            // Per dimension (agents, tools, models, regions), the strata that moved, pooled:
            // if this candidate were the root, every stratum with enough events would look
            // like them.
            let mut moved_pool: BTreeMap<String, Tally> = BTreeMap::new();
            for (entity, t) in &strata {
                if t.share() - base_share >= MIN_RISE {
                    let pool = moved_pool.entry(kind_of(entity).to_string()).or_default();
                    pool.n += t.n;
                    pool.k += t.k;
                }
            }
            let mut unaffected = Vec::new();
            let mut affected = Vec::new();
            for (entity, t) in strata {
                let pool = moved_pool
                    .get(kind_of(&entity))
                    .copied()
                    .unwrap_or_default();
                let stratum = Stratum {
                    entity,
                    events: t.n,
                    anomalous: t.k,
                };
                let excess = pool.share() - base_share;
                let quiet = moved
                    && t.n >= MIN_STRATUM
                    && pool.n >= MIN_STRATUM
                    && t.share() - base_share < 0.5 * excess
                    && two_proportion_greater(pool.k, pool.n, t.k, t.n) < ALPHA;
                if quiet {
                    unaffected.push(stratum);
                } else if t.share() - base_share >= MIN_RISE {
                    affected.push(stratum);
                }
            }
            CandidateEvidence {
                entity: c.clone(),
                events: total.n,
                anomalous: total.k,
                baseline_events: base.n,
                baseline_share: base_share,
                p_value,
                moved,
                unaffected,
                affected,
            }
        })
        .collect();
    // Largest explanation first, for the record.
    evidence.sort_by(|a, b| {
        (b.consistent(), b.anomalous, &a.entity).cmp(&(a.consistent(), a.anomalous, &b.entity))
    });
    let consistent: Vec<&CandidateEvidence> = evidence.iter().filter(|c| c.consistent()).collect();
    if consistent.is_empty() {
        let moved: Vec<&str> = evidence
            .iter()
            .filter(|c| c.moved)
            .map(|c| c.entity.as_str())
            .collect();
        return Stratified {
            root: None,
            confident: false,
            affected_agents: vec![agent.to_string()],
            note: if moved.is_empty() {
                format!("no entity agent {agent} depends on moved in {metric}")
            } else {
                format!(
                    "every entity that moved in {metric} ({}) is contradicted by unaffected users",
                    moved.join(", ")
                )
            },
            candidates: evidence,
        };
    }
    // Dominance: `a` explains events outside `b` that moved, and `b` explains none outside `a`.
    let outside = |a: &str, b: &str| -> bool {
        let t = after_j
            .iter()
            .filter(|(ents, _)| ents.iter().any(|e| e == a) && !ents.iter().any(|e| e == b))
            .fold(Tally::default(), |mut t, (_, x)| {
                t.add(*x);
                t
            });
        let base = evidence
            .iter()
            .find(|c| c.entity == a)
            .map_or((0.0, 1), |c| (c.baseline_share, c.baseline_events.max(1)));
        rose(t, base.0, base.1).0
    };
    let dominates = |a: &str, b: &str| outside(a, b) && !outside(b, a);
    let winner = consistent.iter().find(|a| {
        consistent
            .iter()
            .all(|b| a.entity == b.entity || dominates(&a.entity, &b.entity))
    });
    let (root, confident) = match winner {
        Some(w) => (w.entity.clone(), true),
        None => {
            // Undominated candidates that the telemetry cannot tell apart. Agents misbehave
            // (spend, leak); infrastructure slows down and fails: that prior only names the
            // suspect, and an ambiguous diagnosis never acts on its own.
            let undominated: Vec<&&CandidateEvidence> = consistent
                .iter()
                .filter(|a| {
                    !consistent
                        .iter()
                        .any(|b| a.entity != b.entity && dominates(&b.entity, &a.entity))
                })
                .collect();
            let prefer_agent = matches!(metric, "cost" | "violation_rate");
            let pick = undominated
                .iter()
                .find(|c| (kind_of(&c.entity) == "agent") == prefer_agent)
                .or(undominated.first())
                .map_or_else(|| consistent[0].entity.clone(), |c| c.entity.clone());
            // Candidates used by exactly the same agents (a tool only one agent calls) differ
            // in name, not in whom an action on them reaches: not an ambiguity that matters.
            let users = |entity: &str| -> BTreeSet<&str> {
                after_j
                    .iter()
                    .filter(|(ents, _)| ents.iter().any(|e| e == entity))
                    .filter_map(|(ents, _)| ents.first().and_then(|a| a.strip_prefix("agent:")))
                    .collect()
            };
            let same_users = undominated.iter().all(|c| users(&c.entity) == users(&pick));
            (pick, same_users && undominated.len() > 1)
        }
    };
    let root_ev = evidence.iter().find(|c| c.entity == root);
    let mut affected_agents: Vec<String> = root_ev
        .map(|c| {
            c.affected
                .iter()
                .filter_map(|s| s.entity.strip_prefix("agent:").map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if let Some(a) = root.strip_prefix("agent:") {
        affected_agents.push(a.to_string());
    }
    if !affected_agents.iter().any(|a| a == agent) {
        affected_agents.push(agent.to_string());
    }
    affected_agents.sort();
    affected_agents.dedup();
    let others: Vec<String> = consistent
        .iter()
        .filter(|c| c.entity != root)
        .map(|c| c.entity.clone())
        .collect();
    let contradicted: Vec<String> = evidence
        .iter()
        .filter(|c| c.moved && !c.unaffected.is_empty())
        .map(|c| {
            format!(
                "{} (unaffected: {})",
                c.entity,
                c.unaffected
                    .iter()
                    .map(|s| s.entity.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    let note = format!(
        "{root} explains the {metric} change of {} agent(s){}{}{}",
        affected_agents.len(),
        root_ev.map_or(String::new(), |c| format!(
            " ({} of {} events anomalous, {:.0}% before)",
            c.anomalous,
            c.events,
            c.baseline_share * 100.0
        )),
        if contradicted.is_empty() {
            String::new()
        } else {
            format!("; ruled out: {}", contradicted.join("; "))
        },
        if winner.is_some() {
            String::new()
        } else if confident {
            format!(
                "; the same agents use {} (indistinguishable, and an action reaches the same agents)",
                others.join(", ")
            )
        } else {
            format!(
                "; AMBIGUOUS: the telemetry cannot tell it from {}",
                others.join(", ")
            )
        }
    );
    Stratified {
        root: Some(root),
        confident,
        affected_agents,
        candidates: evidence,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fleet {
        events: Vec<EventRecord>,
    }

    /// Agents as (name, tool, model, region). Each acts once a second from 0 to `until_s`;
    /// `slow(agent, model, region, tool, t)` says whether a call at `t` is degraded (×3 latency).
    fn fleet(
        agents: &[(&str, &str, &str, &str)],
        until_s: i64,
        slow: impl Fn(&str, &str, &str, &str, i64) -> bool,
    ) -> Fleet {
        let mut events = Vec::new();
        for t in 0..until_s {
            for (i, (a, tool, model, region)) in agents.iter().enumerate() {
                let base = 200.0 + ((t * 31 + i as i64 * 17) % 40) as f64;
                let latency = if slow(a, model, region, tool, t) {
                    base * 3.0
                } else {
                    base
                };
                events.push(
                    serde_json::from_value(json!({
                        "id": format!("e{t}-{i}"), "tenant": "t", "agent_id": a,
                        "kind": "tool_call", "outcome": "ok", "latency_ms": latency,
                        "cost_usd": 0.001, "tool": tool, "model": model, "region": region,
                        "created_at_ms": t * 1000 + i as i64, "attributes": {},
                    }))
                    .unwrap(),
                );
            }
        }
        Fleet { events }
    }

    fn diagnose(agent: &str, metric: &str, change_ms: i64, events: &[EventRecord]) -> Stratified {
        diagnose_symptom(agent, metric, change_ms, events, &EffectFloors::default())
    }

    const AGENTS: [(&str, &str, &str, &str); 6] = [
        ("a1", "search", "m-new", "eu"),
        ("a2", "crm", "m-new", "us"),
        ("a3", "search", "m-old", "eu"),
        ("a4", "crm", "m-old", "eu"),
        ("a5", "kb", "m-new", "eu"),
        ("a6", "kb", "m-old", "us"),
    ];

    #[test]
    fn a_model_regression_is_not_blamed_on_its_region() {
        let f = fleet(&AGENTS, 200, |_, m, _, _, t| m == "m-new" && t >= 150);
        let d = diagnose("a1", "latency", 152_000, &f.events);
        assert_eq!(d.root.as_deref(), Some("model:m-new"), "{d:#?}");
        assert!(d.confident, "{}", d.note);
        let region = d
            .candidates
            .iter()
            .find(|c| c.entity == "region:eu")
            .unwrap();
        assert!(!region.consistent(), "{region:#?}");
        assert_eq!(d.affected_agents, ["a1", "a2", "a5"]);
    }

    #[test]
    fn a_region_fault_is_not_blamed_on_a_model() {
        let f = fleet(&AGENTS, 200, |_, _, r, _, t| r == "eu" && t >= 150);
        let d = diagnose("a1", "latency", 152_000, &f.events);
        assert_eq!(d.root.as_deref(), Some("region:eu"), "{d:#?}");
        assert!(d.confident);
    }

    #[test]
    fn a_tool_outage_is_blamed_on_the_tool() {
        let f = fleet(&AGENTS, 200, |_, _, _, tool, t| {
            tool == "search" && t >= 150
        });
        let d = diagnose("a3", "latency", 152_000, &f.events);
        assert_eq!(d.root.as_deref(), Some("tool:search"), "{d:#?}");
        assert!(d.confident);
    }

    #[test]
    fn one_agent_going_wrong_is_the_agent() {
        let f = fleet(&AGENTS, 200, |a, _, _, _, t| a == "a4" && t >= 150);
        let d = diagnose("a4", "latency", 152_000, &f.events);
        assert_eq!(d.root.as_deref(), Some("agent:a4"), "{d:#?}");
        assert!(d.confident);
        assert_eq!(d.affected_agents, ["a4"]);
    }

    #[test]
    fn entities_only_the_same_agents_use_are_one_suspect() {
        // m-solo has one user, in a region nobody else uses: model, region and agent are one,
        // and acting on any of them reaches the same agent.
        let mut agents = AGENTS.to_vec();
        agents.push(("a7", "kb", "m-solo", "ap"));
        let f = fleet(&agents, 200, |_, m, _, _, t| m == "m-solo" && t >= 150);
        let d = diagnose("a7", "latency", 152_000, &f.events);
        assert!(d.confident, "{d:#?}");
        assert!(d.note.contains("indistinguishable"), "{}", d.note);
        assert_eq!(d.affected_agents, ["a7"]);
    }

    #[test]
    fn explanations_that_reach_different_agents_are_ambiguous() {
        // a7 calls t-x with m-x; m-x's only other user (a8) and t-x's only other user (a9) are
        // too quiet to rule either out, and both moved: the model or the tool, nobody can say.
        let mut agents = AGENTS.to_vec();
        agents.push(("a7", "t-x", "m-x", "eu"));
        agents.push(("a8", "crm", "m-x", "us"));
        agents.push(("a9", "t-x", "claude", "us"));
        let f = fleet(&agents, 200, |a, _, _, _, t| {
            ["a7", "a8", "a9"].contains(&a) && t >= 150
        });
        let events: Vec<EventRecord> = f
            .events
            .into_iter()
            .filter(|e| {
                !["a8", "a9"].contains(&e.agent_id.as_str()) || e.created_at_ms % 7_000 < 1_000
            })
            .collect();
        let d = diagnose("a7", "latency", 152_000, &events);
        assert!(!d.confident, "{d:#?}");
        assert!(d.note.contains("AMBIGUOUS"), "{}", d.note);
    }

    #[test]
    fn a_young_fleet_is_its_own_baseline() {
        // Five seconds of history, then a1 fails most calls: no past to compare with, but the
        // rest of the fleet right now is the control.
        let f = fleet(&AGENTS, 40, |_, _, _, _, _| false);
        let events: Vec<EventRecord> = f
            .events
            .into_iter()
            .filter(|e| e.created_at_ms >= 30_000)
            .map(|mut e| {
                if e.agent_id == "a1"
                    && e.created_at_ms >= 32_000
                    && e.created_at_ms % 3_000 < 2_000
                {
                    e.outcome = Outcome::Error;
                }
                e
            })
            .collect();
        let d = diagnose("a1", "error_rate", 32_000, &events);
        assert_eq!(d.root.as_deref(), Some("agent:a1"), "{d:#?}");
    }

    #[test]
    fn nothing_moved_blames_nothing() {
        let f = fleet(&AGENTS, 200, |_, _, _, _, _| false);
        let d = diagnose("a1", "latency", 152_000, &f.events);
        assert_eq!(d.root, None, "{d:#?}");
    }
}
