//! The policy bundle: schema, `org.toml` (tenants' folders, regions, teams, agents), the
//! model registry, budgets and the Cedar policies of `global/`, `tenants/`, `regions/` and
//! `teams/`, validated at load (lower levels may only narrow), versioned by the digest of its
//! files, and cut into per-path, per-operation slices so a request evaluates only the policies
//! that can apply to it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    Effect, Policy, PolicyId, PolicySet, PrincipalConstraint, ResourceConstraint, Schema,
    ValidationMode, Validator,
};
use sha2::{Digest, Sha256};

use crate::budgets::{BUDGETS_FILE, BudgetConfig, BudgetConfigError};
use crate::compiled::{self, CompileError, CompiledPolicy, CompiledSet, SliceFacts};
use crate::facts::FactReads;
use crate::models::{MODELS_FILE, ModelRegistry, ModelRegistryError};
use crate::redact::{RedactionMode, RedactionRule};

/// One file of a bundle: a path relative to the bundle root (with `/` separators) and its text.
#[derive(Debug, Clone)]
pub struct BundleFile {
    pub name: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read policy bundle {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("policy bundle has no schema file (*.cedarschema)")]
    NoSchema,
    #[error("policy bundle has {0} schema files; expected exactly one *.cedarschema")]
    ManySchemas(usize),
    #[error("policy bundle has no policy files (*.cedar)")]
    NoPolicies,
    #[error(
        "policy file {file} holds no policy: is it truncated? (a file meant to be empty says so on a line `{EMPTY_MARKER}`)"
    )]
    EmptyPolicyFile { file: String },
    #[error(
        "{MANIFEST_FILE}: {message}; the bundle is refused (run `meshos policy manifest DIR` after a deliberate change)"
    )]
    Manifest { message: String },
    #[error("schema {file}: {message}")]
    Schema { file: String, message: String },
    #[error("org file {file}: {message}")]
    Org { file: String, message: String },
    #[error("policy file {file}: {message}")]
    Parse { file: String, message: String },
    #[error("policy {file}#{index} has no @id annotation; every policy needs a unique @id")]
    MissingId { file: String, index: usize },
    #[error("policy id {id:?} is used twice ({first} and {second})")]
    DuplicateId {
        id: String,
        first: String,
        second: String,
    },
    #[error("policy {id:?} in {file} would widen what its level may do: {message}")]
    Widening {
        file: String,
        id: String,
        message: String,
    },
    #[error("policy bundle fails schema validation:\n{0}")]
    Validation(String),
    #[error("policy {id:?} in {file}: {message}")]
    Annotation {
        file: String,
        id: String,
        message: String,
    },
    #[error(transparent)]
    Models(#[from] ModelRegistryError),
    #[error(transparent)]
    Budgets(#[from] BudgetConfigError),
}

/// Where in the hierarchy a policy file sits; lower levels may only narrow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Global,
    Tenant(String),
    Region(String),
    Team(String),
}

impl Level {
    /// The level of a bundle file from its relative path, or `None` if it is not a policy
    /// location (`global/`, `tenants/T/`, `regions/R/`, `teams/T/`, or the root for global).
    fn of_path(name: &str) -> Option<Level> {
        let parts: Vec<&str> = name.split('/').collect();
        match parts.as_slice() {
            [_file] => Some(Level::Global),
            ["global", _file] => Some(Level::Global),
            ["tenants", t, _file] => Some(Level::Tenant((*t).to_string())),
            ["regions", r, _file] => Some(Level::Region((*r).to_string())),
            ["teams", t, _file] => Some(Level::Team((*t).to_string())),
            _ => None,
        }
    }

    /// The Cedar entity a policy at this level must scope its principal to.
    fn scope(&self) -> Option<String> {
        match self {
            Level::Global => None,
            Level::Tenant(t) => Some(format!("MeshOS::Tenant::\"{t}\"")),
            Level::Region(r) => Some(format!("MeshOS::Region::\"{r}\"")),
            Level::Team(t) => Some(format!("MeshOS::Team::\"{t}\"")),
        }
    }
}

/// What a policy says about itself through annotations, and where it sits.
#[derive(Debug, Clone)]
pub(crate) struct PolicyMeta {
    pub id: String,
    pub reason: String,
    pub obligation: Option<String>,
    pub approver: Option<String>,
    /// For `@obligation("redact")`: the mode and entity kinds it redacts.
    pub redaction: Option<RedactionRule>,
    pub level: Level,
}

