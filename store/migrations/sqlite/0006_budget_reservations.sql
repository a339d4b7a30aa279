-- Budgets that hold under concurrency: a policy check with an estimate reserves it against
-- every counter a budget line reads (agent, team, tenant × day, month) before it is decided;
-- the agent's event settles the actual spend and releases the reservation; a reservation not
-- settled expires. A check is refused when spent + reserved + its estimate would pass a limit.
ALTER TABLE usage_counters ADD COLUMN reserved_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_counters ADD COLUMN reserved_micro_usd INTEGER NOT NULL DEFAULT 0;

-- One row per reservation still held. `keys` is the JSON list of the counters it holds
-- ([scope, scope_id, period] triples), so settling releases exactly what was reserved.
CREATE TABLE usage_reservations (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    keys TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    cost_micro_usd INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX usage_reservations_by_agent ON usage_reservations (tenant, agent_id, created_at_ms);
CREATE INDEX usage_reservations_by_expiry ON usage_reservations (expires_at_ms);
