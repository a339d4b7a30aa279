-- Trust score history: one point per agent each time the live score is flushed (at most about
-- once a second per agent), so `trust_score` can report a trend and auditors can see how a
-- score moved. Components are kept so a past score can still be explained.
CREATE TABLE trust_history (
    tenant TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    policy_adherence DOUBLE PRECISION NOT NULL,
    agent_reputation DOUBLE PRECISION NOT NULL,
    response_integrity DOUBLE PRECISION NOT NULL,
    risk_exposure DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, agent_id, at_ms)
);

-- Drift signals: a detector found a metric of an agent shifted away from its baseline. The
-- healer consumes them (consumed_at_ms is set once it has).
CREATE TABLE drift_signals (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    detector TEXT NOT NULL,
    direction TEXT NOT NULL,
    baseline_mean DOUBLE PRECISION NOT NULL,
    baseline_sd DOUBLE PRECISION NOT NULL,
    observed_mean DOUBLE PRECISION NOT NULL,
    shift_sigmas DOUBLE PRECISION NOT NULL,
    samples BIGINT NOT NULL,
    explanation TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    consumed_at_ms BIGINT
);
CREATE INDEX drift_signals_by_agent ON drift_signals (tenant, agent_id, at_ms);
CREATE INDEX drift_signals_unconsumed ON drift_signals (tenant, consumed_at_ms, at_ms);

-- SLA alerts: a trust score fell below (breach) or came back above (recovery) its threshold.
-- deliveries is a JSON array of webhook delivery outcomes, filled in as they finish.
CREATE TABLE trust_alerts (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    threshold DOUBLE PRECISION NOT NULL,
    scope TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    deliveries TEXT NOT NULL
);
CREATE INDEX trust_alerts_by_tenant ON trust_alerts (tenant, at_ms);
