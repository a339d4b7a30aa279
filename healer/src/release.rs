//! Releasing controls on evidence. A resolved incident's controls (quarantines, caps,
//! revocations, pins, avoided regions) contain a fault; they are not meant to stay for ever.
//! After a probation window, a share of the controlled traffic is let through (the control's
//! `canary_share`, which `policy_check` and `carbon_route` honour); if the canary traffic is back
//! at the pre-fault baseline the controls are cleared, else they are restored in full and
//! probation starts again, twice as long. An operator may release at any time. Every step is an
//! incident transition on the ledger (the incident stays resolved; the record says what was
//! released and why).

use std::collections::BTreeMap;

use meshos_store::{StoredControl, StoredIncident};
use meshos_types::{EventRecord, Role};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::lifecycle::{ACTOR, in_place};
use crate::verify::{counts_for, metric_over, touches};
use crate::{Healer, HealerError, HealerPorts, IncidentData, IncidentState};

/// Where a resolved incident's controls are in their release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseState {
    /// `probation` or `canary`.
    pub phase: String,
    pub since_ms: i64,
    pub probation_ms: i64,
    /// Canaries that failed so far.
    pub failed_canaries: u32,
}

impl<P: HealerPorts> Healer<P> {
    /// Moves every resolved incident's controls one step through their release.
    pub(crate) async fn release_controls(&self, now_ms: i64) -> Result<(), HealerError> {
        let mut by_incident: BTreeMap<(String, String), Vec<StoredControl>> = BTreeMap::new();
        for c in self.store.active_controls(None).await? {
            by_incident
                .entry((c.tenant.clone(), c.incident_id.clone()))
                .or_default()
                .push(c);
        }
        for ((tenant, id), controls) in by_incident {
            let Some(inc) = self.store.incident(&tenant, &id).await? else {
                continue;
            };
            if inc.state != IncidentState::Resolved.as_str() {
                continue;
            }
            self.release_step(inc, &controls, now_ms).await?;
        }
        Ok(())
    }

    async fn release_step(
        &self,
        inc: StoredIncident,
        controls: &[StoredControl],
        now_ms: i64,
    ) -> Result<(), HealerError> {
        let mut data = IncidentData::from_json(&inc.data)?;
        let policy = &self.config.release;
        let state = data.release.clone().unwrap_or(ReleaseState {
            phase: "probation".into(),
            since_ms: inc.resolved_at_ms.unwrap_or(inc.updated_at_ms),
            probation_ms: policy.probation_ms,
            failed_canaries: 0,
        });
        match state.phase.as_str() {
            "probation" if now_ms >= state.since_ms + state.probation_ms => {
                for c in controls {
                    let Some(spec) = c.spec_with_canary(Some(policy.canary_share)) else {
                        continue;
                    };
                    self.store
                        .update_control_spec(&c.tenant, &c.id, &spec)
                        .await?;
                }
                let reason = format!(
                    "canary: {:.0}% of the traffic {} held is let through to verify before release",
                    policy.canary_share * 100.0,
                    describe(controls)
                );
                data.release = Some(ReleaseState {
                    phase: "canary".into(),
                    since_ms: now_ms,
                    ..state
                });
                self.record_release(
                    inc,
                    data,
                    &reason,
                    json!({"controls": ids(controls)}),
                    now_ms,
                )
                .await
            }
            "canary" if now_ms >= state.since_ms + policy.canary_ms => {
                let events = self
                    .store
                    .events_between(&inc.tenant, state.since_ms, now_ms + 1, 100_000)
                    .await?;
                let recovery = data.verification.as_ref().and_then(|v| v.recovery.clone());
                let metric = recovery.as_ref().map_or("latency", |r| r.metric.as_str());
                let scope: Vec<&EventRecord> = events
                    .iter()
                    .filter(|e| touches(e, inc.subject.as_deref(), &data.affected_agents))
                    .filter(|e| counts_for(metric, e))
                    .collect();
                let enough = scope.len() >= policy.canary_min_events;
                if !enough && now_ms < state.since_ms + 3 * policy.canary_ms {
                    return Ok(());
                }
                let judged = recovery.as_ref().map(|r| {
                    let value = metric_over(&r.metric, &scope);
                    (value, value <= r.limit, r.clone())
                });
                let evidence = json!({
                    "events": scope.len(),
                    "metric": judged.as_ref().map(|(v, _, r)| json!({
                        "name": r.metric, "value": v, "baseline": r.baseline, "limit": r.limit,
                    })),
                    "controls": ids(controls),
                });
                match judged {
                    Some((value, true, r)) if enough => {
                        for c in controls {
                            self.store
                                .clear_control(
                                    &c.tenant,
                                    &c.kind,
                                    &c.subject,
                                    &c.incident_id,
                                    now_ms,
                                )
                                .await?;
                        }
                        data.release = None;
                        let reason = format!(
                            "released on evidence: {} canary events, {} {value:.4} within the pre-fault limit {:.4}; cleared {}",
                            scope.len(),
                            r.metric,
                            r.limit,
                            describe(controls)
                        );
                        self.record_release(inc, data, &reason, evidence, now_ms)
                            .await
                    }
                    _ => {
                        for c in controls {
                            let Some(spec) = c.spec_with_canary(None) else {
                                continue;
                            };
                            self.store
                                .update_control_spec(&c.tenant, &c.id, &spec)
                                .await?;
                        }
                        let why = if !enough {
                            format!("only {} canary events", scope.len())
                        } else if recovery.is_none() {
                            "no pre-fault baseline to judge the canary by".to_string()
                        } else {
                            "the canary traffic is still off its pre-fault baseline".to_string()
                        };
                        data.release = Some(ReleaseState {
                            phase: "probation".into(),
                            since_ms: now_ms,
                            probation_ms: state.probation_ms * 2,
                            failed_canaries: state.failed_canaries + 1,
                        });
                        let reason = format!(
                            "release refused: {why}; {} restored in full, next try in {} s",
                            describe(controls),
                            state.probation_ms * 2 / 1000
                        );
                        self.record_release(inc, data, &reason, evidence, now_ms)
                            .await
                    }
                }
            }
            _ => {
                if data.release.is_none() {
                    data.release = Some(state);
                    let version = inc.version;
                    let updated = StoredIncident {
                        data: data.to_json(),
                        ..inc
                    };
                    self.store.update_incident(&updated, version).await?;
                }
                Ok(())
            }
        }
    }

