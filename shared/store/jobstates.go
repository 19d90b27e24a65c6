package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// JobStates is the one owner of the job_state table: what the monitor last reported for each job. The
// monitor writes it (through its own pool, role FnMonitor); config-update and config-reset only ask
// whether a job ended (their pools, read-only grant). Final states are SUCCESS, FAILURE and EXPIRED.
type JobStates struct {
	Pool *pgxpool.Pool
}

// JobStateRow is one job's row; the zero value is a job never reported.
type JobStateRow struct {
	State ucloud.JobState
	Seq   int64
	// SentSeq and SentState are the change last about to be sent; SentSeq > Seq means it was sent (or
	// tried) but never recorded as accepted.
	SentSeq   int64
	SentState ucloud.JobState
}

// Last reads the job's row; a job without one has the zero row.
func (j *JobStates) Last(ctx context.Context, jobID string) (JobStateRow, error) {
	var r JobStateRow
	var s, sent string
	err := j.Pool.QueryRow(ctx, "SELECT last_state, last_seq, sent_seq, sent_state FROM job_state WHERE job_id = $1", jobID).Scan(&s, &r.Seq, &r.SentSeq, &sent)
	if err = Classify(err); errors.Is(err, ErrNotFound) {
		return JobStateRow{}, nil
	}
	r.State, r.SentState = ucloud.JobState(s), ucloud.JobState(sent)
	return r, err
}

// RecordIntent records, before sending, that change seq (to state) is about to be sent after prev; prev
// (the last change accepted) is recorded with it, as its own RecordAccepted may not have been written yet.
func (j *JobStates) RecordIntent(ctx context.Context, jobID string, prev JobStateRow, seq int64, state ucloud.JobState) error {
	_, err := j.Pool.Exec(ctx, recordIntent, jobID, string(prev.State), prev.Seq, seq, string(state))
	return Classify(err)
}

// QueueIntent is RecordIntent queued on b, for a caller that commits several writes together.
func (j *JobStates) QueueIntent(b *pgx.Batch, jobID string, prev JobStateRow, seq int64, state ucloud.JobState) {
	b.Queue(recordIntent, jobID, string(prev.State), prev.Seq, seq, string(state))
}

const recordIntent = `INSERT INTO job_state (job_id, last_state, last_seq, sent_seq, sent_state) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (job_id) DO UPDATE SET sent_seq = EXCLUDED.sent_seq, sent_state = EXCLUDED.sent_state, updated_at = now(),
			last_state = CASE WHEN EXCLUDED.last_seq > job_state.last_seq THEN EXCLUDED.last_state ELSE job_state.last_state END,
			last_seq = greatest(job_state.last_seq, EXCLUDED.last_seq)`

// Accepted is one change the sink accepted.
type Accepted struct {
	JobID string
	Seq   int64
	State ucloud.JobState
}

// RecordAcceptedDurably records that the changes were accepted by the sink, each only while its intent
// is in the table (queueAccepted), in a transaction committed lazily, then, in the same round trip,
// rewrites monitor_seal's row with a durable commit: a durable commit flushes the write-ahead log up to
// itself, so once it returned these acceptances and every intent and outbox row committed before them are
// on disk. The seal has a table of its own so that, while its commit waits for the disk, it holds no lock
// a job's next intent needs (a durable acceptance held its job's row that long).
// found[i] tells whether changes[i]'s intent (or a later one's) was there. With an error, committed tells
// whether the acceptances were committed: visible, but maybe not on disk.
func (j *JobStates) RecordAcceptedDurably(ctx context.Context, changes []Accepted) (found []bool, committed bool, err error) {
	found = make([]bool, len(changes))
	var b pgx.Batch
	for i, a := range changes {
		queueAccepted(&b, a, &found[i])
	}
	committed, err = commitLazily(ctx, j.Pool, &b, &pgx.QueuedQuery{SQL: "UPDATE monitor_seal SET sealed_at = now()"})
	return found, committed, err
}