#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgFile {
    #[serde(default)]
    regions: BTreeMap<String, RegionSpec>,
    #[serde(default)]
    teams: BTreeMap<String, TeamSpec>,
    /// agent id → team
    #[serde(default)]
    agents: BTreeMap<String, String>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionSpec {
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamSpec {
    region: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
}

/// Where an agent sits in the organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement<'a> {
    pub team: Option<&'a str>,
    pub region: Option<&'a str>,
}

/// A map keyed by an optional name, looked up by `Option<&str>` so that finding a request's
/// slice allocates nothing.
#[derive(Debug)]
struct ByName<T> {
    none: Option<T>,
    named: HashMap<String, T>,
}

impl<T> Default for ByName<T> {
    fn default() -> Self {
        ByName {
            none: None,
            named: HashMap::new(),
        }
    }
}

impl<T: Default> ByName<T> {
    fn entry(&mut self, key: Option<&str>) -> &mut T {
        match key {
            None => self.none.get_or_insert_with(T::default),
            Some(k) => self.named.entry(k.to_string()).or_default(),
        }
    }
}

impl<T> ByName<T> {
    fn insert(&mut self, key: Option<&str>, value: T) {
        match key {
            None => self.none = Some(value),
            Some(k) => {
                self.named.insert(k.to_string(), value);
            }
        }
    }

    fn get(&self, key: Option<&str>) -> Option<&T> {
        match key {
            None => self.none.as_ref(),
            Some(k) => self.named.get(k),
        }
    }

    #[cfg(test)]
    fn values(&self) -> impl Iterator<Item = &T> {
        self.none.iter().chain(self.named.values())
    }
}

/// The slices by tenant folder (`None`: a tenant without one), then region, then team.
type Slices = ByName<ByName<ByName<Slice>>>;

/// The policies of one path, also split by the operation they name: Cedar evaluates every
/// policy of the set it is given, and a policy scoped `resource == Operation::"x"` cannot match
/// a request for another operation, so a request only gets the policies that can apply to it.
#[derive(Debug)]
struct Slice {
    /// Policies whose resource scope does not name one operation.
    any_operation: SlicePolicies,
    /// For each operation some policy names: `any_operation` plus the policies naming it.
    per_operation: HashMap<String, SlicePolicies>,
}

/// The policies one request is decided by: as a Cedar policy set (the reference, and the
/// evaluator when some policy could not be compiled) and, when every one of them compiled, as
/// compiled programs that give Cedar's answer without building Cedar's request.
#[derive(Debug)]
pub(crate) struct SlicePolicies {
    pub cedar: PolicySet,
    pub compiled: Option<CompiledSet>,
    /// Which stored facts some policy here reads, for `Bundle::facts_needed`.
    pub reads: FactReads,
}

#[cfg(test)]
impl SlicePolicies {
    /// The slice has compiled policies, or one of its policies reads the tool arguments, which
    /// only Cedar evaluates (so only slices of tool-call operations lose the compiled path).
    pub(crate) fn compiled_unless_it_reads_arguments(&self) -> bool {
        self.compiled.is_some()
            || self
                .cedar
                .policies()
                .any(|p| p.to_string().contains("context.arguments"))
    }
}

/// Each policy's compiled form, or why it has none, by policy id.
type CompiledPolicies = HashMap<PolicyId, Result<CompiledPolicy, CompileError>>;

/// Which stored facts each policy reads, by policy id.
type PolicyReads = HashMap<PolicyId, FactReads>;

/// The compiled policies of one path, specialized to it: `None` for a policy that cannot
/// match there; missing for a policy that could not be compiled.
type PathPrograms<'p> = HashMap<&'p PolicyId, Option<Arc<CompiledPolicy>>>;

const OPERATION_TYPE: &str = compiled::entity_type::OPERATION;

/// The operation a policy's resource scope pins, if it pins one. `in` counts too: operations
/// have no parents (the engine builds them alone), so `resource in Operation::"x"` matches only
/// `x`.
fn pinned_operation(policy: &Policy) -> Option<String> {
    match policy.resource_constraint() {
        ResourceConstraint::Eq(uid) | ResourceConstraint::In(uid)
            if uid.type_name().to_string() == OPERATION_TYPE =>
        {
            Some(uid.id().unescaped().to_string())
        }
        _ => None,
    }
}

/// A validated, ready-to-evaluate policy bundle.
#[derive(Debug)]
pub struct Bundle {
    pub(crate) schema: Schema,
    pub(crate) meta: HashMap<PolicyId, PolicyMeta>,
    org: OrgFile,
    /// Policies on each path (tenant folder?, region?, team?), precomputed so a request
    /// evaluates only the policies that can apply to it.
    slices: Slices,
    tenant_folders: BTreeSet<String>,
    models: ModelRegistry,
    budgets: BudgetConfig,
    /// The schema's `ToolArguments` type, when it declares one (`arguments.rs`).
    arguments: Option<crate::ArgumentSchema>,
    version: String,
    files: Vec<BundleFile>,
}

