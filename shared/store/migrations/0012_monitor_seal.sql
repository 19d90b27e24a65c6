-- One row the monitor rewrites with a durable commit after committing its intents (with their outbox rows)
-- and acceptances without waiting for the disk: a durable commit flushes the write-ahead log up to itself,
-- so once it returned, everything committed before it is on disk (README, monitor). A table of its own, so
-- that while its commit waits for the disk it holds no lock a job's next change needs.
CREATE TABLE monitor_seal (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    sealed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO monitor_seal DEFAULT VALUES;
