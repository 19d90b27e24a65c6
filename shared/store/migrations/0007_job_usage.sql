-- What each charged job has run, so the monitor reports its usage to Core's accounting exactly once per
-- reporting period, and nothing is lost or counted twice when the monitor restarts. A row exists only for
-- a job that ran (the monitor inserts it when it reports RUNNING): a job that never ran is never charged.
CREATE TABLE job_usage (
    job_id          text        PRIMARY KEY,
    -- The charge, from the pods' annotations (job-create): the pods may be gone when the last total is sent.
    owner_type      text        NOT NULL,
    owner           text        NOT NULL,
    category        text        NOT NULL,
    provider        text        NOT NULL,
    units           bigint      NOT NULL,
    frequency       text        NOT NULL,
    -- Set while the job runs; consumed_ms is the running time of its earlier running spells.
    running_since   timestamptz,
    consumed_ms     bigint      NOT NULL DEFAULT 0,
    ended           boolean     NOT NULL DEFAULT false,
    -- The last total Core accepted, the reporting period it was sent in, and whether it was the final one.
    reported        bigint      NOT NULL DEFAULT 0,
    reported_slot   bigint      NOT NULL DEFAULT -1,
    final_reported  boolean     NOT NULL DEFAULT false,
    -- Core refused the last report (an owner or category it does not know): sent alone from then on, so
    -- it does not make Core stop in the middle of the others' batch.
    refused         boolean     NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_usage_due ON job_usage (reported_slot) WHERE NOT final_reported;
