//! The registry of approved model versions (`models.toml` at the bundle root).
//!
//! A model allowlist of bare names lets "gpt-4o" through whatever snapshot the provider serves
//! today; auditors want to know which versions were reviewed. The registry lists, per model
//! family, the versions that are approved and the ones that were retired, and whether a bare
//! alias (the provider's "latest") is acceptable. Requests name a model as `family`,
//! `family@version` or `family-version` (the providers' dated ids, e.g. `gpt-4o-2024-08-06`).
//! The resolution is passed to Cedar as `context.model_status`, so the policy that refuses
//! unapproved models stays a one-line rule in the bundle.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The registry file's name at the bundle root.
pub const MODELS_FILE: &str = "models.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelsFile {
    #[serde(default)]
    models: BTreeMap<String, ModelSpec>,
}

/// One model family in the registry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Who serves it, e.g. `openai`, `anthropic`, `self-hosted`.
    pub provider: String,
    /// Versions that were reviewed and may be used.
    #[serde(default)]
    pub approved: Vec<String>,
    /// Versions that must no longer be used (kept so a request for one is explained).
    #[serde(default)]
    pub retired: Vec<String>,
    /// Whether the bare family name (the provider's moving alias) is accepted.
    #[serde(default)]
    pub allow_alias: bool,
}

/// How a requested model resolved against the registry; `as_str` is what Cedar sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelStatus {
    /// The request names no model.
    None,
    Approved,
    /// The bare family name, and the registry does not accept the alias.
    AliasNotAllowed,
    /// A known family, but a version the registry does not list.
    UnapprovedVersion,
    Retired,
    /// A family the registry does not know.
    Unknown,
}

impl ModelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelStatus::None => "none",
            ModelStatus::Approved => "approved",
            ModelStatus::AliasNotAllowed => "alias_not_allowed",
            ModelStatus::UnapprovedVersion => "unapproved_version",
            ModelStatus::Retired => "retired",
            ModelStatus::Unknown => "unknown",
        }
    }
}

/// A requested model, resolved: its family and version as far as the registry could tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelResolution {
    pub status: ModelStatus,
    pub family: Option<String>,
    pub version: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{MODELS_FILE}: {0}")]
pub struct ModelRegistryError(String);

/// Approved model versions per family. Without a `models.toml`, the registry is empty and
/// every model resolves as `unknown`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelRegistry {
    families: BTreeMap<String, ModelSpec>,
}

impl ModelRegistry {
    pub fn from_toml(text: &str) -> Result<ModelRegistry, ModelRegistryError> {
        let file: ModelsFile =
            toml::from_str(text).map_err(|e| ModelRegistryError(e.to_string()))?;
        for (family, spec) in &file.models {
            if family.is_empty() || family.contains('@') {
                return Err(ModelRegistryError(format!(
                    "model family {family:?}: expected a non-empty name without '@'"
                )));
            }
            if spec.approved.is_empty() && !spec.allow_alias {
                return Err(ModelRegistryError(format!(
                    "model family {family:?} approves no version and not its alias; \
                     remove it or list `approved` versions"
                )));
            }
            if let Some(v) = spec.approved.iter().find(|v| spec.retired.contains(v)) {
                return Err(ModelRegistryError(format!(
                    "model family {family:?}: version {v:?} is both approved and retired"
                )));
            }
        }
        Ok(ModelRegistry {
            families: file.models,
        })
    }

