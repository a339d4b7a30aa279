-- Operators' answers to require_approval decisions; one answer per decision.
CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    approved BIGINT NOT NULL,
    decided_by TEXT NOT NULL,
    decided_by_role TEXT NOT NULL,
    note TEXT,
    created_at_ms BIGINT NOT NULL,
    ledger_index BIGINT NOT NULL,
    UNIQUE (tenant, decision_id)
);
CREATE INDEX decisions_by_verdict ON decisions (tenant, decision, created_at_ms);
