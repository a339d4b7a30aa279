//! What the healer must not lose: incidents (with optimistic versions), their ledger-backed
//! transitions, the heal actions already applied (the idempotency record), the controls set on
//! the mesh, and the leader lease that keeps one healer per deployment.

use sqlx::Row;
use sqlx::any::AnyRow;
use sqlx::{Acquire, AnyConnection};

use meshos_types::{
    CANARY_SHARE_KEY, Control, ControlError, IncidentTransitionRecord, LedgerRecord, Role,
};

use crate::{Backend, Store, StoreError, corrupt, insert_leaf, map_duplicate, next_ledger_index};

/// One incident row. `data` holds the healer's evolving JSON (symptoms, diagnosis, plan,
/// attempts, approvals, verification).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredIncident {
    pub id: String,
    pub tenant: String,
    pub kind: String,
    pub severity: String,
    pub state: String,
    pub correlation_key: String,
    pub subject: Option<String>,
    pub data: serde_json::Value,
    pub fault_started_at_ms: i64,
    pub opened_at_ms: i64,
    pub updated_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    pub version: i64,
}

/// A heal action applied, failed, or skipped in dry run.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredHealAction {
    /// Incident id + plan digest + step id + phase (`apply` / `rollback`).
    pub idempotency_key: String,
    pub tenant: String,
    pub incident_id: String,
    pub playbook_id: String,
    pub step_id: String,
    pub action: String,
    pub params: serde_json::Value,
    /// `applied`, `failed` or `skipped_dry_run`.
    pub status: String,
    pub result: serde_json::Value,
    pub created_at_ms: i64,
}

/// A control the healer set on the mesh, as stored: the columns of [`Control`]'s stored form
/// (read it typed with [`StoredControl::control`]) and the spec's release state
/// (`canary_share`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredControl {
    pub id: String,
    pub tenant: String,
    /// [`ControlKind::as_str`](meshos_types::ControlKind::as_str).
    pub kind: String,
    /// [`Control::subject`]: with kind and incident, what makes the control unique.
    pub subject: String,
    /// [`Control::spec`], plus `canary_share` while the control is on canary.
    pub spec: serde_json::Value,
    pub incident_id: String,
    pub created_at_ms: i64,
    pub cleared_at_ms: Option<i64>,
}

impl StoredControl {
    /// A new active control of an incident.
    pub fn new(
        id: String,
        tenant: &str,
        incident_id: &str,
        control: &Control,
        now_ms: i64,
    ) -> Self {
        StoredControl {
            id,
            tenant: tenant.to_string(),
            kind: control.kind().as_str().to_string(),
            subject: control.subject(),
            spec: control.spec(),
            incident_id: incident_id.to_string(),
            created_at_ms: now_ms,
            cleared_at_ms: None,
        }
    }

    /// The control this row holds.
    pub fn control(&self) -> Result<Control, ControlError> {
        Control::from_stored(&self.kind, &self.subject, &self.spec)
    }

    /// The share of the controlled traffic let through while the control is on canary.
    pub fn canary_share(&self) -> Option<f64> {
        self.spec
            .get(CANARY_SHARE_KEY)
            .and_then(serde_json::Value::as_f64)
    }

    /// The spec with the canary share set (`Some`) or removed (`None`); `None` when the
    /// stored spec is not an object (it cannot carry one).
    pub fn spec_with_canary(&self, share: Option<f64>) -> Option<serde_json::Value> {
        let mut spec = self.spec.clone();
        let m = spec.as_object_mut()?;
        match share {
            Some(s) => {
                m.insert(CANARY_SHARE_KEY.into(), serde_json::json!(s));
            }
            None => {
                m.remove(CANARY_SHARE_KEY);
            }
        }
        Some(spec)
    }
}

/// The controls among `rows` that read back; an unreadable row (a kind this build does not
/// know, a spec missing a field) is logged and left out, as readers always skipped what they
/// could not match.
pub fn readable_controls(
    rows: &[StoredControl],
) -> impl Iterator<Item = (&StoredControl, Control)> + '_ {
    rows.iter().filter_map(|row| match row.control() {
        Ok(c) => Some((row, c)),
        Err(e) => {
            tracing::warn!(control = %row.id, tenant = %row.tenant, error = %e,
                "an unreadable control is ignored");
            None
        }
    })
}

