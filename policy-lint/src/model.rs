//! The parts of a loaded bundle the analysis needs: every policy with its file, level and
//! annotations, and every path (tenant folder?, region, team) a request can be evaluated on.
//!
//! `meshos_policy::Bundle` has already validated the files (schema, levels, narrowing rules),
//! so this only re-reads them; it follows the same layout rules as `policy/src/bundle.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use cedar_policy::{Effect, EntityId, EntityTypeName, EntityUid, Policy, PolicyId, PolicySet};
use meshos_policy::Bundle;

use crate::LintError;

const ORG_FILE: &str = "org.toml";

/// Where in the hierarchy a policy sits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Global,
    Tenant(String),
    Region(String),
    Team(String),
}

impl Level {
    /// The level of a bundle file from its path, as `Bundle::load_dir` assigns it.
    fn of_path(name: &str) -> Option<Level> {
        let parts: Vec<&str> = name.split('/').collect();
        match parts.as_slice() {
            [_file] | ["global", _file] => Some(Level::Global),
            ["tenants", t, _file] => Some(Level::Tenant((*t).to_string())),
            ["regions", r, _file] => Some(Level::Region((*r).to_string())),
            ["teams", t, _file] => Some(Level::Team((*t).to_string())),
            _ => None,
        }
    }

    /// Depth in the hierarchy; deeper policies are the ones reported when two say the same.
    pub(crate) fn depth(&self) -> u8 {
        match self {
            Level::Global => 0,
            Level::Tenant(_) => 1,
            Level::Region(_) => 2,
            Level::Team(_) => 3,
        }
    }
}

/// One policy of the bundle, as the analysis sees it.
#[derive(Debug, Clone)]
pub(crate) struct LintPolicy {
    pub id: String,
    pub file: String,
    pub level: Level,
    pub effect: Effect,
    /// `@obligation`, if any.
    pub obligation: Option<String>,
    /// Every annotation except `@id` and `@reason`: what the policy demands beyond its effect
    /// (`@obligation`, `@approver`, `@redact_mode`, …). Two permits with equal parameters add
    /// the same obligations when they match.
    pub parameters: BTreeMap<String, String>,
    /// Cedar text of the policy's scope and conditions as one boolean expression.
    pub condition: String,
    /// The policy itself, with its `@id` as its Cedar id.
    pub policy: Policy,
}

impl LintPolicy {
    /// Only global and tenant permits grant; region and team permits only add obligations
    /// (the engine denies an allow that no global or tenant policy took part in).
    pub(crate) fn grants(&self) -> bool {
        self.effect == Effect::Permit && matches!(self.level, Level::Global | Level::Tenant(_))
    }

    /// Sort key for choosing which of two equivalent policies to report.
    pub(crate) fn order_key(&self) -> (u8, &str, &str) {
        (self.level.depth(), self.file.as_str(), self.id.as_str())
    }
}

/// A path requests are evaluated on: the global policies plus those of the tenant folder,
/// region and team an agent sits in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct SlicePath {
    /// `None`: a tenant without its own folder under `tenants/`.
    pub tenant: Option<String>,
    /// `None` (with `team` `None`): an agent `org.toml` does not place.
    pub region: Option<String>,
    pub team: Option<String>,
}

impl SlicePath {
    pub(crate) fn includes(&self, level: &Level) -> bool {
        match level {
            Level::Global => true,
            Level::Tenant(t) => self.tenant.as_ref() == Some(t),
            Level::Region(r) => self.region.as_ref() == Some(r),
            Level::Team(t) => self.team.as_ref() == Some(t),
        }
    }
}

impl fmt::Display for SlicePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Without a tenant segment: the tenants that have no folder of their own.
        f.write_str("global")?;
        if let Some(t) = &self.tenant {
            write!(f, " > tenants/{t}")?;
        }
        match (&self.region, &self.team) {
            (Some(r), Some(t)) => write!(f, " > regions/{r} > teams/{t}"),
            (Some(r), None) => write!(f, " > regions/{r}"),
            _ => f.write_str(" (agents org.toml does not place)"),
        }
    }
}

