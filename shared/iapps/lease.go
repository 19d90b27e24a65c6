package iapps

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ucloud-im/knative-im/shared/store"
)

// Leases is the terminal_lease table: when the owner of an integrated terminal last typed in it (or opened
// it). openTerminalInFolder starts or renews it (config-update), keystrokes renew it (job-streams, UPDATE
// only), and the monitor reads it to stop a terminal idle for longer than its IdleTimeout. Times are the
// database's clock, so instances with skewed clocks agree.
type Leases struct {
	Pool *pgxpool.Pool
}

// Start sets the lease of jobID to now, making its row when there is none.
func (l Leases) Start(ctx context.Context, jobID string) error {
	_, err := l.Pool.Exec(ctx, `INSERT INTO terminal_lease (job_id, last_activity) VALUES ($1, now())
		ON CONFLICT (job_id) DO UPDATE SET last_activity = greatest(terminal_lease.last_activity, excluded.last_activity)`, jobID)
	return store.Classify(err)
}

// Renew sets an existing lease to now; it makes none (a keystroke cannot start a terminal that was never
// opened).
func (l Leases) Renew(ctx context.Context, jobID string) error {
	_, err := l.Pool.Exec(ctx, `UPDATE terminal_lease SET last_activity = greatest(last_activity, now()) WHERE job_id = $1`, jobID)
	return store.Classify(err)
}

// LastActivity is the lease of jobID; the zero time when it has none.
func (l Leases) LastActivity(ctx context.Context, jobID string) (time.Time, error) {
	var t time.Time
	err := l.Pool.QueryRow(ctx, `SELECT last_activity FROM terminal_lease WHERE job_id = $1`, jobID).Scan(&t)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	return t, store.Classify(err)
}

// Expired says whether jobID's lease is older than idle, by the database's clock (a job without a lease
// has expired; idle <= 0 never expires).
func (l Leases) Expired(ctx context.Context, jobID string, idle time.Duration) (bool, error) {
	if idle <= 0 {
		return false, nil
	}
	var alive bool
	err := l.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM terminal_lease WHERE job_id = $1 AND last_activity > now() - $2::interval)`,
		jobID, idle.String()).Scan(&alive)
	return !alive, store.Classify(err)
}

// DeleteEndedBefore removes, up to store.SweepBatch at a time, the leases last renewed before cutoff whose job
// is no longer an integrated application's (a terminal that ended; opening the terminal again registers a
// new job with a lease of its own); it says how many went. A registered terminal's lease stays however old:
// the rule that stops an idle terminal reads it. The NOT EXISTS on iapp_config is in the same statement, so
// a job registered meanwhile keeps its lease.
func (l Leases) DeleteEndedBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		tag, err := l.Pool.Exec(ctx, `DELETE FROM terminal_lease WHERE job_id IN (
			SELECT t.job_id FROM terminal_lease t WHERE t.last_activity < $1
				AND NOT EXISTS (SELECT 1 FROM iapp_config c WHERE c.job_id = t.job_id) LIMIT $2)`, cutoff, store.SweepBatch)
		if err != nil {
			return total, store.Classify(err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < store.SweepBatch {
			return total, nil
		}
	}
}

// WithLease is rec with the terminal's lease read into it (other applications have none), for the rule
// that stops an idle terminal.
func WithLease(ctx context.Context, pool *pgxpool.Pool, rec Record) (Record, error) {
	if rec.Key.App != (Terminal{}).Name() || rec.JobID == "" {
		return rec, nil
	}
	t, err := Leases{Pool: pool}.LastActivity(ctx, rec.JobID)
	if err != nil {
		return rec, err
	}
	rec.Lease = t
	return rec, nil
}

// Activity is the last moment the application was used: its configuration's last change or, for the
// terminal, its lease, whichever is later. ShouldRun decides on it.
func (r Record) Activity() time.Time {
	if r.Lease.After(r.UpdatedAt) {
		return r.Lease
	}
	return r.UpdatedAt
}