// Column lists as macros: sqlx takes only static SQL, so queries are built with concat!.
macro_rules! incident_columns {
    () => {
        "id, tenant, kind, severity, state, correlation_key, subject, data, \
         fault_started_at_ms, opened_at_ms, updated_at_ms, resolved_at_ms, version"
    };
}

macro_rules! control_columns {
    () => {
        "id, tenant, kind, subject, spec, incident_id, created_at_ms, cleared_at_ms"
    };
}

/// States after which an incident is closed.
const TERMINAL_STATES: [&str; 3] = ["resolved", "escalated", "observed"];

impl Store {
    pub async fn insert_incident(&self, i: &StoredIncident) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_incident_row(&mut tx, i).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Inserts a new incident and its opening transition (with its ledger leaf) in one
    /// transaction.
    pub async fn open_incident(
        &self,
        i: &StoredIncident,
        opened: &IncidentTransitionRecord,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_incident_row(&mut tx, i).await?;
        let index = write_transition(&mut tx, opened).await?;
        tx.commit().await?;
        Ok(index)
    }

    pub async fn incident(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<StoredIncident>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            incident_columns!(),
            " FROM incidents WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| incident_from_row(&r)).transpose()
    }

    /// Incidents of a tenant (or of every tenant), newest first, optionally only in `states`.
    pub async fn incidents(
        &self,
        tenant: Option<&str>,
        states: &[&str],
        limit: u32,
    ) -> Result<Vec<StoredIncident>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            incident_columns!(),
            " FROM incidents WHERE ($1 = '' OR tenant = $1) \
             ORDER BY opened_at_ms DESC, id DESC"
        ))
        .bind(tenant.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let i = incident_from_row(r)?;
            if states.is_empty() || states.contains(&i.state.as_str()) {
                out.push(i);
                if out.len() >= limit as usize {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The open (not resolved or escalated) incident with this correlation key, if any.
    pub async fn open_incident_by_correlation(
        &self,
        tenant: &str,
        key: &str,
    ) -> Result<Option<StoredIncident>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            incident_columns!(),
            " FROM incidents WHERE tenant = $1 AND correlation_key = $2 \
             AND state <> $3 AND state <> $4 AND state <> $5 ORDER BY opened_at_ms DESC LIMIT 1"
        ))
        .bind(tenant)
        .bind(key)
        .bind(TERMINAL_STATES[0])
        .bind(TERMINAL_STATES[1])
        .bind(TERMINAL_STATES[2])
        .fetch_optional(&self.pool)
        .await?;
        rows.map(|r| incident_from_row(&r)).transpose()
    }

    /// Writes `i` if the stored row still has `expected_version`; returns it with the version
    /// bumped. A lost race is [`StoreError::Conflict`] and changes nothing.
    pub async fn update_incident(
        &self,
        i: &StoredIncident,
        expected_version: i64,
    ) -> Result<StoredIncident, StoreError> {
        let mut tx = self.pool.begin().await?;
        let stored = write_incident(&mut tx, i, expected_version).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Records a transition and appends its ledger leaf in one transaction.
    pub async fn append_incident_transition(
        &self,
        t: &IncidentTransitionRecord,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let index = write_transition(&mut tx, t).await?;
        tx.commit().await?;
        Ok(index)
    }

    /// [`Store::update_incident`] and [`Store::append_incident_transition`] in one transaction:
    /// an incident never changes state without its ledger entry, nor the other way round (a
    /// crash between the two would otherwise leave a gap in the evidence).
    pub async fn move_incident(
        &self,
        i: &StoredIncident,
        expected_version: i64,
        t: &IncidentTransitionRecord,
    ) -> Result<(StoredIncident, u64), StoreError> {
        let mut tx = self.pool.begin().await?;
        let stored = write_incident(&mut tx, i, expected_version).await?;
        let index = write_transition(&mut tx, t).await?;
        tx.commit().await?;
        Ok((stored, index))
    }

    pub async fn incident_transition(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<(IncidentTransitionRecord, u64)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, tenant, incident_id, from_state, to_state, actor, actor_role, reason, \
             inputs, created_at_ms, ledger_index FROM incident_transitions \
             WHERE tenant = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| transition_from_row(&r)).transpose()
    }

    /// An incident's timeline, oldest first, each with its ledger index.
    pub async fn incident_transitions(
        &self,
        tenant: &str,
        incident_id: &str,
    ) -> Result<Vec<(IncidentTransitionRecord, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, tenant, incident_id, from_state, to_state, actor, actor_role, reason, \
             inputs, created_at_ms, ledger_index FROM incident_transitions \
             WHERE tenant = $1 AND incident_id = $2 ORDER BY ledger_index",
        )
        .bind(tenant)
        .bind(incident_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(transition_from_row).collect()
    }

    pub async fn heal_action(&self, key: &str) -> Result<Option<StoredHealAction>, StoreError> {
        let row = sqlx::query(
            "SELECT idempotency_key, tenant, incident_id, playbook_id, step_id, action, params, \
             status, result, created_at_ms FROM heal_actions WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| heal_action_from_row(&r)).transpose()
    }

    /// Records a heal action; `false` when its key was already recorded (nothing changes).
    pub async fn record_heal_action(&self, a: &StoredHealAction) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO heal_actions (idempotency_key, tenant, incident_id, playbook_id, step_id, \
             action, params, status, result, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&a.idempotency_key)
        .bind(&a.tenant)
        .bind(&a.incident_id)
        .bind(&a.playbook_id)
        .bind(&a.step_id)
        .bind(&a.action)
        .bind(a.params.to_string())
        .bind(&a.status)
        .bind(a.result.to_string())
        .bind(a.created_at_ms)
        .execute(&self.pool)
        .await;
        inserted_once(inserted)
    }

    /// Applied executions of a playbook's first step for the tenant since `since_ms`: one per
    /// playbook run (the rate limit counts runs, not steps).
    pub async fn playbook_runs_since(
        &self,
        tenant: &str,
        playbook_id: &str,
        first_step_id: &str,
        since_ms: i64,
    ) -> Result<u32, StoreError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM heal_actions WHERE tenant = $1 AND playbook_id = $2 \
             AND step_id = $3 AND created_at_ms >= $4 AND status <> 'failed' \
             AND idempotency_key LIKE '%:apply'",
        )
        .bind(tenant)
        .bind(playbook_id)
        .bind(first_step_id)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Sets a control; `false` if this (tenant, kind, subject, incident) is already active, in
    /// which case nothing changes. A control of the incident that was cleared is set again.
    pub async fn set_control(&self, c: &StoredControl) -> Result<bool, StoreError> {
        let inserted = sqlx::query(concat!(
            "INSERT INTO controls (",
            control_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&c.id)
        .bind(&c.tenant)
        .bind(&c.kind)
        .bind(&c.subject)
        .bind(c.spec.to_string())
        .bind(&c.incident_id)
        .bind(c.created_at_ms)
        .bind(c.cleared_at_ms)
        .execute(&self.pool)
        .await;
        if inserted_once(inserted)? {
            self.facts.invalidate(&c.tenant);
            return Ok(true);
        }
        // Already recorded for this incident: a replay of an active control changes nothing,
        // but a control a rollback cleared is set again (the incident's next attempt needs it).
        let revived = sqlx::query(
            "UPDATE controls SET cleared_at_ms = NULL, spec = $1 WHERE tenant = $2 AND kind = $3 \
             AND subject = $4 AND incident_id = $5 AND cleared_at_ms IS NOT NULL",
        )
        .bind(c.spec.to_string())
        .bind(&c.tenant)
        .bind(&c.kind)
        .bind(&c.subject)
        .bind(&c.incident_id)
        .execute(&self.pool)
        .await?;
        self.facts.invalidate(&c.tenant);
        Ok(revived.rows_affected() > 0)
    }

    /// Clears an active control; `false` if there was none to clear.
    pub async fn clear_control(
        &self,
        tenant: &str,
        kind: &str,
        subject: &str,
        incident_id: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE controls SET cleared_at_ms = $1 WHERE tenant = $2 AND kind = $3 \
             AND subject = $4 AND incident_id = $5 AND cleared_at_ms IS NULL",
        )
        .bind(at_ms)
        .bind(tenant)
        .bind(kind)
        .bind(subject)
        .bind(incident_id)
        .execute(&self.pool)
        .await?;
        self.facts.invalidate(tenant);
        Ok(done.rows_affected() > 0)
    }

    /// Replaces an active control's spec (a canary share set or removed); `false` if the
    /// control is not active.
    pub async fn update_control_spec(
        &self,
        tenant: &str,
        id: &str,
        spec: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE controls SET spec = $1 WHERE tenant = $2 AND id = $3 AND cleared_at_ms IS NULL",
        )
        .bind(spec.to_string())
        .bind(tenant)
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.facts.invalidate(tenant);
        Ok(done.rows_affected() > 0)
    }

    /// Active controls of one tenant, or of every tenant with `None`, oldest first.
    pub async fn active_controls(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<StoredControl>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            control_columns!(),
            " FROM controls WHERE ($1 = '' OR tenant = $1) \
             AND cleared_at_ms IS NULL ORDER BY created_at_ms, id"
        ))
        .bind(tenant.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(control_from_row).collect()
    }

    /// Distinct agents with events in the tenant: the fleet size the blast-radius guard uses.
    pub async fn known_agents(&self, tenant: &str) -> Result<u32, StoreError> {
        let n: i64 =
            sqlx::query("SELECT COUNT(DISTINCT agent_id) AS n FROM events WHERE tenant = $1")
                .bind(tenant)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Tries to become the deployment's healer. PostgreSQL: a session advisory lock on a
    /// connection of its own, held by the returned lease; it is released by
    /// [`LeaderLease::release`], by dropping the lease, or by the connection dying (a crashed
    /// leader's lease frees itself, which is the failover). SQLite: always granted, because a
    /// SQLite file has one server process.
    pub async fn try_leader_lease(&self, name: &str) -> Result<Option<LeaderLease>, StoreError> {
        if self.backend() == Backend::Sqlite {
            return Ok(Some(LeaderLease {
                key: lock_key(name),
                conn: None,
            }));
        }
        let key = lock_key(name);
        // Detached: a session lock must not go back to the pool with a pooled connection.
        let mut conn = self.pool.acquire().await?.detach();
        let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1) AS got")
            .bind(key)
            .fetch_one(conn.acquire().await?)
            .await?
            .try_get("got")?;
        Ok(got.then_some(LeaderLease {
            key,
            conn: Some(conn),
        }))
    }
}

