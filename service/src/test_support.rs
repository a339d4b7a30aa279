//! Helpers shared by this crate's tests.

use std::path::{Path, PathBuf};

/// The shipped bundle directory, `policies/default`.
pub fn shipped_bundle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/default")
}

/// Copies a directory tree, leaving out top-level entries named in `skip`.
pub fn copy_tree(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        if p.is_dir() {
            copy_tree(&p, &to.join(name), &[]);
        } else {
            std::fs::copy(&p, to.join(name)).unwrap();
        }
    }
}