/// A bundle, ready for analysis.
#[derive(Debug)]
pub(crate) struct BundleModel {
    pub policies: Vec<LintPolicy>,
    pub paths: Vec<SlicePath>,
    /// For each path, a Cedar expression true exactly for principals an agent on that path can
    /// be (in its tenant folder, region and team, and in no other); the paths exclude each
    /// other, so a query may ask about several at once.
    pub guards: Vec<String>,
    /// Regions in `org.toml` that no team belongs to: their policies are on no reachable path.
    pub regions_without_teams: BTreeSet<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct OrgFile {
    #[serde(default)]
    regions: BTreeMap<String, toml::Value>,
    #[serde(default)]
    teams: BTreeMap<String, TeamSpec>,
}

#[derive(Debug, serde::Deserialize)]
struct TeamSpec {
    region: String,
}

impl BundleModel {
    pub(crate) fn from_bundle(bundle: &Bundle) -> Result<BundleModel, LintError> {
        let mut org = OrgFile::default();
        let mut policies = Vec::new();
        let mut tenant_folders = BTreeSet::new();
        for file in bundle.files() {
            if file.name == ORG_FILE {
                org = toml::from_str(&file.text).map_err(|e| LintError::Model {
                    file: file.name.clone(),
                    message: e.to_string(),
                })?;
                continue;
            }
            if !file.name.ends_with(".cedar") {
                continue;
            }
            let model_error = |message: String| LintError::Model {
                file: file.name.clone(),
                message,
            };
            let level = Level::of_path(&file.name)
                .ok_or_else(|| model_error("not a policy location".into()))?;
            if let Level::Tenant(t) = &level {
                tenant_folders.insert(t.clone());
            }
            let parsed = PolicySet::from_str(&file.text).map_err(|e| model_error(e.to_string()))?;
            for policy in parsed.policies() {
                policies.push(lint_policy(policy, &file.name, &level).map_err(model_error)?);
            }
        }
        policies.sort_by(|a, b| a.id.cmp(&b.id));

        let mut paths = Vec::new();
        let tenants = std::iter::once(None).chain(tenant_folders.iter().cloned().map(Some));
        for tenant in tenants {
            paths.push(SlicePath {
                tenant: tenant.clone(),
                region: None,
                team: None,
            });
            for (team, spec) in &org.teams {
                paths.push(SlicePath {
                    tenant: tenant.clone(),
                    region: Some(spec.region.clone()),
                    team: Some(team.clone()),
                });
            }
        }
        let regions: BTreeSet<String> = org.regions.keys().cloned().collect();
        let teams: BTreeSet<String> = org.teams.keys().cloned().collect();
        let guards = paths
            .iter()
            .map(|p| guard(p, &tenant_folders, &regions, &teams))
            .collect::<Result<Vec<_>, _>>()?;
        let regions_with_teams: BTreeSet<&String> = org.teams.values().map(|t| &t.region).collect();
        let regions_without_teams = regions
            .iter()
            .filter(|r| !regions_with_teams.contains(r))
            .cloned()
            .collect();
        Ok(BundleModel {
            policies,
            paths,
            guards,
            regions_without_teams,
        })
    }
}

fn lint_policy(policy: &Policy, file: &str, level: &Level) -> Result<LintPolicy, String> {
    let id = policy
        .annotation("id")
        .ok_or_else(|| "a policy has no @id annotation".to_string())?
        .to_string();
    let parameters = policy
        .annotations()
        .filter(|(k, _)| *k != "id" && *k != "reason")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // The condition Cedar evaluates for this policy: its scope constraints, `when` clauses and
    // negated `unless` clauses joined by `&&`, printed back as Cedar text so queries can
    // combine several policies' conditions in one synthetic policy.
    // `as_ref()` is cedar-policy's (doc-hidden) view of its AST; symcc pins cedar-policy to
    // =4.14.1, so it cannot change under us without a deliberate upgrade.
    let condition = policy.as_ref().condition().to_string();
    Ok(LintPolicy {
        policy: policy.new_id(PolicyId::new(&id)),
        obligation: policy.annotation("obligation").map(str::to_string),
        effect: policy.effect(),
        level: level.clone(),
        file: file.to_string(),
        parameters,
        condition,
        id,
    })
}

/// The path guard: `principal in` each entity on the path, and not in any other region, team
/// or tenant folder (an agent sits in exactly one team; the symbolic hierarchy would
/// otherwise allow it to be in several).
fn guard(
    path: &SlicePath,
    tenant_folders: &BTreeSet<String>,
    regions: &BTreeSet<String>,
    teams: &BTreeSet<String>,
) -> Result<String, LintError> {
    let mut conjuncts = Vec::new();
    for (type_name, names, chosen) in [
        ("MeshOS::Tenant", tenant_folders, &path.tenant),
        ("MeshOS::Region", regions, &path.region),
        ("MeshOS::Team", teams, &path.team),
    ] {
        for name in names.iter().chain(chosen.iter()).collect::<BTreeSet<_>>() {
            let principal_in = format!("principal in {}", entity(type_name, name)?);
            if chosen.as_ref() == Some(name) {
                conjuncts.push(principal_in);
            } else {
                conjuncts.push(format!("!({principal_in})"));
            }
        }
    }
    Ok(if conjuncts.is_empty() {
        "true".to_string()
    } else {
        conjuncts.join(" && ")
    })
}

/// An entity literal, escaped by Cedar itself.
fn entity(type_name: &str, id: &str) -> Result<String, LintError> {
    let ty = EntityTypeName::from_str(type_name).map_err(|e| LintError::Model {
        file: ORG_FILE.into(),
        message: e.to_string(),
    })?;
    Ok(EntityUid::from_type_name_and_id(ty, EntityId::new(id)).to_string())
}