/// The healer's leadership, held until released or dropped (see [`Store::try_leader_lease`]).
pub struct LeaderLease {
    key: i64,
    conn: Option<AnyConnection>,
}

impl std::fmt::Debug for LeaderLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderLease")
            .field("key", &self.key)
            .field("postgres", &self.conn.is_some())
            .finish()
    }
}

impl LeaderLease {
    /// Whether the lease is still held: on PostgreSQL, whether its connection still answers.
    pub async fn is_held(&mut self) -> bool {
        match &mut self.conn {
            None => true,
            Some(conn) => sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok(),
        }
    }

    /// Gives leadership up at once.
    pub async fn release(mut self) -> Result<(), StoreError> {
        if let Some(mut conn) = self.conn.take() {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .execute(&mut conn)
                .await?;
        }
        Ok(())
    }
}

/// `true` for a new row, `false` when a unique key already held it (a replay).
fn inserted_once(
    result: Result<sqlx::any::AnyQueryResult, sqlx::Error>,
) -> Result<bool, StoreError> {
    match map_duplicate(result, "") {
        Ok(()) => Ok(true),
        Err(StoreError::Duplicate { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A stable 64-bit key for a lease name (FNV-1a), the same in every process and version.
fn lock_key(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

fn json_column(r: &AnyRow, column: &str, what: &str) -> Result<serde_json::Value, StoreError> {
    let text: String = r.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| corrupt(what, e))
}

fn incident_from_row(r: &AnyRow) -> Result<StoredIncident, StoreError> {
    Ok(StoredIncident {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant")?,
        kind: r.try_get("kind")?,
        severity: r.try_get("severity")?,
        state: r.try_get("state")?,
        correlation_key: r.try_get("correlation_key")?,
        subject: r.try_get("subject")?,
        data: json_column(r, "data", "incidents.data")?,
        fault_started_at_ms: r.try_get("fault_started_at_ms")?,
        opened_at_ms: r.try_get("opened_at_ms")?,
        updated_at_ms: r.try_get("updated_at_ms")?,
        resolved_at_ms: r.try_get("resolved_at_ms")?,
        version: r.try_get("version")?,
    })
}

fn transition_from_row(r: &AnyRow) -> Result<(IncidentTransitionRecord, u64), StoreError> {
    let role: Option<String> = r.try_get("actor_role")?;
    let record = IncidentTransitionRecord {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant")?,
        incident_id: r.try_get("incident_id")?,
        from_state: r.try_get("from_state")?,
        to_state: r.try_get("to_state")?,
        actor: r.try_get("actor")?,
        actor_role: role
            .map(|r| r.parse::<Role>())
            .transpose()
            .map_err(|e| corrupt("incident_transitions.actor_role", e))?,
        reason: r.try_get("reason")?,
        inputs: json_column(r, "inputs", "incident_transitions.inputs")?,
        created_at_ms: r.try_get("created_at_ms")?,
    };
    let index: i64 = r.try_get("ledger_index")?;
    Ok((record, index as u64))
}

fn heal_action_from_row(r: &AnyRow) -> Result<StoredHealAction, StoreError> {
    Ok(StoredHealAction {
        idempotency_key: r.try_get("idempotency_key")?,
        tenant: r.try_get("tenant")?,
        incident_id: r.try_get("incident_id")?,
        playbook_id: r.try_get("playbook_id")?,
        step_id: r.try_get("step_id")?,
        action: r.try_get("action")?,
        params: json_column(r, "params", "heal_actions.params")?,
        status: r.try_get("status")?,
        result: json_column(r, "result", "heal_actions.result")?,
        created_at_ms: r.try_get("created_at_ms")?,
    })
}

fn control_from_row(r: &AnyRow) -> Result<StoredControl, StoreError> {
    Ok(StoredControl {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant")?,
        kind: r.try_get("kind")?,
        subject: r.try_get("subject")?,
        spec: json_column(r, "spec", "controls.spec")?,
        incident_id: r.try_get("incident_id")?,
        created_at_ms: r.try_get("created_at_ms")?,
        cleared_at_ms: r.try_get("cleared_at_ms")?,
    })
}

async fn write_incident(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    i: &StoredIncident,
    expected_version: i64,
) -> Result<StoredIncident, StoreError> {
    let next = expected_version + 1;
    let done = sqlx::query(
        "UPDATE incidents SET kind = $1, severity = $2, state = $3, correlation_key = $4, \
         subject = $5, data = $6, fault_started_at_ms = $7, updated_at_ms = $8, \
         resolved_at_ms = $9, version = $10 WHERE tenant = $11 AND id = $12 AND version = $13",
    )
    .bind(&i.kind)
    .bind(&i.severity)
    .bind(&i.state)
    .bind(&i.correlation_key)
    .bind(&i.subject)
    .bind(i.data.to_string())
    .bind(i.fault_started_at_ms)
    .bind(i.updated_at_ms)
    .bind(i.resolved_at_ms)
    .bind(next)
    .bind(&i.tenant)
    .bind(&i.id)
    .bind(expected_version)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict {
            what: "incident".into(),
            id: i.id.clone(),
            expected: expected_version,
        });
    }
    Ok(StoredIncident {
        version: next,
        ..i.clone()
    })
}

async fn write_transition(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    t: &IncidentTransitionRecord,
) -> Result<u64, StoreError> {
    let record = LedgerRecord::IncidentTransition(t.clone());
    let index = next_ledger_index(tx, &t.tenant).await?;
    let inserted = sqlx::query(
        "INSERT INTO incident_transitions (id, tenant, incident_id, from_state, to_state, \
         actor, actor_role, reason, inputs, created_at_ms, ledger_index) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&t.id)
    .bind(&t.tenant)
    .bind(&t.incident_id)
    .bind(&t.from_state)
    .bind(&t.to_state)
    .bind(&t.actor)
    .bind(t.actor_role.map(|r| r.as_str()))
    .bind(&t.reason)
    .bind(t.inputs.to_string())
    .bind(t.created_at_ms)
    .bind(index as i64)
    .execute(&mut **tx)
    .await;
    map_duplicate(inserted, &t.id)?;
    insert_leaf(tx, &t.tenant, index, &record, t.created_at_ms).await?;
    Ok(index)
}

async fn insert_incident_row(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    i: &StoredIncident,
) -> Result<(), StoreError> {
    let inserted = sqlx::query(concat!(
        "INSERT INTO incidents (",
        incident_columns!(),
        ") \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(&i.id)
    .bind(&i.tenant)
    .bind(&i.kind)
    .bind(&i.severity)
    .bind(&i.state)
    .bind(&i.correlation_key)
    .bind(&i.subject)
    .bind(i.data.to_string())
    .bind(i.fault_started_at_ms)
    .bind(i.opened_at_ms)
    .bind(i.updated_at_ms)
    .bind(i.resolved_at_ms)
    .bind(i.version)
    .execute(&mut **tx)
    .await;
    map_duplicate(inserted, &i.id)
}
