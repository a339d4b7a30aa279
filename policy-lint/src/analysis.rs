//! The checks. Every question is asked of cvc5 through symcc as "does this synthetic policy set
//! allow any request?" or "does set A allow only what set B allows?", over every request the
//! schema admits.
//!
//! A synthetic permit conjoins policy conditions and a path guard:
//! `permit (principal, action, resource) when { (C_p) && (C_g) && (guard) };`. Conjunction
//! keeps Cedar's error semantics (a policy whose condition errors does not match, and neither
//! does the conjunction), so conditions are never negated or disjoined inside one policy;
//! "no forbid matches" and "some permit matches" are left to the policy set semantics, which
//! symcc models exactly. Each forbid is added as-is, or conjoined with the guards of the
//! paths it is on when the query spans other paths too.

use std::collections::{BTreeSet, HashMap, HashSet};

use cedar_policy::{Authorizer, Effect, Policy, PolicyId, PolicySet, RequestEnv, Schema};
use cedar_policy_symcc::solver::LocalSolver;
use cedar_policy_symcc::{CedarSymCompiler, CompiledPolicySet, Env};

use crate::LintError;
use crate::model::{BundleModel, Level, LintPolicy};
use crate::report::{Finding, FindingKind, Witness};

/// Obligation parameters the engine does not merge: two permits with the same obligation but
/// different values here ask for incompatible things on the same request. (Differing
/// `@redact_mode`s are not listed: the engine applies the most protective mode by design.)
const UNMERGED_PARAMETERS: &[(&str, &str)] = &[("require_approval", "approver")];

/// A case path meaning "any principal": no path guard.
const NO_PATH: usize = usize::MAX;

/// One disjunct of a query: on path `path`, all of `conditions` hold.
struct Case<'a> {
    path: usize,
    conditions: Vec<&'a str>,
}

pub(crate) struct Analyzer<'m> {
    model: &'m BundleModel,
    schema: &'m Schema,
    envs: Vec<RequestEnv>,
    compiler: CedarSymCompiler<LocalSolver>,
    /// Indexes into `model.paths` that each policy is on.
    paths_of: Vec<Vec<usize>>,
    /// For each policy, a request (and entities) on one of its paths that it matches, from the
    /// first query that produced one. Evaluating another policy on it concretely refutes a
    /// candidate implication without asking the solver.
    samples: Vec<Option<Env>>,
    pub(crate) queries: usize,
}

