use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use cedar_policy::{PolicyId, PolicySet, Schema, ValidationMode, Validator};
use sha2::{Digest, Sha256};

/// One file of a bundle: a path relative to the bundle root and its text.
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
    #[error("schema {file}: {message}")]
    Schema { file: String, message: String },
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
    #[error("policy bundle fails schema validation:\n{0}")]
    Validation(String),
}

/// What a policy says about itself through annotations.
#[derive(Debug, Clone)]
pub(crate) struct PolicyMeta {
    pub id: String,
    pub reason: String,
    pub obligation: Option<String>,
    pub approver: Option<String>,
}

/// A validated, ready-to-evaluate policy bundle.
#[derive(Debug)]
pub struct Bundle {
    pub(crate) schema: Schema,
    pub(crate) policies: PolicySet,
    pub(crate) meta: HashMap<PolicyId, PolicyMeta>,
    version: String,
    files: Vec<BundleFile>,
}

const DEFAULT_BUNDLE: &[(&str, &str)] = &[
    (
        "schema.cedarschema",
        include_str!("../../policies/default/schema.cedarschema"),
    ),
    (
        "baseline.cedar",
        include_str!("../../policies/default/baseline.cedar"),
    ),
    (
        "models.cedar",
        include_str!("../../policies/default/models.cedar"),
    ),
    (
        "actions.cedar",
        include_str!("../../policies/default/actions.cedar"),
    ),
    (
        "data.cedar",
        include_str!("../../policies/default/data.cedar"),
    ),
];

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

    /// Loads every `*.cedarschema` and `*.cedar` file directly inside `dir`.
    pub fn load_dir(dir: &Path) -> Result<Bundle, BundleError> {
        let io = |source| BundleError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let is_policy_file = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("cedar" | "cedarschema")
            );
            if !is_policy_file {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|source| BundleError::Io {
                path: path.display().to_string(),
                source,
            })?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push(BundleFile { name, text });
        }
        Bundle::from_files(files)
    }

    /// Parses and validates a bundle. The version is a digest of the files, so two replicas
    /// serving the same files report the same version.
    pub fn from_files(mut files: Vec<BundleFile>) -> Result<Bundle, BundleError> {
        files.sort_by(|a, b| a.name.cmp(&b.name));
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

        let mut policies = PolicySet::new();
        let mut meta = HashMap::new();
        let mut origin: HashMap<String, String> = HashMap::new();
        let policy_files: Vec<&BundleFile> = files
            .iter()
            .filter(|f| f.name.ends_with(".cedar"))
            .collect();
        if policy_files.is_empty() {
            return Err(BundleError::NoPolicies);
        }
        for file in policy_files {
            let parsed = PolicySet::from_str(&file.text).map_err(|e| BundleError::Parse {
                file: file.name.clone(),
                message: format!("{e}"),
            })?;
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
                let pid = PolicyId::new(&id);
                let renamed = policy.new_id(pid.clone());
                policies.add(renamed).map_err(|e| BundleError::Parse {
                    file: file.name.clone(),
                    message: e.to_string(),
                })?;
                meta.insert(
                    pid,
                    PolicyMeta {
                        reason: policy
                            .annotation("reason")
                            .unwrap_or("no @reason given")
                            .to_string(),
                        obligation: policy.annotation("obligation").map(str::to_string),
                        approver: policy.annotation("approver").map(str::to_string),
                        id,
                    },
                );
            }
        }

        let validation = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !validation.validation_passed() {
            let errors: Vec<String> = validation
                .validation_errors()
                .map(|e| format!("- {e}"))
                .collect();
            return Err(BundleError::Validation(errors.join("\n")));
        }

        let mut digest = Sha256::new();
        for f in &files {
            digest.update(f.name.as_bytes());
            digest.update([0]);
            digest.update(f.text.as_bytes());
            digest.update([0]);
        }
        let version = format!("sha256:{}", &hex::encode(digest.finalize())[..16]);
        Ok(Bundle {
            schema,
            policies,
            meta,
            version,
            files,
        })
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
