-- The trace context (W3C traceparent) of the event an update came from, so the update sent to Core joins
-- the trace of Core's create call (README, Observability). Empty when the event carried none.
ALTER TABLE outbox ADD COLUMN traceparent text;
