-- The operator console's fleet view (issue 19): one row per agent with its newest stored score,
-- and one point per agent and hour (the newest score of that hour) for sparklines. Both are kept
-- by the same transaction that writes trust_history, so a page of 1,000 agents is two indexed
-- reads instead of a scan of every score point of the day.
CREATE TABLE fleet_agents (
    tenant TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    score REAL NOT NULL,
    policy_adherence REAL NOT NULL,
    agent_reputation REAL NOT NULL,
    response_integrity REAL NOT NULL,
    risk_exposure REAL NOT NULL,
    PRIMARY KEY (tenant, agent_id)
);

CREATE TABLE trust_hourly (
    tenant TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    hour_ms INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (tenant, agent_id, hour_ms)
);
CREATE INDEX trust_hourly_by_hour ON trust_hourly (tenant, hour_ms);

-- The console's decision feed: a tenant's newest decisions.
CREATE INDEX decisions_by_time ON decisions (tenant, created_at_ms);

-- The console's evidence browser: a tenant's ledger records of one type, newest first.
CREATE INDEX ledger_by_type ON ledger (tenant, record_type, idx);

-- Agents scored before this migration: their newest stored point.
INSERT INTO fleet_agents (tenant, agent_id, first_seen_ms, last_seen_ms, score, policy_adherence,
    agent_reputation, response_integrity, risk_exposure)
SELECT h.tenant, h.agent_id, f.first_ms, h.at_ms, h.score, h.policy_adherence, h.agent_reputation,
    h.response_integrity, h.risk_exposure
FROM trust_history h
JOIN (SELECT tenant, agent_id, MIN(at_ms) AS first_ms, MAX(at_ms) AS last_ms
      FROM trust_history GROUP BY tenant, agent_id) f
  ON f.tenant = h.tenant AND f.agent_id = h.agent_id AND f.last_ms = h.at_ms;
