//! `meshos policy lint` of the bundle in force, run once per bundle version in the background
//! when the policy page first asks for it (the solver can take a while), its report kept.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshos_policy_lint::Cvc5;
use serde_json::Value;

/// A lint that has not finished by then is reported as failed.
const LINT_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub enum LintState {
    Running,
    /// The report as JSON (`meshos policy lint --json`).
    Done(Value),
    Failed(String),
}

#[derive(Default)]
pub struct LintCache {
    /// The bundle version linted and where that stands.
    state: Mutex<Option<(String, LintState)>>,
}

impl LintCache {
    /// Where the lint of `bundle` stands; starts it when this version has not been linted.
    pub fn status(self: &Arc<Self>, bundle: Arc<meshos_policy::Bundle>) -> LintState {
        let version = bundle.version().to_string();
        {
            let mut state = self.lock();
            if let Some((v, s)) = state.as_ref()
                && *v == version
            {
                return s.clone();
            }
            *state = Some((version.clone(), LintState::Running));
        }
        let cache = self.clone();
        tokio::spawn(async move {
            let outcome = match Cvc5::locate(None) {
                Err(e) => LintState::Failed(e.to_string()),
                Ok(solver) => {
                    match tokio::time::timeout(
                        LINT_TIMEOUT,
                        meshos_policy_lint::lint(&bundle, &solver),
                    )
                    .await
                    {
                        Err(_) => LintState::Failed(format!(
                            "the lint did not finish within {} s",
                            LINT_TIMEOUT.as_secs()
                        )),
                        Ok(Err(e)) => LintState::Failed(e.to_string()),
                        Ok(Ok(report)) => serde_json::to_value(&report)
                            .map(LintState::Done)
                            .unwrap_or_else(|e| LintState::Failed(e.to_string())),
                    }
                }
            };
            let mut state = cache.lock();
            if state.as_ref().is_some_and(|(v, _)| *v == version) {
                *state = Some((version, outcome));
            }
        });
        LintState::Running
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(String, LintState)>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