impl<'m> Analyzer<'m> {
    pub(crate) fn new(
        model: &'m BundleModel,
        schema: &'m Schema,
        solver: LocalSolver,
    ) -> Result<Analyzer<'m>, LintError> {
        let compiler = CedarSymCompiler::new(solver).map_err(|source| LintError::Symcc {
            what: "starting the symbolic compiler".into(),
            source: Box::new(source),
        })?;
        let paths_of = model
            .policies
            .iter()
            .map(|p| {
                (0..model.paths.len())
                    .filter(|&k| model.paths[k].includes(&p.level))
                    .collect()
            })
            .collect();
        Ok(Analyzer {
            model,
            schema,
            envs: schema.request_envs().collect(),
            compiler,
            paths_of,
            samples: vec![None; model.policies.len()],
            queries: 0,
        })
    }

    pub(crate) async fn run(&mut self) -> Result<Vec<Finding>, LintError> {
        let policies = &self.model.policies;
        let mut findings = Vec::new();
        // Policies already reported as never matching or never taking effect: anything else
        // said about them would follow from that.
        let mut never = HashSet::new();
        let mut dead = HashSet::new();
        // Policies that match some request no policy that could make them redundant matches.
        let mut uncovered = HashSet::new();

        for i in 0..policies.len() {
            if self.sample_outside_candidates(i).await? {
                uncovered.insert(i);
            }
            if let Some(finding) = self.never_matches(i).await? {
                findings.push(finding);
                never.insert(i);
            } else if let Some(finding) = self.never_takes_effect(i).await? {
                findings.push(finding);
                dead.insert(i);
            }
        }

        let alive: Vec<usize> = (0..policies.len())
            .filter(|i| !never.contains(i) && !dead.contains(i))
            .collect();
        let maybe_redundant: Vec<usize> = alive
            .iter()
            .copied()
            .filter(|i| !uncovered.contains(i))
            .collect();
        findings.extend(self.redundant(&maybe_redundant, &never).await?);
        findings.extend(self.conflicting_obligations(&alive).await?);
        Ok(findings)
    }

    /// One query that usually settles redundancy for `i` at once: a request on its paths that
    /// `i` matches and none of the policies that could cover it (`may_cover`) matches. If
    /// there is one, no single policy makes `i` redundant, and the request is kept as `i`'s
    /// sample. Returns whether such a request exists.
    async fn sample_outside_candidates(&mut self, i: usize) -> Result<bool, LintError> {
        let candidates: Vec<usize> = (0..self.model.policies.len())
            .filter(|&j| j != i && self.may_cover(i, j))
            .collect();
        if candidates.is_empty() || self.paths_of[i].is_empty() {
            return Ok(true);
        }
        let mut set = self.query_set(&self.single_cases(i), false)?;
        for &j in &candidates {
            // As a forbid, the candidate removes exactly the requests it matches (one whose
            // condition errors does not match, and does not forbid either).
            let q = &self.model.policies[j];
            let text = format!(
                "forbid (principal, action, resource) when {{ ({}) }};",
                q.condition
            );
            add(&mut set, &format!("lint-candidate-{}", q.id), &text)?;
        }
        let what = self.model.policies[i].id.clone();
        match self.find(&set, &what).await? {
            Some(sample) => {
                self.samples[i] = Some(sample);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// never-matches: on no path the policy is on does any request satisfy its scope and
    /// conditions (or the policy is on no reachable path at all).
    async fn never_matches(&mut self, i: usize) -> Result<Option<Finding>, LintError> {
        let p = &self.model.policies[i];
        if self.samples[i].is_some() {
            return Ok(None);
        }
        if self.paths_of[i].is_empty() {
            let why = match &p.level {
                Level::Region(r) if self.model.regions_without_teams.contains(r) => {
                    format!(
                        "region {r:?} has no team in org.toml, so no agent's path includes regions/{r}/"
                    )
                }
                _ => "no agent's path includes its folder".to_string(),
            };
            return Ok(Some(self.finding(
                FindingKind::NeverMatches,
                &[i],
                &[],
                format!("the policy can never apply: {why}"),
                None,
            )));
        }
        let set = self.query_set(&self.single_cases(i), false)?;
        if let Some(sample) = self.find(&set, &p.id).await? {
            self.samples[i] = Some(sample);
            return Ok(None);
        }
        let paths = self.paths_of[i].clone();
        Ok(Some(self.finding(
            FindingKind::NeverMatches,
            &[i],
            &paths,
            "no request the schema admits satisfies its scope and conditions on any path it is on; it is dead code".into(),
            None,
        )))
    }

    /// shadowed-permit / unreachable-obligation: a permit that on every path it is on never
    /// takes effect, because whenever it matches either a forbid on that path matches too, or
    /// (for a region/team obligation permit) no global or tenant permit grants the request.
    async fn never_takes_effect(&mut self, i: usize) -> Result<Option<Finding>, LintError> {
        let p = &self.model.policies[i];
        if p.effect != Effect::Permit {
            return Ok(None);
        }
        let cases = self.effect_cases(&[i]);
        let set = self.query_set(&cases, true)?;
        if self.allows_any(&set, &p.id).await? {
            return Ok(None);
        }
        let paths = self.paths_of[i].clone();
        if p.grants() {
            let finding = self.finding(
                FindingKind::ShadowedPermit,
                &[i],
                &paths,
                "forbids on its path(s) cover every request it matches, so it never allows anything".into(),
                None,
            );
            let covering = self.covering_forbids(i).await?;
            return Ok(Some(self.with_related(finding, &covering)));
        }
        // The same question without the forbids tells the two reasons apart.
        let granted = self.query_set(&cases, false)?;
        if !self.allows_any(&granted, &p.id).await? {
            return Ok(Some(self.finding(
                FindingKind::UnreachableObligation,
                &[i],
                &paths,
                "its obligation is never applied: no global or tenant permit grants any request it matches (region and team permits cannot grant)".into(),
                None,
            )));
        }
        let finding = self.finding(
            FindingKind::UnreachableObligation,
            &[i],
            &paths,
            "its obligation is never applied: every request it matches that a global or tenant permit grants is denied by a forbid on the same path".into(),
            None,
        );
        let covering = self.covering_forbids(i).await?;
        Ok(Some(self.with_related(finding, &covering)))
    }

    /// The forbids to name in a finding about `i` never taking effect: those that on their
    /// own match every request `i` matches, or, if none does, every forbid that matches some
    /// request `i` matches on a path both are on.
    async fn covering_forbids(&mut self, i: usize) -> Result<Vec<usize>, LintError> {
        let policies = &self.model.policies;
        let forbids: Vec<usize> = (0..policies.len())
            .filter(|&f| policies[f].effect == Effect::Forbid)
            .collect();
        let mut alone = Vec::new();
        for &f in &forbids {
            if self.covers_on_all_paths(i, f).await? {
                alone.push(f);
            }
        }
        if !alone.is_empty() {
            return Ok(alone);
        }
        let mut out = Vec::new();
        for f in forbids {
            let cases: Vec<Case<'_>> = self.paths_of[i]
                .iter()
                .filter(|k| self.paths_of[f].contains(k))
                .map(|&path| Case {
                    path,
                    conditions: vec![
                        policies[i].condition.as_str(),
                        policies[f].condition.as_str(),
                    ],
                })
                .collect();
            if cases.is_empty() {
                continue;
            }
            let set = self.query_set(&cases, false)?;
            if self.allows_any(&set, &policies[f].id).await? {
                out.push(f);
            }
        }
        Ok(out)
    }

    /// redundant: policy p changes no decision because, on every path it is on, another
    /// policy q on that path matches whenever p matches and contributes at least what p does.
    async fn redundant(
        &mut self,
        candidates: &[usize],
        never: &HashSet<usize>,
    ) -> Result<Vec<Finding>, LintError> {
        let policies = &self.model.policies;
        let mut implied: HashMap<(usize, usize), bool> = HashMap::new();
        for &i in candidates {
            for j in 0..policies.len() {
                if i == j || never.contains(&j) || !self.may_cover(i, j) {
                    continue;
                }
                let holds = self.covers_on_all_paths(i, j).await?;
                implied.insert((i, j), holds);
            }
        }
        let mut findings = Vec::new();
        for &i in candidates {
            // Of two policies that cover each other, report only the deeper / later one, so
            // deleting what is reported keeps one of them.
            let covers: Vec<usize> = (0..policies.len())
                .filter(|&j| implied.get(&(i, j)) == Some(&true))
                .filter(|&j| {
                    !(implied.get(&(j, i)) == Some(&true)
                        && policies[j].order_key() > policies[i].order_key())
                })
                .collect();
            if covers.is_empty() {
                continue;
            }
            let paths = self.paths_of[i].clone();
            let finding = self.finding(
                FindingKind::Redundant,
                &[i],
                &paths,
                "each related policy matches every request it matches and does at least as much; removing it changes no decision".into(),
                None,
            );
            findings.push(self.with_related(finding, &covers));
        }
        Ok(findings)
    }

    /// Whether policy `q` is on every path `p` is on and matches every request `p` matches
    /// there. A sample request that `p` matches and `q` does not settles it without the solver.
    async fn covers_on_all_paths(&mut self, p: usize, q: usize) -> Result<bool, LintError> {
        if !self.paths_of[p]
            .iter()
            .all(|k| self.paths_of[q].contains(k))
        {
            return Ok(false);
        }
        if let Some(sample) = &self.samples[p]
            && !self.matches(q, sample)
        {
            return Ok(false);
        }
        let a = self.query_set(&self.single_cases(p), false)?;
        let b = self.query_set(
            &[Case {
                path: NO_PATH,
                conditions: vec![self.model.policies[q].condition.as_str()],
            }],
            false,
        )?;
        let what = self.model.policies[p].id.clone();
        self.implies(&a, &b, &what).await
    }

    /// Whether policy `q` matches the concrete request `sample`: Cedar itself evaluates `q`
    /// alone, and a matching policy is among the reasons of the decision.
    fn matches(&self, q: usize, sample: &Env) -> bool {
        let policy = &self.model.policies[q].policy;
        let Ok(set) = PolicySet::from_policies([policy.clone()]) else {
            return true; // cannot refute: leave it to the solver
        };
        let response = Authorizer::new().is_authorized(&sample.request, &set, &sample.entities);
        response.diagnostics().reason().any(|id| id == policy.id())
    }

    /// Whether q could make p redundant without looking at conditions: same effect; q on every
    /// path p is on; for a permit, q grants if p grants, and q adds the same obligation with the
    /// same parameters if p has any.
    fn may_cover(&self, p: usize, q: usize) -> bool {
        let (pp, qq) = (&self.model.policies[p], &self.model.policies[q]);
        if pp.effect != qq.effect
            || !self.paths_of[p]
                .iter()
                .all(|k| self.paths_of[q].contains(k))
        {
            return false;
        }
        match pp.effect {
            Effect::Forbid => true,
            Effect::Permit => {
                (!pp.grants() || qq.grants())
                    && (pp.parameters.is_empty() || pp.parameters == qq.parameters)
            }
        }
    }

    /// conflicting-obligations: two permits with the same `@obligation` but different values
    /// of a parameter the engine does not merge (`@approver` of `require_approval`) that both
    /// take effect on one request on some path. The witness is such a request.
    async fn conflicting_obligations(
        &mut self,
        alive: &[usize],
    ) -> Result<Vec<Finding>, LintError> {
        let policies = &self.model.policies;
        let mut findings = Vec::new();
        for (n, &i) in alive.iter().enumerate() {
            for &j in &alive[n + 1..] {
                let (p, q) = (&policies[i], &policies[j]);
                let Some(kind) = p.obligation.as_deref() else {
                    continue;
                };
                if p.effect != Effect::Permit
                    || q.effect != Effect::Permit
                    || q.obligation.as_deref() != Some(kind)
                {
                    continue;
                }
                let differing: Vec<&str> = UNMERGED_PARAMETERS
                    .iter()
                    .filter(|(k, param)| {
                        *k == kind && p.parameters.get(*param) != q.parameters.get(*param)
                    })
                    .map(|(_, param)| *param)
                    .collect();
                if differing.is_empty() {
                    continue;
                }
                let shared: Vec<usize> = self.paths_of[i]
                    .iter()
                    .copied()
                    .filter(|k| self.paths_of[j].contains(k))
                    .collect();
                let mut reachable = Vec::new();
                let mut witness = None;
                for path in shared {
                    let cases =
                        self.granted_cases(path, &[p.condition.as_str(), q.condition.as_str()]);
                    let set = self.query_set(&cases, true)?;
                    if let Some(w) = self.witness(&set, &p.id).await? {
                        reachable.push(path);
                        witness.get_or_insert(w);
                    }
                }
                if reachable.is_empty() {
                    continue;
                }
                let values = |x: &LintPolicy| {
                    differing
                        .iter()
                        .map(|param| {
                            format!(
                                "@{param}={}",
                                x.parameters.get(*param).map_or("(none)", String::as_str)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                // The deeper (then later) policy first: it is usually the one that brought the
                // conflict in.
                let pair = if p.order_key() > q.order_key() {
                    [i, j]
                } else {
                    [j, i]
                };
                findings.push(self.finding(
                    FindingKind::ConflictingObligations,
                    &pair,
                    &reachable,
                    format!(
                        "both add @obligation({kind:?}) to the same allowed request but disagree: {} has {}, {} has {}",
                        p.id,
                        values(p),
                        q.id,
                        values(q)
                    ),
                    witness,
                ));
            }
        }
        Ok(findings)
    }

    // ---- query construction ---------------------------------------------------------------

    /// Cases for "p matches" on each of its paths.
    fn single_cases(&self, i: usize) -> Vec<Case<'m>> {
        let condition = self.model.policies[i].condition.as_str();
        self.paths_of[i]
            .iter()
            .map(|&path| Case {
                path,
                conditions: vec![condition],
            })
            .collect()
    }

    /// Cases for "the policies `ids` all match and some granting permit matches", on each path
    /// all of them are on. A granting policy among `ids` needs no other grant.
    fn effect_cases(&self, ids: &[usize]) -> Vec<Case<'m>> {
        let policies = &self.model.policies;
        let conditions: Vec<&'m str> = ids
            .iter()
            .map(|&i| policies[i].condition.as_str())
            .collect();
        let mut cases = Vec::new();
        for path in 0..self.model.paths.len() {
            if !ids.iter().all(|&i| self.paths_of[i].contains(&path)) {
                continue;
            }
            if ids.iter().any(|&i| policies[i].grants()) {
                cases.push(Case {
                    path,
                    conditions: conditions.clone(),
                });
            } else {
                cases.extend(self.granted_cases(path, &conditions));
            }
        }
        cases
    }

    /// Cases for "all `conditions` hold and some granting permit on `path` matches".
    fn granted_cases(&self, path: usize, conditions: &[&'m str]) -> Vec<Case<'m>> {
        let policies = &self.model.policies;
        (0..policies.len())
            .filter(|&g| policies[g].grants() && self.paths_of[g].contains(&path))
            .map(|g| {
                let mut all = conditions.to_vec();
                all.push(policies[g].condition.as_str());
                Case {
                    path,
                    conditions: all,
                }
            })
            .collect()
    }

    /// One synthetic permit per case (conditions conjoined with the case's path guard; path
    /// `NO_PATH` means no guard), plus, if `with_forbids`, every forbid on a path of the
    /// query, restricted to its own paths when the query spans paths it is not on.
    fn query_set(&self, cases: &[Case<'_>], with_forbids: bool) -> Result<PolicySet, LintError> {
        let mut set = PolicySet::new();
        for (n, case) in cases.iter().enumerate() {
            let mut conjuncts: Vec<String> =
                case.conditions.iter().map(|c| format!("({c})")).collect();
            if let Some(guard) = self.model.guards.get(case.path) {
                conjuncts.push(format!("({guard})"));
            }
            let text = format!(
                "permit (principal, action, resource) when {{ {} }};",
                conjuncts.join(" && ")
            );
            add(&mut set, &format!("lint-query-{n}"), &text)?;
        }
        if !with_forbids {
            return Ok(set);
        }
        let query_paths: BTreeSet<usize> = cases.iter().map(|c| c.path).collect();
        for (f, forbid) in self.model.policies.iter().enumerate() {
            if forbid.effect != Effect::Forbid {
                continue;
            }
            let on: Vec<usize> = query_paths
                .iter()
                .copied()
                .filter(|k| self.paths_of[f].contains(k))
                .collect();
            if on.is_empty() {
                continue;
            }
            // Guards of different paths exclude each other, and the permits already carry
            // theirs, so a forbid on every path of the query needs no guard of its own.
            let condition = if on.len() == query_paths.len() {
                format!("({})", forbid.condition)
            } else {
                let guards: Vec<String> = on
                    .iter()
                    .filter_map(|k| self.model.guards.get(*k))
                    .map(|g| format!("({g})"))
                    .collect();
                format!("({}) && ({})", forbid.condition, guards.join(" || "))
            };
            let text = format!("forbid (principal, action, resource) when {{ {condition} }};");
            add(&mut set, &format!("lint-forbid-{}", forbid.id), &text)?;
        }
        Ok(set)
    }

    // ---- solver calls -----------------------------------------------------------------------

    /// Whether `set` allows some request of some request environment the schema admits.
    async fn allows_any(&mut self, set: &PolicySet, what: &str) -> Result<bool, LintError> {
        Ok(self.find(set, what).await?.is_some())
    }

    /// A request `set` allows, if there is one, for a report.
    async fn witness(&mut self, set: &PolicySet, what: &str) -> Result<Option<Witness>, LintError> {
        Ok(self.find(set, what).await?.as_ref().map(Witness::from_env))
    }

    /// A request (with its entities) `set` allows, if there is one.
    async fn find(&mut self, set: &PolicySet, what: &str) -> Result<Option<Env>, LintError> {
        if !set.policies().any(|p| p.effect() == Effect::Permit) {
            return Ok(None);
        }
        for env in &self.envs {
            let compiled = CompiledPolicySet::compile(set, env, self.schema).map_err(|source| {
                LintError::Symcc {
                    what: format!("compiling the query about {what}"),
                    source: Box::new(source),
                }
            })?;
            self.queries += 1;
            let found = self
                .compiler
                .check_always_denies_with_counterexample_opt(&compiled)
                .await
                .map_err(|source| LintError::Symcc {
                    what: format!("solving the query about {what}"),
                    source: Box::new(source),
                })?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Whether every request `a` allows, `b` allows too, in every request environment.
    async fn implies(
        &mut self,
        a: &PolicySet,
        b: &PolicySet,
        what: &str,
    ) -> Result<bool, LintError> {
        for env in &self.envs {
            let compile = |set: &PolicySet| {
                CompiledPolicySet::compile(set, env, self.schema).map_err(|source| {
                    LintError::Symcc {
                        what: format!("compiling the query about {what}"),
                        source: Box::new(source),
                    }
                })
            };
            let (ca, cb) = (compile(a)?, compile(b)?);
            self.queries += 1;
            let holds = self
                .compiler
                .check_implies_opt(&ca, &cb)
                .await
                .map_err(|source| LintError::Symcc {
                    what: format!("solving the query about {what}"),
                    source: Box::new(source),
                })?;
            if !holds {
                return Ok(false);
            }
        }
        Ok(true)
    }

    // ---- findings ---------------------------------------------------------------------------

    fn finding(
        &self,
        kind: FindingKind,
        ids: &[usize],
        paths: &[usize],
        message: String,
        witness: Option<Witness>,
    ) -> Finding {
        let policies = &self.model.policies;
        Finding {
            kind,
            severity: kind.severity(),
            policy_ids: ids.iter().map(|&i| policies[i].id.clone()).collect(),
            files: ids.iter().map(|&i| policies[i].file.clone()).collect(),
            slices: paths
                .iter()
                .filter_map(|&k| self.model.paths.get(k).cloned())
                .collect(),
            message,
            witness,
        }
    }

    fn with_related(&self, mut finding: Finding, related: &[usize]) -> Finding {
        for &r in related {
            finding.policy_ids.push(self.model.policies[r].id.clone());
            finding.files.push(self.model.policies[r].file.clone());
        }
        finding
    }
}

fn add(set: &mut PolicySet, id: &str, text: &str) -> Result<(), LintError> {
    let query_error = |message: String| LintError::Query {
        text: text.to_string(),
        message,
    };
    let policy =
        Policy::parse(Some(PolicyId::new(id)), text).map_err(|e| query_error(e.to_string()))?;
    set.add(policy).map_err(|e| query_error(e.to_string()))
}
