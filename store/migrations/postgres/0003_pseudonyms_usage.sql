-- Pseudonym vault: the sealed original behind each pseudonym a redaction issued. Only the
-- audited re-identification path opens them; the pseudonym itself is a keyed hash, so the
-- same value maps to the same row.
CREATE TABLE pseudonyms (
    tenant TEXT NOT NULL,
    pseudonym TEXT NOT NULL,
    entity TEXT NOT NULL,
    sealed TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, pseudonym)
);

-- Who revealed which pseudonym, and why (the value itself is never stored here).
CREATE TABLE reidentifications (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    pseudonym TEXT NOT NULL,
    entity TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_by_role TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    ledger_index BIGINT NOT NULL
);

-- Spend counters for budgets: tokens and cost (in micro-dollars, so sums are exact) per
-- agent, team and tenant, per UTC day (period "2026-11-22") and month ("2026-11").
CREATE TABLE usage_counters (
    tenant TEXT NOT NULL,
    scope TEXT NOT NULL,
    scope_id TEXT NOT NULL,
    period TEXT NOT NULL,
    tokens BIGINT NOT NULL,
    cost_micro_usd BIGINT NOT NULL,
    PRIMARY KEY (tenant, scope, scope_id, period)
);