    pub fn families(&self) -> impl Iterator<Item = (&str, &ModelSpec)> {
        self.families.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Resolves `family`, `family@version` or `family-version`. For the dashed form the
    /// longest registered family that prefixes the name wins, so `gpt-4o-mini-2024-07-18`
    /// resolves to `gpt-4o-mini`, not to `gpt-4o` with version `mini-2024-07-18`.
    pub fn resolve(&self, model: Option<&str>) -> ModelResolution {
        let Some(model) = model else {
            return ModelResolution {
                status: ModelStatus::None,
                family: None,
                version: None,
            };
        };
        let (family, version) = match model.split_once('@') {
            Some((f, v)) => (f, Some(v)),
            None => match self.families.get_key_value(model) {
                Some((f, _)) => (f.as_str(), None),
                None => match self.longest_family_prefix(model) {
                    Some(f) => (f, Some(&model[f.len() + 1..])),
                    None => (model, None),
                },
            },
        };
        let Some(spec) = self.families.get(family) else {
            return ModelResolution {
                status: ModelStatus::Unknown,
                family: Some(family.to_string()),
                version: version.map(str::to_string),
            };
        };
        let status = match version {
            None if spec.allow_alias => ModelStatus::Approved,
            None => ModelStatus::AliasNotAllowed,
            Some(v) if spec.approved.iter().any(|a| a == v) => ModelStatus::Approved,
            Some(v) if spec.retired.iter().any(|r| r == v) => ModelStatus::Retired,
            Some(_) => ModelStatus::UnapprovedVersion,
        };
        ModelResolution {
            status,
            family: Some(family.to_string()),
            version: version.map(str::to_string),
        }
    }

    fn longest_family_prefix(&self, model: &str) -> Option<&str> {
        self.families
            .keys()
            .filter(|f| {
                model.len() > f.len() + 1
                    && model.starts_with(f.as_str())
                    && model.as_bytes()[f.len()] == b'-'
            })
            .max_by_key(|f| f.len())
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> ModelRegistry {
        ModelRegistry::from_toml(
            r#"
            [models.gpt-4o]
            provider = "openai"
            approved = ["2024-08-06", "2024-11-20"]
            retired = ["2024-05-13"]
            allow_alias = true

            [models.gpt-4o-mini]
            provider = "openai"
            approved = ["2024-07-18"]

            [models."llama-3.1-8b"]
            provider = "self-hosted"
            approved = ["instruct-q8"]
            "#,
        )
        .expect("the test registry parses")
    }

    fn status(model: &str) -> ModelStatus {
        registry().resolve(Some(model)).status
    }

    #[test]
    fn versions_resolve_in_every_spelling() {
        assert_eq!(status("gpt-4o"), ModelStatus::Approved);
        assert_eq!(status("gpt-4o@2024-08-06"), ModelStatus::Approved);
        assert_eq!(status("gpt-4o-2024-11-20"), ModelStatus::Approved);
        assert_eq!(status("gpt-4o-2024-05-13"), ModelStatus::Retired);
        assert_eq!(status("gpt-4o@2023-01-01"), ModelStatus::UnapprovedVersion);
        assert_eq!(status("llama-3.1-8b@instruct-q8"), ModelStatus::Approved);
        assert_eq!(status("gpt-3-davinci"), ModelStatus::Unknown);
    }

    #[test]
    fn the_longest_family_wins_and_aliases_need_permission() {
        let r = registry().resolve(Some("gpt-4o-mini-2024-07-18"));
        assert_eq!(r.family.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(r.version.as_deref(), Some("2024-07-18"));
        assert_eq!(r.status, ModelStatus::Approved);
        assert_eq!(status("gpt-4o-mini"), ModelStatus::AliasNotAllowed);
        assert_eq!(registry().resolve(None).status, ModelStatus::None);
    }

    #[test]
    fn contradictory_entries_are_rejected_with_the_family_named() {
        let err = ModelRegistry::from_toml(
            "[models.m]\nprovider = \"x\"\napproved = [\"1\"]\nretired = [\"1\"]\n",
        )
        .map(|_| ())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.contains("\"m\"") && err.contains("both approved and retired"),
            "{err}"
        );
        let err = ModelRegistry::from_toml("[models.m]\nprovder = \"x\"\n")
            .map(|_| ())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("provder"), "{err}");
    }
}
