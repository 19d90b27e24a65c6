-- The monitor records what it is about to send before sending it, so that after a crash between sending and
-- recording it can tell a resend of that very change (same sequence number: status-report drops it if it
-- arrived) from a later change (a new number, which status-report must not mistake for the duplicate).
ALTER TABLE job_state ADD COLUMN sent_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE job_state ADD COLUMN sent_state text NOT NULL DEFAULT '';
