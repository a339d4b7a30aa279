-- Bearer tokens: only the SHA-256 of the secret is kept.
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    role TEXT NOT NULL,
    agent_id TEXT,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    latency_ms REAL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost_usd REAL,
    model TEXT,
    tool TEXT,
    region TEXT,
    attributes TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    ledger_index INTEGER NOT NULL
);
CREATE INDEX events_by_agent ON events (tenant, agent_id, created_at_ms);

CREATE TABLE decisions (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    action TEXT NOT NULL,
    model TEXT,
    tool TEXT,
    region TEXT,
    content_hmac TEXT,
    decision TEXT NOT NULL,
    reasons TEXT NOT NULL,
    findings TEXT NOT NULL,
    obligations TEXT NOT NULL,
    bundle_version TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    ledger_index INTEGER NOT NULL
);
CREATE INDEX decisions_by_agent ON decisions (tenant, agent_id, created_at_ms);

-- One append-only Merkle log per tenant; the head row serialises appends.
CREATE TABLE ledger_heads (
    tenant TEXT PRIMARY KEY,
    size INTEGER NOT NULL
);

CREATE TABLE ledger (
    tenant TEXT NOT NULL,
    idx INTEGER NOT NULL,
    record_type TEXT NOT NULL,
    record_id TEXT NOT NULL,
    leaf_hash TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, idx)
);

CREATE TABLE checkpoints (
    tenant TEXT NOT NULL,
    size INTEGER NOT NULL,
    root_hash TEXT NOT NULL,
    note TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, size)
);