    /// An operator's release of every control an incident set, whatever its state. Recorded on
    /// the ledger with who and why.
    pub async fn release(
        &self,
        tenant: &str,
        incident_id: &str,
        actor: &str,
        role: Role,
        note: Option<&str>,
        now_ms: i64,
    ) -> Result<crate::IncidentView, HealerError> {
        if !matches!(role, Role::Operator | Role::Admin) {
            return Err(HealerError::Refused(format!(
                "role {} cannot release controls; expected an operator or admin token",
                role.as_str()
            )));
        }
        let inc = self
            .store
            .incident(tenant, incident_id)
            .await?
            .ok_or_else(|| HealerError::NotFound(incident_id.to_string()))?;
        let controls: Vec<StoredControl> = self
            .store
            .active_controls(Some(tenant))
            .await?
            .into_iter()
            .filter(|c| c.incident_id == incident_id)
            .collect();
        if controls.is_empty() {
            return Err(HealerError::Refused(format!(
                "incident {incident_id} holds no active control"
            )));
        }
        for c in &controls {
            self.store
                .clear_control(&c.tenant, &c.kind, &c.subject, &c.incident_id, now_ms)
                .await?;
        }
        let mut data = IncidentData::from_json(&inc.data)?;
        data.release = None;
        let reason = format!(
            "released by {actor}: {}{}",
            describe(&controls),
            note.map(|n| format!(" ({n})")).unwrap_or_default()
        );
        let record = in_place(
            &inc,
            actor,
            Some(role),
            &reason,
            json!({"controls": ids(&controls)}),
            now_ms,
        );
        data.releases
            .push(json!({"at_ms": now_ms, "by": actor, "reason": reason}));
        let version = inc.version;
        let updated = StoredIncident {
            data: data.to_json(),
            updated_at_ms: inc.updated_at_ms,
            ..inc
        };
        self.store.move_incident(&updated, version, &record).await?;
        self.view(tenant, incident_id).await
    }

    async fn record_release(
        &self,
        inc: StoredIncident,
        mut data: IncidentData,
        reason: &str,
        inputs: Value,
        now_ms: i64,
    ) -> Result<(), HealerError> {
        data.releases
            .push(json!({"at_ms": now_ms, "by": ACTOR, "reason": reason}));
        let record = in_place(&inc, ACTOR, None, reason, inputs, now_ms);
        let version = inc.version;
        let updated = StoredIncident {
            data: data.to_json(),
            ..inc
        };
        self.store.move_incident(&updated, version, &record).await?;
        Ok(())
    }
}

fn ids(controls: &[StoredControl]) -> Vec<Value> {
    controls
        .iter()
        .map(|c| json!({"id": c.id, "kind": c.kind, "subject": c.subject}))
        .collect()
}

fn describe(controls: &[StoredControl]) -> String {
    controls
        .iter()
        .map(|c| format!("{} {}", c.kind, c.subject))
        .collect::<Vec<_>>()
        .join(", ")
}