macro_rules! default_file {
    ($path:literal) => {
        (
            $path,
            include_str!(concat!("../../policies/default/", $path)),
        )
    };
}

const DEFAULT_BUNDLE: &[(&str, &str)] = &[
    default_file!("schema.cedarschema"),
    default_file!("org.toml"),
    default_file!("models.toml"),
    default_file!("budgets.toml"),
    default_file!("global/budgets.cedar"),
    default_file!("global/baseline.cedar"),
    default_file!("global/models.cedar"),
    default_file!("global/actions.cedar"),
    default_file!("global/data.cedar"),
    default_file!("global/heal.cedar"),
    default_file!("global/gateway.cedar"),
    default_file!("regions/eu/residency.cedar"),
    default_file!("regions/us/ssn.cedar"),
    default_file!("teams/support/no-money.cedar"),
    default_file!("teams/billing/refunds.cedar"),
    default_file!("teams/billing/payment-data.cedar"),
    default_file!("teams/research/models.cedar"),
];

const ORG_FILE: &str = "org.toml";

/// The bundle's manifest: one `<sha256 hex>  <path>` line per file (`sha256sum` format). When
/// present, every load checks it, so a file cut short, lost or added is refused and the last
/// good bundle keeps serving. Opt-in (`meshos policy manifest DIR`): bundles edited by hand
/// and the embedded default carry none.
pub const MANIFEST_FILE: &str = "bundle.sha256";

/// The line a policy file holds when it is meant to hold no policy (a placeholder), so an
/// empty file is otherwise taken for a truncated one.
pub const EMPTY_MARKER: &str = "// meshos: empty";

impl Bundle {
    /// The bundle shipped in the repository (`policies/default`), compiled into the binary so a
    /// fresh install serves real policies without any files on disk.
    pub fn embedded_default() -> Result<Bundle, BundleError> {
        Bundle::from_files(
            DEFAULT_BUNDLE
                .iter()
                .map(|(name, text)| BundleFile {
                    name: (*name).to_string(),
                    text: (*text).to_string(),
                })
                .collect(),
        )
    }

    /// Loads a bundle directory: the schema, `org.toml` and root `*.cedar` files, plus the
    /// policy folders `global/`, `tenants/*/`, `regions/*/` and `teams/*/`. Other folders
    /// (such as `tests/`) are not part of the bundle.
    pub fn load_dir(dir: &Path) -> Result<Bundle, BundleError> {
        Bundle::from_files(read_bundle_files(dir)?)
    }

