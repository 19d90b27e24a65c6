-- The integrated terminal's idle lease: when its owner last typed (or opened it). openTerminalInFolder
-- (config-update) starts it, every keystroke on the terminal's shell (job-streams) renews it, and the
-- monitor stops the terminal's pod once it is older than TERMINAL_IDLE_TIMEOUT. Kept here, not in a
-- process's memory, so a restarted function (the original IM lost it on every restart) keeps the lease.
CREATE TABLE terminal_lease (
    job_id        text PRIMARY KEY,
    last_activity timestamptz NOT NULL
);
-- A shell session opened by openTerminalInFolder: job-streams waits for the terminal's pod (with the
-- original's waiting text), renews the lease on input, and reattaches while the job lives.
ALTER TABLE shell_session ADD COLUMN terminal boolean NOT NULL DEFAULT false;
