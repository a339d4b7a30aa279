//! Finding and starting the cvc5 SMT solver that `cedar-policy-symcc` sends its queries to.
//!
//! symcc on its own reads the `CVC5` variable or runs whatever `cvc5` is on `PATH`, and only
//! notices a missing or broken solver at the first query. We look the binary up once, run
//! `cvc5 --version` so a missing or too old solver is a clear error before any analysis, and
//! spawn it ourselves so the report can say which solver proved what.

use std::path::{Path, PathBuf};

use cedar_policy_symcc::solver::LocalSolver;

use crate::LintError;

/// Where Debian's `cvc5` package installs the solver; tried when it is not on `PATH`.
const DEBIAN_CVC5: &str = "/usr/bin/cvc5";

/// The oldest cvc5 this analysis has been run against (Debian 12's package). The symcc crate
/// itself documents 1.3.1; 1.0.3 passes our tests because symcc avoids the newer operators.
pub const MIN_CVC5_VERSION: (u32, u32, u32) = (1, 0, 3);

/// Wall-clock limit per solver query, in milliseconds (symcc's own default). A query that hits
/// it makes the solver answer `unknown`, which is an error, never a pass.
const QUERY_TIME_LIMIT_MS: u32 = 60_000;

/// How to install cvc5, for error messages.
pub const INSTALL_HINT: &str = "install it with `apt-get install cvc5` (Debian/Ubuntu; \
scripts/setup-test-deps.sh does this) or `pip install cvc5`, or point --cvc5 or the CVC5 \
environment variable at the binary";

/// A cvc5 binary that answered `--version` with a version we can use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cvc5 {
    pub path: PathBuf,
    pub version: String,
}

impl Cvc5 {
    /// Finds cvc5: `explicit` if given (the `--cvc5` flag or `CVC5` variable), else `cvc5` on
    /// `PATH`, else Debian's `/usr/bin/cvc5`. Checks that it runs and is new enough.
    pub fn locate(explicit: Option<&Path>) -> Result<Cvc5, LintError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => match on_path("cvc5") {
                Some(p) => p,
                None if Path::new(DEBIAN_CVC5).is_file() => PathBuf::from(DEBIAN_CVC5),
                None => {
                    return Err(LintError::SolverMissing {
                        searched: format!("PATH and {DEBIAN_CVC5}"),
                    });
                }
            },
        };
        Cvc5::probe(&path)
    }

    /// Runs `path --version` and checks the version it reports.
    pub fn probe(path: &Path) -> Result<Cvc5, LintError> {
        let output = match std::process::Command::new(path).arg("--version").output() {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LintError::SolverMissing {
                    searched: path.display().to_string(),
                });
            }
            Err(e) => {
                return Err(LintError::SolverUnusable {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                });
            }
        };
        let text = String::from_utf8_lossy(&output.stdout);
        let unusable = |message: String| LintError::SolverUnusable {
            path: path.to_path_buf(),
            message,
        };
        if !output.status.success() {
            return Err(unusable(format!(
                "`--version` exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let version = parse_version(&text).ok_or_else(|| {
            unusable(format!(
                "`--version` did not report a cvc5 version (got {:?})",
                text.lines().next().unwrap_or_default()
            ))
        })?;
        let (major, minor, patch) = version;
        if version < MIN_CVC5_VERSION {
            let (a, b, c) = MIN_CVC5_VERSION;
            return Err(unusable(format!(
                "it is version {major}.{minor}.{patch}; policy lint needs cvc5 {a}.{b}.{c} or newer"
            )));
        }
        Ok(Cvc5 {
            path: path.to_path_buf(),
            version: format!("{major}.{minor}.{patch}"),
        })
    }

    /// A fresh solver process for one analysis. It is killed when the analysis drops it.
    pub(crate) fn spawn(&self) -> Result<LocalSolver, LintError> {
        let mut command = tokio::process::Command::new(&self.path);
        command
            .args(["--lang", "smt"])
            // `like` with a wildcard on both sides of a literal (`"*/.ssh/*"`) becomes
            // str.contains, which cvc5 decides only with its extended string solver.
            .arg("--strings-exp")
            .arg(format!("--tlimit={QUERY_TIME_LIMIT_MS}"))
            .kill_on_drop(true);
        LocalSolver::from_command(&mut command).map_err(|e| LintError::SolverUnusable {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }
}

/// `This is cvc5 version 1.0.3` (possibly with a suffix such as `[git …]`) → (1, 0, 3).
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let line = text.lines().find(|l| l.contains("cvc5 version"))?;
    let rest = line.split("cvc5 version").nth(1)?.trim();
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = number.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_cvc5_banners() {
        assert_eq!(
            parse_version("This is cvc5 version 1.0.3\ncompiled with GCC"),
            Some((1, 0, 3))
        );
        assert_eq!(
            parse_version("This is cvc5 version 1.3.1 [git tag 1.3.1 branch HEAD]"),
            Some((1, 3, 1))
        );
        assert_eq!(parse_version("z3 version 4.12"), None);
    }

    #[test]
    fn a_missing_binary_says_what_to_install() {
        let err = Cvc5::probe(Path::new("/nonexistent/cvc5")).unwrap_err();
        assert!(matches!(err, LintError::SolverMissing { .. }), "{err}");
        assert!(err.to_string().contains("apt-get install cvc5"), "{err}");
    }
}
