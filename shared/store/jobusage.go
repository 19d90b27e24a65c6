package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/shared/usage"
)

// JobUsage is the one owner of the job_usage table: each charged job's running time and what of it Core's
// accounting was told. Only the monitor uses it (role FnMonitor): it records when a job starts and stops
// running, and reports the totals.
type JobUsage struct {
	Pool *pgxpool.Pool
}

// JobUsageRow is one job's running time and reports.
type JobUsageRow struct {
	JobID  string
	Charge usage.Charge
	// RunningSince is set while the job runs; Consumed is the running time before it.
	RunningSince *time.Time
	Consumed     time.Duration
	Ended        bool
	Reported     int64
	ReportedSlot int64
	// Refused says Core refused the last report.
	Refused bool
}

// Ran is the job's running time up to now.
func (r JobUsageRow) Ran(now time.Time) time.Duration {
	ran := r.Consumed
	if r.RunningSince != nil && now.After(*r.RunningSince) {
		ran += now.Sub(*r.RunningSince)
	}
	return ran
}

// Started records that the job runs since at, with its charge. A repeat (a retried report, or a job
// running again after a spell in the queue) keeps the earlier start while it still runs; an ended job
// never starts again.
func (j *JobUsage) Started(ctx context.Context, jobID string, c usage.Charge, at time.Time) error {
	var b pgx.Batch
	j.QueueStarted(&b, jobID, c, at)
	return j.exec(ctx, &b)
}

// QueueStarted is Started queued on b, for a caller that commits several writes together.
func (j *JobUsage) QueueStarted(b *pgx.Batch, jobID string, c usage.Charge, at time.Time) {
	b.Queue(`INSERT INTO job_usage (job_id, owner_type, owner, category, provider, units, frequency, running_since)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (job_id) DO UPDATE SET running_since = COALESCE(job_usage.running_since, EXCLUDED.running_since), updated_at = now()
		WHERE NOT job_usage.ended`,
		jobID, c.Owner.Type, c.Owner.Reference(), c.Category.Name, c.Category.Provider, c.Units, c.Frequency, at)
}

// Stopped records that the job stopped running at at (its running time so far is added up), and, when
// final, that it will never run again. A job that never ran has no row and is left without one.
func (j *JobUsage) Stopped(ctx context.Context, jobID string, at time.Time, final bool) error {
	var b pgx.Batch
	j.QueueStopped(&b, jobID, at, final)
	return j.exec(ctx, &b)
}

// QueueStopped is Stopped queued on b.
func (j *JobUsage) QueueStopped(b *pgx.Batch, jobID string, at time.Time, final bool) {
	b.Queue(`UPDATE job_usage SET
		consumed_ms = consumed_ms + CASE WHEN running_since IS NULL THEN 0
			ELSE GREATEST(0, floor(extract(epoch FROM $2::timestamptz - running_since) * 1000))::bigint END,
		running_since = NULL, ended = ended OR $3, updated_at = now()
		WHERE job_id = $1 AND (running_since IS NOT NULL OR ($3 AND NOT ended))`, jobID, at, final)
}

func (j *JobUsage) exec(ctx context.Context, b *pgx.Batch) error { return execQueued(ctx, j.Pool, b) }

// execQueued runs the one statement queued on b (the Queue* forms share their statement this way).
func execQueued(ctx context.Context, pool *pgxpool.Pool, b *pgx.Batch) error {
	q := b.QueuedQueries[0]
	_, err := pool.Exec(ctx, q.SQL, q.Arguments...)
	return Classify(err)
}

// Due lists the jobs whose total has not been reported in reporting period slot (nor a final total).
func (j *JobUsage) Due(ctx context.Context, slot int64) ([]JobUsageRow, error) {
	rows, err := j.Pool.Query(ctx, `SELECT job_id, owner_type, owner, category, provider, units, frequency,
		running_since, consumed_ms, ended, reported, reported_slot, refused
		FROM job_usage WHERE NOT final_reported AND reported_slot < $1 ORDER BY job_id`, slot)
	if err != nil {
		return nil, Classify(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (JobUsageRow, error) {
		var r JobUsageRow
		var kind, owner string
		var consumed int64
		err := row.Scan(&r.JobID, &kind, &owner, &r.Charge.Category.Name, &r.Charge.Category.Provider, &r.Charge.Units,
			&r.Charge.Frequency, &r.RunningSince, &consumed, &r.Ended, &r.Reported, &r.ReportedSlot, &r.Refused)
		r.Charge.Owner = ucloud.WalletOwner{Type: kind, Username: owner}
		if kind == ucloud.WalletOwnerProject {
			r.Charge.Owner = ucloud.WalletOwner{Type: kind, ProjectID: owner}
		}
		r.Consumed = time.Duration(consumed) * time.Millisecond
		return r, err
	})
	return out, Classify(err)
}

// UsageReported is what became of one job's report in a reporting period.
type UsageReported struct {
	JobID string
	// Total is what Core now holds for the job (its earlier total when Core refused the report).
	Total int64
	// Final says the job had ended and Core accepted its total: nothing is reported for it again.
	Final bool
	// Refused says Core refused the report.
	Refused bool
}

// RecordReported records, in one statement, the reports of period slot.
func (j *JobUsage) RecordReported(ctx context.Context, slot int64, reports []UsageReported) error {
	if len(reports) == 0 {
		return nil
	}
	ids := make([]string, len(reports))
	totals := make([]int64, len(reports))
	finals := make([]bool, len(reports))
	refused := make([]bool, len(reports))
	for i, r := range reports {
		ids[i], totals[i], finals[i], refused[i] = r.JobID, r.Total, r.Final, r.Refused
	}
	_, err := j.Pool.Exec(ctx, `UPDATE job_usage u SET reported = r.total, reported_slot = $5,
		final_reported = r.final AND u.ended, refused = r.refused, updated_at = now()
		FROM unnest($1::text[], $2::bigint[], $3::boolean[], $4::boolean[]) AS r(job_id, total, final, refused)
		WHERE u.job_id = r.job_id`, ids, totals, finals, refused, slot)
	return Classify(err)
}

// DeleteReportedBefore removes, up to SweepBatch at a time, the rows of jobs whose final total Core
// accepted before cutoff (retention); it says how many went.
func (j *JobUsage) DeleteReportedBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		tag, err := j.Pool.Exec(ctx, `DELETE FROM job_usage WHERE job_id IN
			(SELECT job_id FROM job_usage WHERE final_reported AND updated_at < $1 LIMIT $2)`, cutoff, SweepBatch)
		if err != nil {
			return total, Classify(err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < SweepBatch {
			return total, nil
		}
	}
}