    /// Parses and validates a bundle. The version is a digest of the files, so two replicas
    /// serving the same files report the same version.
    pub fn from_files(mut files: Vec<BundleFile>) -> Result<Bundle, BundleError> {
        files.sort_by(|a, b| a.name.cmp(&b.name));
        check_manifest(&files)?;
        // Checked; the bundle's files are what it is made of.
        files.retain(|f| f.name != MANIFEST_FILE);
        let schemas: Vec<&BundleFile> = files
            .iter()
            .filter(|f| f.name.ends_with(".cedarschema"))
            .collect();
        let schema_file = match schemas.as_slice() {
            [] => return Err(BundleError::NoSchema),
            [one] => *one,
            many => return Err(BundleError::ManySchemas(many.len())),
        };
        let (schema, _warnings) =
            Schema::from_cedarschema_str(&schema_file.text).map_err(|e| BundleError::Schema {
                file: schema_file.name.clone(),
                message: format!("{e:?}"),
            })?;
        let arguments =
            crate::ArgumentSchema::from_schema_text(&schema_file.text).map_err(|message| {
                BundleError::Schema {
                    file: schema_file.name.clone(),
                    message,
                }
            })?;
        let org = match files.iter().find(|f| f.name == ORG_FILE) {
            Some(f) => parse_org(&f.text)?,
            None => OrgFile::default(),
        };
        let models = match files.iter().find(|f| f.name == MODELS_FILE) {
            Some(f) => ModelRegistry::from_toml(&f.text)?,
            None => ModelRegistry::default(),
        };
        let budgets = match files.iter().find(|f| f.name == BUDGETS_FILE) {
            Some(f) => BudgetConfig::from_toml(&f.text)?,
            None => BudgetConfig::default(),
        };
        if let Some(team) = budgets.team_names().find(|t| !org.teams.contains_key(*t)) {
            return Err(BundleError::Org {
                file: BUDGETS_FILE.into(),
                message: format!(
                    "[teams.{team}] sets limits for a team {ORG_FILE} does not define"
                ),
            });
        }

        let mut all = PolicySet::new();
        let mut meta = HashMap::new();
        let mut origin: HashMap<String, String> = HashMap::new();
        let mut by_level: BTreeMap<Level, Vec<Policy>> = BTreeMap::new();
        let policy_files: Vec<&BundleFile> = files
            .iter()
            .filter(|f| f.name.ends_with(".cedar"))
            .collect();
        if policy_files.is_empty() {
            return Err(BundleError::NoPolicies);
        }
        for file in policy_files {
            let level = Level::of_path(&file.name).ok_or_else(|| BundleError::Parse {
                file: file.name.clone(),
                message: "not a policy location; expected the root, global/, tenants/T/, regions/R/ or teams/T/".into(),
            })?;
            check_level_known(&org, &level, &file.name)?;
            let parsed = PolicySet::from_str(&file.text).map_err(|e| BundleError::Parse {
                file: file.name.clone(),
                message: format!("{e}"),
            })?;
            if parsed.policies().next().is_none()
                && !file.text.lines().any(|l| l.trim() == EMPTY_MARKER)
            {
                return Err(BundleError::EmptyPolicyFile {
                    file: file.name.clone(),
                });
            }
            for (index, policy) in parsed.policies().enumerate() {
                let id = policy
                    .annotation("id")
                    .ok_or_else(|| BundleError::MissingId {
                        file: file.name.clone(),
                        index,
                    })?
                    .to_string();
                let here = format!("{}#{index}", file.name);
                if let Some(first) = origin.insert(id.clone(), here.clone()) {
                    return Err(BundleError::DuplicateId {
                        id,
                        first,
                        second: here,
                    });
                }
                check_narrows(policy, &level, &file.name, &id)?;
                let redaction = redaction_rule(policy, &file.name, &id)?;
                let pid = PolicyId::new(&id);
                let renamed = policy.new_id(pid.clone());
                all.add(renamed.clone()).map_err(|e| BundleError::Parse {
                    file: file.name.clone(),
                    message: e.to_string(),
                })?;
                by_level.entry(level.clone()).or_default().push(renamed);
                meta.insert(
                    pid,
                    PolicyMeta {
                        reason: policy
                            .annotation("reason")
                            .unwrap_or("no @reason given")
                            .to_string(),
                        obligation: policy.annotation("obligation").map(str::to_string),
                        approver: policy.annotation("approver").map(str::to_string),
                        redaction,
                        level: level.clone(),
                        id,
                    },
                );
            }
        }

        let validation = Validator::new(schema.clone()).validate(&all, ValidationMode::Strict);
        if !validation.validation_passed() {
            let errors: Vec<String> = validation
                .validation_errors()
                .map(|e| format!("- {e}"))
                .collect();
            return Err(BundleError::Validation(errors.join("\n")));
        }

        let tenant_folders: BTreeSet<String> = by_level
            .keys()
            .filter_map(|l| match l {
                Level::Tenant(t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        // Compiled once per policy, then specialized per path.
        let compiled: CompiledPolicies = all
            .policies()
            .map(|p| {
                (
                    p.id().clone(),
                    compiled::compile(p, &crate::engine::CONTEXT_ATTRIBUTES),
                )
            })
            .collect();
        // Read once per policy at load: the text scan is far too slow for the request path.
        let reads: PolicyReads = all
            .policies()
            .map(|p| (p.id().clone(), FactReads::of_policy_text(&p.to_string())))
            .collect();
        let slices = build_slices(&org, &tenant_folders, &by_level, &compiled, &reads)?;

        let version = files_digest(&files);
        Ok(Bundle {
            schema,
            meta,
            org,
            slices,
            tenant_folders,
            models,
            budgets,
            arguments,
            version,
            files,
        })
    }

    /// The schema's `ToolArguments` type: what of a tool call's arguments policies can read.
    pub fn argument_schema(&self) -> Option<&crate::ArgumentSchema> {
        self.arguments.as_ref()
    }

    /// The registry of approved model versions (`models.toml`; empty without one).
    pub fn models(&self) -> &ModelRegistry {
        &self.models
    }

    /// Budgets and rate limits (`budgets.toml`; none without one).
    pub fn budgets(&self) -> &BudgetConfig {
        &self.budgets
    }

    /// Digest of the bundle's files; recorded with every decision.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The validated Cedar schema (for tools that check requests or policies against it).
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn files(&self) -> &[BundleFile] {
        &self.files
    }

    /// The `@id`s of the bundle's policies, sorted.
    pub fn policy_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.meta.values().map(|m| m.id.as_str()).collect();
        ids.sort_unstable();
        ids
    }

    /// The agent's team and region from `org.toml` (both `None` for unlisted agents).
    pub fn placement(&self, agent_id: &str) -> Placement<'_> {
        let team = self.org.agents.get(agent_id).map(String::as_str);
        let region = team
            .and_then(|t| self.org.teams.get(t))
            .map(|t| t.region.as_str());
        Placement { team, region }
    }

    /// The policies that can apply to an agent of a tenant taking `operation`: global, the
    /// tenant's folder, the agent's region and team, minus those pinned to other operations.
    pub(crate) fn slice_for(
        &self,
        tenant: &str,
        placement: &Placement<'_>,
        operation: &str,
    ) -> Option<&SlicePolicies> {
        let tenant_key = self.tenant_folders.contains(tenant).then_some(tenant);
        let slice = self
            .slices
            .get(tenant_key)?
            .get(placement.region)?
            .get(placement.team)?;
        Some(
            slice
                .per_operation
                .get(operation)
                .unwrap_or(&slice.any_operation),
        )
    }

    /// Every slice's policies, to check which slices run compiled.
    #[cfg(test)]
    pub(crate) fn all_slice_policies(&self) -> impl Iterator<Item = &SlicePolicies> {
        self.slices
            .values()
            .flat_map(ByName::values)
            .flat_map(ByName::values)
            .flat_map(|s| std::iter::once(&s.any_operation).chain(s.per_operation.values()))
    }
}

/// The files of a bundle directory, as `Bundle::load_dir` reads them (without parsing), so a
/// watcher can tell whether anything changed before paying for a reload.
pub fn read_bundle_files(dir: &Path) -> Result<Vec<BundleFile>, BundleError> {
    let mut files = Vec::new();
    read_policy_files(dir, "", &mut files)?;
    read_policy_files(&dir.join("global"), "global/", &mut files)?;
    for level in ["tenants", "regions", "teams"] {
        for (sub, name) in subdirs(&dir.join(level))? {
            read_policy_files(&sub, &format!("{level}/{name}/"), &mut files)?;
        }
    }
    let manifest = dir.join(MANIFEST_FILE);
    match std::fs::read_to_string(&manifest) {
        Ok(text) => files.push(BundleFile {
            name: MANIFEST_FILE.into(),
            text,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(BundleError::Io {
                path: manifest.display().to_string(),
                source,
            });
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// The manifest for `files` (any manifest among them left out): one `<sha256>  <path>` line per
/// file, sorted by path.
pub fn manifest_text(files: &[BundleFile]) -> String {
    let mut lines: Vec<(&str, String)> = files
        .iter()
        .filter(|f| f.name != MANIFEST_FILE)
        .map(|f| {
            (
                f.name.as_str(),
                hex::encode(Sha256::digest(f.text.as_bytes())),
            )
        })
        .collect();
    lines.sort();
    lines
        .into_iter()
        .map(|(name, digest)| format!("{digest}  {name}\n"))
        .collect()
}

/// When the files carry a manifest, every file must be listed with its digest and every
/// listed file must be there.
fn check_manifest(files: &[BundleFile]) -> Result<(), BundleError> {
    let Some(manifest) = files.iter().find(|f| f.name == MANIFEST_FILE) else {
        return Ok(());
    };
    let bad = |message: String| BundleError::Manifest { message };
    let mut listed: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, line) in manifest.text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((digest, name)) = line.split_once("  ") else {
            return Err(bad(format!(
                "line {}: expected `<sha256 hex>  <path>`",
                i + 1
            )));
        };
        if listed.insert(name.trim(), digest.trim()).is_some() {
            return Err(bad(format!("line {}: {name} is listed twice", i + 1)));
        }
    }
    for f in files.iter().filter(|f| f.name != MANIFEST_FILE) {
        match listed.remove(f.name.as_str()) {
            None => return Err(bad(format!("{} is not listed", f.name))),
            Some(digest) if digest != hex::encode(Sha256::digest(f.text.as_bytes())) => {
                return Err(bad(format!(
                    "{} does not match its digest (changed, or cut short)",
                    f.name
                )));
            }
            Some(_) => {}
        }
    }
    match listed.keys().next() {
        Some(missing) => Err(bad(format!("{missing} is listed but missing"))),
        None => Ok(()),
    }
}

/// The bundle version of a set of files: a digest of names and contents, order-independent.
/// The manifest is not part of it: it only vouches for the other files.
pub fn files_digest(files: &[BundleFile]) -> String {
    let mut sorted: Vec<&BundleFile> = files.iter().filter(|f| f.name != MANIFEST_FILE).collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut digest = Sha256::new();
    for f in sorted {
        digest.update(f.name.as_bytes());
        digest.update([0]);
        digest.update(f.text.as_bytes());
        digest.update([0]);
    }
    format!("sha256:{}", &hex::encode(digest.finalize())[..16])
}

fn parse_org(text: &str) -> Result<OrgFile, BundleError> {
    let org: OrgFile = toml::from_str(text).map_err(|e| BundleError::Org {
        file: ORG_FILE.into(),
        message: e.to_string(),
    })?;
    for (team, spec) in &org.teams {
        if !org.regions.contains_key(&spec.region) {
            return Err(BundleError::Org {
                file: ORG_FILE.into(),
                message: format!(
                    "team {team:?} is in region {:?}, which [regions] does not define",
                    spec.region
                ),
            });
        }
    }
    for (agent, team) in &org.agents {
        if !org.teams.contains_key(team) {
            return Err(BundleError::Org {
                file: ORG_FILE.into(),
                message: format!(
                    "agent {agent:?} is in team {team:?}, which [teams] does not define"
                ),
            });
        }
    }
    Ok(org)
}

fn check_level_known(org: &OrgFile, level: &Level, file: &str) -> Result<(), BundleError> {
    let missing = match level {
        Level::Region(r) if !org.regions.contains_key(r) => Some(format!("region {r:?}")),
        Level::Team(t) if !org.teams.contains_key(t) => Some(format!("team {t:?}")),
        _ => None,
    };
    match missing {
        Some(what) => Err(BundleError::Parse {
            file: file.to_string(),
            message: format!("{what} has policies but {ORG_FILE} does not define it"),
        }),
        None => Ok(()),
    }
}

/// The redaction a `@obligation("redact")` policy asks for: `@redact_mode` (mask, hash or
/// pseudonym; default mask) and `@redact_entities` (kinds separated by spaces or commas;
/// default every finding). The annotations are errors anywhere else, so a typo cannot
/// silently weaken redaction.
fn redaction_rule(
    policy: &Policy,
    file: &str,
    id: &str,
) -> Result<Option<RedactionRule>, BundleError> {
    let error = |message: String| BundleError::Annotation {
        file: file.to_string(),
        id: id.to_string(),
        message,
    };
    let mode = policy.annotation("redact_mode");
    let entities = policy.annotation("redact_entities");
    if policy.annotation("obligation") != Some("redact") {
        return match mode.or(entities) {
            Some(_) => Err(error(
                "@redact_mode and @redact_entities need @obligation(\"redact\")".into(),
            )),
            None => Ok(None),
        };
    }
    let mode = match mode {
        None => RedactionMode::Mask,
        Some(text) => RedactionMode::parse(text).ok_or_else(|| {
            error(format!(
                "@redact_mode({text:?}) is not a redaction mode; expected mask, hash or pseudonym"
            ))
        })?,
    };
    let entities = match entities {
        None => None,
        Some(text) => {
            let list: Vec<String> = text
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if list.is_empty() {
                return Err(error(
                    "@redact_entities is empty; expected entity kinds such as \"EMAIL PHONE\""
                        .into(),
                ));
            }
            Some(list)
        }
    };
    Ok(Some(RedactionRule { mode, entities }))
}

/// Lower levels may only narrow: forbid, or permit that only adds an obligation; and each
/// policy must be scoped to its own level's entity so it cannot touch anyone else's agents.
fn check_narrows(policy: &Policy, level: &Level, file: &str, id: &str) -> Result<(), BundleError> {
    let Some(scope) = level.scope() else {
        return Ok(());
    };
    let widening = |message: String| BundleError::Widening {
        file: file.to_string(),
        id: id.to_string(),
        message,
    };
    if policy.effect() == Effect::Permit && policy.annotation("obligation").is_none() {
        return Err(widening(
            "below the global level a permit must carry an @obligation (it may add obligations, not grant access); use forbid to restrict".into(),
        ));
    }
    let scoped = match policy.principal_constraint() {
        PrincipalConstraint::In(uid) => uid.to_string() == scope,
        _ => false,
    };
    if !scoped {
        return Err(widening(format!(
            "its principal must be scoped to its level: `principal in {scope}`"
        )));
    }
    Ok(())
}

fn build_slices(
    org: &OrgFile,
    tenant_folders: &BTreeSet<String>,
    by_level: &BTreeMap<Level, Vec<Policy>>,
    compiled: &CompiledPolicies,
    reads: &PolicyReads,
) -> Result<Slices, BundleError> {
    let mut paths: Vec<(Option<String>, Option<String>)> = vec![(None, None)];
    paths.extend(org.regions.keys().map(|r| (Some(r.clone()), None)));
    paths.extend(
        org.teams
            .iter()
            .map(|(t, spec)| (Some(spec.region.clone()), Some(t.clone()))),
    );
    let tenants: Vec<Option<String>> = std::iter::once(None)
        .chain(tenant_folders.iter().cloned().map(Some))
        .collect();
    let mut slices = Slices::default();
    for tenant in &tenants {
        for (region, team) in &paths {
            let mut levels = vec![Level::Global];
            levels.extend(tenant.clone().map(Level::Tenant));
            levels.extend(region.clone().map(Level::Region));
            levels.extend(team.clone().map(Level::Team));
            let add = |set: &mut PolicySet, p: &Policy, level: &Level| {
                set.add(p.clone()).map_err(|e| BundleError::Parse {
                    file: format!("{level:?}"),
                    message: e.to_string(),
                })
            };
            let on_path: Vec<(&Level, &Policy)> = levels
                .iter()
                .flat_map(|level| {
                    by_level
                        .get(level)
                        .into_iter()
                        .flatten()
                        .map(move |p| (level, p))
                })
                .collect();
            let facts = SliceFacts {
                tenant: tenant.as_deref(),
                tenant_folders,
                region: region.as_deref(),
                team: team.as_deref(),
            };
            let programs: PathPrograms<'_> = on_path
                .iter()
                .filter_map(|(_, p)| {
                    let program = compiled.get(p.id())?.as_ref().ok()?;
                    Some((p.id(), program.specialize(&facts).map(Arc::new)))
                })
                .collect();
            let mut any_operation = PolicySet::new();
            let mut pinned: BTreeMap<String, Vec<(&Level, &Policy)>> = BTreeMap::new();
            for (level, p) in &on_path {
                match pinned_operation(p) {
                    Some(op) => pinned.entry(op).or_default().push((level, p)),
                    None => add(&mut any_operation, p, level)?,
                }
            }
            let mut per_operation = HashMap::new();
            for (op, policies) in pinned {
                let mut set = any_operation.clone();
                for (level, p) in policies {
                    add(&mut set, p, level)?;
                }
                per_operation.insert(op, slice_policies(set, &programs, reads));
            }
            let slice = Slice {
                any_operation: slice_policies(any_operation, &programs, reads),
                per_operation,
            };
            slices
                .entry(tenant.as_deref())
                .entry(region.as_deref())
                .insert(team.as_deref(), slice);
        }
    }
    Ok(slices)
}

/// A slice's policy set with its compiled form, which exists only if every policy compiled.
fn slice_policies(
    cedar: PolicySet,
    programs: &PathPrograms<'_>,
    reads: &PolicyReads,
) -> SlicePolicies {
    let compiled: Option<Vec<Option<Arc<CompiledPolicy>>>> = cedar
        .policies()
        .map(|p| programs.get(p.id()).cloned())
        .collect();
    // A policy missing from `reads` cannot happen (both come from the same set); should it,
    // it counts as reading everything, so no fact is ever left out.
    let reads = cedar.policies().fold(FactReads::default(), |acc, p| {
        acc.union(reads.get(p.id()).copied().unwrap_or(FactReads::ALL))
    });
    SlicePolicies {
        compiled: compiled.map(|all| CompiledSet::new(all.into_iter().flatten().collect())),
        cedar,
        reads,
    }
}

fn read_policy_files(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<BundleFile>,
) -> Result<(), BundleError> {
    let io = |source| BundleError::Io {
        path: dir.display().to_string(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        // Every folder but the root is optional.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !prefix.is_empty() => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    for entry in entries {
        let path = entry.map_err(io)?.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let wanted = name.ends_with(".cedar")
            || (prefix.is_empty()
                && (name.ends_with(".cedarschema")
                    || name == ORG_FILE
                    || name == MODELS_FILE
                    || name == BUDGETS_FILE));
        if !wanted || !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|source| BundleError::Io {
            path: path.display().to_string(),
            source,
        })?;
        out.push(BundleFile {
            name: format!("{prefix}{name}"),
            text,
        });
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Result<Vec<(std::path::PathBuf, String)>, BundleError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(BundleError::Io {
                path: dir.display().to_string(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir()
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            out.push((path.clone(), name.to_string()));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_bundle_loads_and_validates() {
        let b = Bundle::embedded_default().unwrap();
        assert!(b.version().starts_with("sha256:"));
        assert!(b.policy_ids().contains(&"model-allowlist"));
        assert!(b.policy_ids().contains(&"eu-residency-personal-data"));
    }

    #[test]
    fn bundle_with_a_type_error_is_rejected_with_the_problem() {
        let mut files: Vec<BundleFile> = DEFAULT_BUNDLE
            .iter()
            .filter(|(n, _)| *n != MANIFEST_FILE)
            .map(|(n, t)| BundleFile {
                name: n.to_string(),
                text: t.to_string(),
            })
            .collect();
        files.push(BundleFile {
            name: "broken.cedar".into(),
            text: "@id(\"typo\") forbid (principal, action, resource) when { context.modle == \"x\" };"
                .into(),
        });
        let err = Bundle::from_files(files).unwrap_err();
        assert!(matches!(err, BundleError::Validation(_)), "{err}");
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let files = vec![
            BundleFile {
                name: "schema.cedarschema".into(),
                text: DEFAULT_BUNDLE[0].1.into(),
            },
            BundleFile {
                name: "a.cedar".into(),
                text: "@id(\"p\") permit (principal, action, resource);".into(),
            },
            BundleFile {
                name: "b.cedar".into(),
                text: "@id(\"p\") forbid (principal, action, resource);".into(),
            },
        ];
        let err = Bundle::from_files(files).unwrap_err();
        assert!(err.to_string().contains("\"p\""), "{err}");
    }

    fn with_org(extra: Vec<(&str, &str)>) -> Result<Bundle, BundleError> {
        let mut files = vec![
            BundleFile {
                name: "schema.cedarschema".into(),
                text: DEFAULT_BUNDLE[0].1.into(),
            },
            BundleFile {
                name: "org.toml".into(),
                text: "[regions.eu]\n[teams.ops]\nregion = 'eu'\n[agents]\nops-bot = 'ops'\n"
                    .into(),
            },
            BundleFile {
                name: "global/base.cedar".into(),
                text: "@id(\"base\") permit (principal, action, resource);".into(),
            },
        ];
        files.extend(extra.into_iter().map(|(n, t)| BundleFile {
            name: n.into(),
            text: t.into(),
        }));
        Bundle::from_files(files)
    }

    #[test]
    fn lower_levels_may_only_narrow_within_their_scope() {
        let ok = with_org(vec![(
            "teams/ops/a.cedar",
            "@id(\"a\") forbid (principal in MeshOS::Team::\"ops\", action, resource);",
        )]);
        assert!(ok.is_ok(), "{:?}", ok.err());
        let grant = with_org(vec![(
            "teams/ops/a.cedar",
            "@id(\"a\") permit (principal in MeshOS::Team::\"ops\", action, resource);",
        )])
        .unwrap_err();
        assert!(matches!(grant, BundleError::Widening { .. }), "{grant}");
        let unscoped = with_org(vec![(
            "regions/eu/a.cedar",
            "@id(\"a\") forbid (principal, action, resource);",
        )])
        .unwrap_err();
        assert!(
            unscoped
                .to_string()
                .contains("principal in MeshOS::Region::\"eu\""),
            "{unscoped}"
        );
        let other_team = with_org(vec![(
            "teams/ops/a.cedar",
            "@id(\"a\") forbid (principal in MeshOS::Region::\"eu\", action, resource);",
        )])
        .unwrap_err();
        assert!(
            matches!(other_team, BundleError::Widening { .. }),
            "{other_team}"
        );
        let unknown = with_org(vec![(
            "teams/sales/a.cedar",
            "@id(\"a\") forbid (principal in MeshOS::Team::\"sales\", action, resource);",
        )])
        .unwrap_err();
        assert!(unknown.to_string().contains("team \"sales\""), "{unknown}");
    }

    #[test]
    fn org_file_errors_name_the_problem() {
        let files = vec![
            BundleFile {
                name: "schema.cedarschema".into(),
                text: DEFAULT_BUNDLE[0].1.into(),
            },
            BundleFile {
                name: "org.toml".into(),
                text: "[agents]\nbot = 'ghost-team'\n".into(),
            },
            BundleFile {
                name: "a.cedar".into(),
                text: "@id(\"p\") permit (principal, action, resource);".into(),
            },
        ];
        let err = Bundle::from_files(files).unwrap_err().to_string();
        assert!(err.contains("ghost-team"), "{err}");
    }

    #[test]
    fn shipped_directory_loads_like_the_embedded_bundle() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/default");
        let from_disk = Bundle::load_dir(&dir).unwrap();
        let embedded = Bundle::embedded_default().unwrap();
        assert_eq!(from_disk.version(), embedded.version());
        assert_eq!(from_disk.placement("billing-bot").region, Some("eu"));
    }

    #[test]
    fn policy_without_id_is_rejected() {
        let files = vec![
            BundleFile {
                name: "schema.cedarschema".into(),
                text: DEFAULT_BUNDLE[0].1.into(),
            },
            BundleFile {
                name: "a.cedar".into(),
                text: "permit (principal, action, resource);".into(),
            },
        ];
        assert!(matches!(
            Bundle::from_files(files),
            Err(BundleError::MissingId { .. })
        ));
    }
}
