-- Evals (issue 17). A run is inserted when it starts and finished once: its ledger leaf is
-- appended in the transaction that finishes it, and the columns the ledger record is built
-- from never change after that (audit verify re-derives the leaf from them).
CREATE TABLE eval_runs (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    suite_id TEXT NOT NULL,
    suite_digest TEXT NOT NULL,
    dataset_digest TEXT NOT NULL,
    target TEXT NOT NULL,
    model TEXT,
    agent_id TEXT NOT NULL,
    triggered_by TEXT NOT NULL,
    status TEXT NOT NULL,
    items BIGINT NOT NULL,
    items_passed BIGINT NOT NULL,
    items_failed BIGINT NOT NULL,
    scores TEXT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    started_at_ms BIGINT NOT NULL,
    finished_at_ms BIGINT,
    ledger_index BIGINT
);
CREATE INDEX eval_runs_by_suite ON eval_runs (tenant, suite_id, started_at_ms);

-- One row per item of a run: whether every scorer passed, each scorer's score (JSON), what
-- answering cost, and the raw input and output only when the suite opts in (store_raw).
CREATE TABLE eval_results (
    tenant TEXT NOT NULL,
    run_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    passed BIGINT NOT NULL,
    error TEXT,
    latency_ms DOUBLE PRECISION NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    scores TEXT NOT NULL,
    raw TEXT,
    PRIMARY KEY (run_id, item_id)
);

-- Cron schedules per suite. last_fire_ms is the scheduled time last fired or skipped; a replica
-- claims a fire by moving it with the version it read (no double fire across replicas), and
-- running_run_id keeps runs of one schedule from overlapping.
CREATE TABLE eval_schedules (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    suite_id TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    catch_up TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    last_fire_ms BIGINT,
    running_run_id TEXT,
    version BIGINT NOT NULL
);
CREATE INDEX eval_schedules_by_tenant ON eval_schedules (tenant, suite_id);

-- The run each suite's later runs are compared with.
CREATE TABLE eval_baselines (
    tenant TEXT NOT NULL,
    suite_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    pinned_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, suite_id)
);
