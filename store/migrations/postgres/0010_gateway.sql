-- meshos gateway (issue 18). Tool pins: one row per pin record, each appended to the tenant's
-- ledger in the transaction that inserts it; the row with the highest ledger index per
-- (tenant, server, tool) is that tool's state. `definition` keeps the canonical JSON the digest
-- was taken over, for review (it is not on the ledger; the digest is).
CREATE TABLE tool_pins (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    server TEXT NOT NULL,
    tool TEXT NOT NULL,
    digest TEXT NOT NULL,
    change TEXT NOT NULL,
    status TEXT NOT NULL,
    findings TEXT NOT NULL,
    decision_id TEXT,
    created_at_ms BIGINT NOT NULL,
    ledger_index BIGINT NOT NULL,
    definition TEXT
);
CREATE INDEX tool_pins_by_tool ON tool_pins (tenant, server, tool, ledger_index);

-- The clients the gateway has seen: an agent (by its token) with a program (the name in its
-- MCP initialize), when, how often, which tools, and the decision that let it in.
CREATE TABLE gateway_clients (
    tenant TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    client_name TEXT NOT NULL,
    client_version TEXT NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    calls BIGINT NOT NULL,
    tools_used TEXT NOT NULL,
    decision_id TEXT,
    PRIMARY KEY (tenant, agent_id, client_name)
);
