-- Healing incidents. data holds the evolving JSON (symptoms, diagnosis, plan, attempts,
-- approvals, verification); version makes every update optimistic (WHERE version = expected).
CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    correlation_key TEXT NOT NULL,
    subject TEXT,
    data TEXT NOT NULL,
    fault_started_at_ms BIGINT NOT NULL,
    opened_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    resolved_at_ms BIGINT,
    version BIGINT NOT NULL
);
CREATE INDEX incidents_by_state ON incidents (tenant, state, opened_at_ms);
CREATE INDEX incidents_by_correlation ON incidents (tenant, correlation_key, state);

-- Every state change of an incident, each with its ledger leaf (like reidentifications).
CREATE TABLE incident_transitions (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    actor TEXT NOT NULL,
    actor_role TEXT,
    reason TEXT NOT NULL,
    inputs TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    ledger_index BIGINT NOT NULL
);
CREATE INDEX incident_transitions_by_incident ON incident_transitions (tenant, incident_id, created_at_ms);

-- Heal actions applied (or skipped in dry run), keyed by incident + plan digest + step + phase,
-- so a replayed action (after a crash or a failover) is found and not applied twice.
CREATE TABLE heal_actions (
    idempotency_key TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    playbook_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    action TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX heal_actions_by_playbook ON heal_actions (tenant, playbook_id, created_at_ms);

-- Controls the healer set on the mesh (quarantine, revoked tools, policy overlays, model pins,
-- avoided regions, budget caps). Active while cleared_at_ms is NULL. One row per (tenant, kind,
-- subject, incident): replaying a step inserts nothing.
CREATE TABLE controls (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    spec TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    cleared_at_ms BIGINT,
    UNIQUE (tenant, kind, subject, incident_id)
);
CREATE INDEX controls_active ON controls (tenant, cleared_at_ms);