// queueAccepted queues the record that change a was accepted. It is recorded only while the change's
// intent is in the table: an intent committed lazily and undone by a crash of PostgreSQL must not be
// covered by an acceptance written after the crash, or the change, whose outbox row went with the intent,
// would count as delivered. *intentFound tells, once the batch ran, whether the intent (of a or a later
// change) was there; an acceptance older than the one recorded changes nothing.
func queueAccepted(b *pgx.Batch, a Accepted, intentFound *bool) {
	// The main query sees the row as it was before the update, which leaves sent_seq alone.
	b.Queue(`WITH accepted AS (
			UPDATE job_state SET last_state = $3, last_seq = $2, updated_at = now()
			WHERE job_id = $1 AND last_seq < $2 AND sent_seq >= $2)
		SELECT EXISTS (SELECT 1 FROM job_state WHERE job_id = $1 AND sent_seq >= $2)`, a.JobID, a.Seq, string(a.State)).
		QueryRow(func(row pgx.Row) error { return row.Scan(intentFound) })
}

// RecordAccepted records that change seq (to state) was accepted by the sink.
func (j *JobStates) RecordAccepted(ctx context.Context, jobID string, seq int64, state ucloud.JobState) error {
	_, err := j.Pool.Exec(ctx, `UPDATE job_state SET last_state = $2, last_seq = $3, updated_at = now() WHERE job_id = $1`,
		jobID, string(state), seq)
	return Classify(err)
}

// Final reports whether the job was last reported in a final state (false for a job never reported).
func (j *JobStates) Final(ctx context.Context, jobID string) (bool, error) {
	var final bool
	err := j.Pool.QueryRow(ctx, "SELECT last_state IN ('SUCCESS', 'FAILURE', 'EXPIRED') FROM job_state WHERE job_id = $1", jobID).Scan(&final)
	if err = Classify(err); errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return final, err
}

// All reads every job's row (the leading monitor's memory is rebuilt from it on election).
func (j *JobStates) All(ctx context.Context) (map[string]JobStateRow, error) {
	rows, err := j.Pool.Query(ctx, "SELECT job_id, last_state, last_seq, sent_seq, sent_state FROM job_state")
	if err != nil {
		return nil, Classify(err)
	}
	defer rows.Close()
	all := map[string]JobStateRow{}
	for rows.Next() {
		var id, s, sent string
		var r JobStateRow
		if err := rows.Scan(&id, &s, &r.Seq, &r.SentSeq, &sent); err != nil {
			return nil, Classify(err)
		}
		r.State, r.SentState = ucloud.JobState(s), ucloud.JobState(sent)
		all[id] = r
	}
	return all, Classify(rows.Err())
}

// Unfinished lists the jobs last reported in a state that is not final.
func (j *JobStates) Unfinished(ctx context.Context) ([]string, error) {
	rows, err := j.Pool.Query(ctx, `SELECT job_id FROM job_state WHERE last_state NOT IN ('SUCCESS', 'FAILURE', 'EXPIRED')`)
	if err != nil {
		return nil, Classify(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, Classify(err)
}

// The retention sweep's two steps. A job with an integrated-app configuration keeps its row: config-update
// reads it to learn that the job ended; the DELETE checks that again, as a configuration may appear between
// the two steps.

// FinalBefore lists, in job id order after after, up to limit jobs whose final state was recorded before
// cutoff and that have no integrated-app configuration.
func (j *JobStates) FinalBefore(ctx context.Context, cutoff time.Time, after string, limit int) ([]string, error) {
	rows, err := j.Pool.Query(ctx, `SELECT job_id FROM job_state s
		WHERE last_state IN ('SUCCESS', 'FAILURE', 'EXPIRED') AND updated_at < $1 AND job_id > $2
		AND NOT EXISTS (SELECT FROM iapp_config c WHERE c.job_id = s.job_id)
		ORDER BY job_id LIMIT $3`, cutoff, after, limit)
	if err != nil {
		return nil, Classify(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, Classify(err)
}

// DeleteFinal deletes the job's row if it still is what FinalBefore listed; it says how many rows went.
func (j *JobStates) DeleteFinal(ctx context.Context, jobID string, cutoff time.Time) (int64, error) {
	tag, err := j.Pool.Exec(ctx, `DELETE FROM job_state s WHERE job_id = $1
		AND last_state IN ('SUCCESS', 'FAILURE', 'EXPIRED') AND updated_at < $2
		AND NOT EXISTS (SELECT FROM iapp_config c WHERE c.job_id = s.job_id)`, jobID, cutoff)
	if err != nil {
		return 0, Classify(err)
	}
	return tag.RowsAffected(), nil
}
