//! The policy bundle in force, and its hot reload: a changed bundle directory is re-read,
//! validated and swapped in atomically; a bundle that fails validation is rejected with its
//! errors (logged once per distinct content) and the last good one keeps serving.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use meshos_policy::{Bundle, BundleError, files_digest, read_bundle_files};

pub struct PolicyBundle {
    current: RwLock<Arc<Bundle>>,
    dir: Option<PathBuf>,
    /// Digest and error of the last content that failed validation, so the watcher reports
    /// it once and an explicit reload can still say why.
    last_rejected: Mutex<Option<(String, String)>>,
}

#[derive(Debug, PartialEq)]
pub enum ReloadOutcome {
    /// The shipped bundle is compiled in; there is nothing to watch.
    NotWatched,
    Unchanged,
    Reloaded {
        from: String,
        to: String,
    },
    /// The new content was rejected; `error` says why. The previous bundle keeps serving.
    Rejected {
        version: String,
        error: String,
    },
    /// The same rejected content is still there (the watcher already reported it).
    StillRejected {
        version: String,
        error: String,
    },
}

impl ReloadOutcome {
    /// What `POST /v1/policy/reload` and `meshos policy reload` report.
    pub fn to_json(&self, serving: &str) -> serde_json::Value {
        match self {
            ReloadOutcome::NotWatched => serde_json::json!({
                "outcome": "not_watched",
                "serving": serving,
                "message": "the server runs the shipped bundle; start it with --policy-dir to reload from a directory",
            }),
            ReloadOutcome::Unchanged => {
                serde_json::json!({"outcome": "unchanged", "serving": serving})
            }
            ReloadOutcome::Reloaded { from, to } => {
                serde_json::json!({"outcome": "reloaded", "from": from, "serving": to})
            }
            ReloadOutcome::Rejected { version, error }
            | ReloadOutcome::StillRejected { version, error } => serde_json::json!({
                "outcome": "rejected",
                "rejected_version": version,
                "errors": error,
                "serving": serving,
            }),
        }
    }
}

impl PolicyBundle {
    pub fn fixed(bundle: Bundle) -> PolicyBundle {
        PolicyBundle {
            current: RwLock::new(Arc::new(bundle)),
            dir: None,
            last_rejected: Mutex::new(None),
        }
    }

    pub fn from_dir(dir: PathBuf) -> Result<PolicyBundle, BundleError> {
        let bundle = Bundle::load_dir(&dir)?;
        Ok(PolicyBundle {
            current: RwLock::new(Arc::new(bundle)),
            dir: Some(dir),
            last_rejected: Mutex::new(None),
        })
    }

    /// The bundle to evaluate with; a reload never changes a bundle already handed out.
    pub fn current(&self) -> Arc<Bundle> {
        match self.current.read() {
            Ok(b) => b.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the directory and swaps in the new bundle if it changed and validates.
    pub fn reload(&self) -> ReloadOutcome {
        let Some(dir) = &self.dir else {
            return ReloadOutcome::NotWatched;
        };
        let files = match read_bundle_files(dir) {
            Ok(f) => f,
            Err(e) => {
                return ReloadOutcome::Rejected {
                    version: String::new(),
                    error: e.to_string(),
                };
            }
        };
        let version = files_digest(&files);
        let current = self.current();
        if version == current.version() {
            return ReloadOutcome::Unchanged;
        }
        let mut last_rejected = match self.last_rejected.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((rejected, error)) = last_rejected.as_ref()
            && *rejected == version
        {
            return ReloadOutcome::StillRejected {
                version: version.clone(),
                error: error.clone(),
            };
        }
        match Bundle::from_files(files) {
            Ok(bundle) => {
                let to = bundle.version().to_string();
                match self.current.write() {
                    Ok(mut slot) => *slot = Arc::new(bundle),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(bundle),
                }
                *last_rejected = None;
                ReloadOutcome::Reloaded {
                    from: current.version().to_string(),
                    to,
                }
            }
            Err(e) => {
                *last_rejected = Some((version.clone(), e.to_string()));
                ReloadOutcome::Rejected {
                    version,
                    error: e.to_string(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{copy_tree, shipped_bundle_dir};
    use meshos_policy::{EMPTY_MARKER, MANIFEST_FILE, manifest_text};

    #[test]
    fn a_valid_change_is_swapped_in_and_a_broken_one_keeps_the_last_good() {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&shipped_bundle_dir(), dir.path(), &[]);
        let source = PolicyBundle::from_dir(dir.path().to_path_buf()).unwrap();
        let first = source.current().version().to_string();
        assert_eq!(source.reload(), ReloadOutcome::Unchanged);

        let extra = dir.path().join("global/extra.cedar");
        std::fs::write(
            &extra,
            "@id(\"no-fax\") @reason(\"fax is obsolete\") forbid (principal, action, resource == MeshOS::Operation::\"fax.send\");",
        )
        .unwrap();
        let ReloadOutcome::Reloaded { from, to } = source.reload() else {
            panic!("expected a reload");
        };
        assert_eq!(from, first);
        assert!(source.current().policy_ids().contains(&"no-fax"));

        std::fs::write(
            &extra,
            "@id(\"broken\") forbid (principal, action, resource) when { context.nope };",
        )
        .unwrap();
        match source.reload() {
            ReloadOutcome::Rejected { error, .. } => {
                assert!(error.contains("validation"), "{error}")
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        assert_eq!(
            source.current().version(),
            to,
            "the last good bundle keeps serving"
        );
        assert!(
            matches!(source.reload(), ReloadOutcome::StillRejected { error, .. } if error.contains("validation"))
        );
    }

    /// A policy file cut between two policies, or emptied, used to load as a valid bundle:
    /// `shell.exec` and `payments.transfer` became `allow` two seconds later.
    #[test]
    fn a_truncated_or_emptied_policy_file_is_refused_and_the_last_good_keeps_serving() {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&shipped_bundle_dir(), dir.path(), &["tests"]);
        let files = read_bundle_files(dir.path()).unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), manifest_text(&files)).unwrap();
        let source = PolicyBundle::from_dir(dir.path().to_path_buf()).unwrap();
        let good = source.current().version().to_string();
        let actions = dir.path().join("global/actions.cedar");
        let text = std::fs::read_to_string(&actions).unwrap();
        let cut = text.find("\n@id").expect("a second policy") + 1;
        std::fs::write(&actions, &text[..cut]).unwrap();
        match source.reload() {
            ReloadOutcome::Rejected { error, .. } => {
                assert!(
                    error.contains("global/actions.cedar does not match"),
                    "{error}"
                )
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        assert_eq!(source.current().version(), good);

        // Without a manifest an empty file is still refused: nothing says it is meant to be.
        std::fs::remove_file(dir.path().join(MANIFEST_FILE)).unwrap();
        std::fs::write(&actions, "").unwrap();
        match source.reload() {
            ReloadOutcome::Rejected { error, .. } => {
                assert!(error.contains("holds no policy"), "{error}")
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        std::fs::write(&actions, format!("{EMPTY_MARKER}\n")).unwrap();
        assert!(matches!(source.reload(), ReloadOutcome::Reloaded { .. }));
        assert_eq!(
            Bundle::load_dir(dir.path()).unwrap().version(),
            source.current().version()
        );
    }
}
