package status

import "github.com/jackc/pgx/v5"

// OutboxRow is one job update waiting in the outbox for delivery to Core. status-report drains the table
// (Reporter.Drain); two writers put rows in: the monitor, in the transaction that records its intent to send
// the change, and status-report, for each job state event it accepts. Both insert the same row for the
// same event, so whichever comes second changes nothing.
type OutboxRow struct {
	EventID string
	JobID   string
	Seq     int64
	// Update is the JobUpdate as JSON (the event's data).
	Update []byte
	// TraceParent is the W3C traceparent the delivery to Core continues ("" without one).
	TraceParent string
}

// QueueOutboxInsert queues the insert of r on b. A row already there (the same event id, or the same job and
// sequence number) is left as it is: a resent or redelivered event is a duplicate, and inserting nothing
// writes nothing, so the duplicate's commit does not wait for a WAL flush.
func QueueOutboxInsert(b *pgx.Batch, r OutboxRow) {
	b.Queue(`INSERT INTO outbox (event_id, job_id, seq, update, traceparent) VALUES ($1, $2, $3, $4, nullif($5, '')) ON CONFLICT DO NOTHING`,
		r.EventID, r.JobID, r.Seq, r.Update, r.TraceParent)
}
