-- Shell sessions: job-control hands one out for interactiveSession SHELL, job-streams takes it when the
-- browser's socket sends initialize (any instance can). Only the SHA-256 of the identifier is stored, so
-- what the table holds cannot open a shell. A session is bound to one job and rank, works once (used_at is
-- set by the one UPDATE that takes it) and expires unused; job-streams removes old rows.
CREATE TABLE shell_session (
    id_hash    bytea PRIMARY KEY,
    job_id     text NOT NULL,
    rank       integer NOT NULL,
    username   text NOT NULL DEFAULT '',
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX shell_session_expires ON shell_session (expires_at);
