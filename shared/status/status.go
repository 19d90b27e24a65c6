// Package status is the status-report function: job state changes arrive as CloudEvents from the monitor,
// are written to a PostgreSQL outbox in the transaction that deduplicates them, and are delivered to
// Core's jobs/control/update in batches, oldest first per job, with backoff, marked delivered only after
// Core answered 2xx.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/jobevents"
	"github.com/ucloud-im/knative-im/shared/metrics"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/tracing"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// The job state event's names, kept for the tests and manifests that check against them; its owner is
// shared/jobevents.
const (
	EventType      = jobevents.Type
	EventSource    = jobevents.Source
	ExtensionJobID = jobevents.ExtensionJobID
	ExtensionSeq   = jobevents.ExtensionSeq
	// BatchSize is the most updates sent to Core in one call.
	BatchSize = 100
)

// Updater is the Core call the outbox is delivered with.
type Updater interface {
	UpdateJobs(ctx context.Context, items []ucloud.ResourceUpdateAndID[ucloud.JobUpdate]) error
}

// Reporter accepts events into the outbox and drains it to Core.
type Reporter struct {
	Pool *pgxpool.Pool
	Core Updater
	Log  *slog.Logger
	// MaxBackoff caps the wait between failed deliveries (default 30 s).
	MaxBackoff time.Duration
	// Poll is how often the drainer looks without being woken (default 5 s): an earlier instance may have
	// left rows.
	Poll time.Duration
	// Metrics, when set, counts the updates delivered and rejected (and reads Stats at each scrape).
	Metrics *metrics.Outbox

	wake    chan struct{}
	inserts groupCommit
}

// defaultPoll is Reporter.Poll unless set.
const defaultPoll = 5 * time.Second

// NewReporter makes a reporter; Run drains in the background.
func NewReporter(pool *pgxpool.Pool, core Updater, log *slog.Logger) *Reporter {
	return &Reporter{Pool: pool, Core: core, Log: log, MaxBackoff: 30 * time.Second, Poll: defaultPoll, wake: make(chan struct{}, 1)}
}

// Handle is the CloudEvent handler: it stores the update durably (or recognises it as a duplicate) before
// acknowledging, then wakes the drainer. An event marked stored (jobevents.MarkStored: nearly every change)
// has its row in the outbox already, written by the monitor in the transaction of its intent: the drainer is
// woken at once, with no database round trip. That row may not be on disk yet (the monitor commits it
// lazily); the monitor's durable commit of the change's acceptance, after this answer, covers it.
func (r *Reporter) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	jobID, seq, u, err := jobevents.Parse(e)
	if jobID != "" {
		fn.WithJobID(ctx, jobID)
	}
	if err != nil {
		return nil, err
	}
	if jobevents.Stored(e) {
		r.Wake()
		return nil, nil
	}
	if err := r.store(ctx, e.ID(), jobID, seq, u); err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			return nil, fn.Wrap(err, http.StatusServiceUnavailable, "DATABASE_UNAVAILABLE", "The provider's database is unavailable; the event will be retried.")
		}
		return nil, err
	}
	r.Wake()
	return nil, nil
}

// store writes the update; a repeated event (same id, or same job and sequence) changes nothing.
func (r *Reporter) store(ctx context.Context, eventID, jobID string, seq int64, u ucloud.JobUpdate) error {
	raw, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return r.inserts.insert(ctx, r.Pool, &outboxRow{eventID: eventID, jobID: jobID, seq: seq, update: raw, traceparent: tracing.TraceParent(ctx)})
}

// Wake asks the drainer to run soon.
func (r *Reporter) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// drainLock makes one drainer at a time deliver, across every instance, so each row is sent once.
const drainLock int64 = 0x75636f62 // "ucob"

// Run drains the outbox until ctx ends: when woken, every few seconds (an earlier instance may have left
// rows), and after a failure with exponential backoff.
func (r *Reporter) Run(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		wait := r.Poll
		if wait <= 0 {
			wait = defaultPoll
		}
		if backoff > 0 {
			wait = backoff
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
			if backoff > 0 {
				continue // a new event does not cut a backoff short
			}
		case <-time.After(wait):
		}
		if _, err := r.Drain(ctx); err != nil && ctx.Err() == nil {
			backoff = min(max(backoff*2, 200*time.Millisecond), r.MaxBackoff)
			r.Log.Warn("delivering job updates to Core failed; kept for retry", "err", err.Error(), "retry_in", backoff.String())
			continue
		}
		backoff = 0
	}
}

// Drain delivers pending rows in batches until a batch is not full (none were left when it was read),
// another instance is draining, or Core fails. It returns how many rows it delivered.
func (r *Reporter) Drain(ctx context.Context) (int, error) {
	conn, err := r.Pool.Acquire(ctx)
	if err != nil {
		return 0, store.Classify(err)
	}
	defer conn.Release()
	// The lock and the first read in one round trip: a batch runs in order, so the read runs with the lock
	// held; when another instance holds it, the read is thrown away.
	var b pgx.Batch
	b.Queue("SELECT pg_try_advisory_lock($1)", drainLock)
	b.Queue(selectPending, BatchSize)
	res := conn.SendBatch(ctx, &b)
	var locked bool
	if err := res.QueryRow().Scan(&locked); err != nil {
		res.Close()
		return 0, store.Classify(err)
	}
	if !locked {
		return 0, store.Classify(res.Close())
	}
	unlocked := false
	defer func() {
		if unlocked {
			return
		}
		if _, err := conn.Exec(context.Background(), unlockDrain, drainLock); err != nil {
			conn.Conn().Close(context.Background())
		}
	}()
	ids, items, tps, err := readPending(res.Query())
	if cerr := res.Close(); err == nil && cerr != nil {
		err = store.Classify(cerr)
	}
	if err != nil {
		return 0, err
	}
	delivered := 0
	readAt := time.Now()
	for {
		if len(items) == 0 {
			return delivered, nil
		}
		sctx, span := startDelivery(ctx, tps)
		err = r.Core.UpdateJobs(sctx, items)
		span.End()
		var refused *ucloud.StatusError
		switch {
		case errors.As(err, &refused) && refused.Status < 500:
			// Core refused the batch: send the items one by one, so one bad update cannot hold back the rest.
			n, err := r.deliverEach(ctx, conn, ids, items, tps)
			delivered += n
			if err != nil {
				return delivered, err
			}
			if ids, items, tps, err = readPending(conn.Query(ctx, selectPending, BatchSize)); err != nil {
				return delivered, err
			}
			continue
		case err != nil:
			return delivered, err
		}
		n := len(ids)
		// More is waiting when the batch was full or a change woke the drainer meanwhile or within
		// markDelay: the next read then shares the mark's round trip and the lock is kept. Otherwise the
		// outbox held no more than this batch when it was read (a row inserted since wakes the drainer
		// again): the lock goes with the mark.
		more := n == BatchSize || r.awaitWake(ctx, markDelay)
		if more && n < BatchSize {
			// Changes keep coming: the next read gathers what arrives until readGap after this one.
			more = pause(ctx, time.Until(readAt.Add(readGap)))
		}
		if more {
			readAt = time.Now()
			ids, items, tps, err = markDeliveredAndReadNext(ctx, conn, ids)
		} else {
			// Marked even when shutdown began meanwhile: Core has these rows.
			mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err = markDelivered(mctx, conn, ids, &pgx.QueuedQuery{SQL: unlockDrain, Arguments: []any{drainLock}})
			cancel()
			unlocked, items = err == nil, nil
		}
		if err != nil {
			return delivered, err
		}
		delivered += n
		r.Metrics.Delivered(n)
	}
}

// markDelay is how long the drainer waits, after Core accepted a batch, for the next change before it
// marks the batch delivered on its own: while changes keep coming (one every 20 ms at `make bench`'s 50
// a second) the mark of one batch then shares the read of the next, and the drain lock is kept, instead of
// a mark and a new drain for each. Core has the batch meanwhile; only a crash of status-report within it
// has the rows delivered again, as a crash before any mark does.
const markDelay = readGap

// readGap is the least time between two reads of the outbox while changes keep coming (the first change
// after a quiet spell is read at once), so that a read, a Core call and a mark carry several changes. At
// 50 changes a second, with the monitor's commit of each waking the drainer, most of status-report's CPU
// is wake-ups: with 20 ms `make bench` measured 0.34 s per 1,000 changes (1,247 round trips, 835 Core
// calls), with 50 ms 0.21 s (400, 396), and a change's p99 to Core 65 -> 53 ms, p50 4 -> 27 ms (3,000 pods,
// one run each). At 10,000 pods, 100 ms against 50: 0.18 s against 0.22-0.27 (200 against 400 round trips
// and Core calls), p99 111-133 ms against 84-103, p50 51-52 ms against 27-28 (two runs against four), which
// keeps monitor and status-report within 1 CPU-s per 1,000 changes with the p99 well within 200 ms. It adds
// at most readGap to a change's way to Core.
const readGap = 100 * time.Millisecond

// pause waits d, false when ctx ended first.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// awaitWake waits up to d for a wake-up of the drainer, consuming it (one already pending at once); false
// when none came (or ctx ended).
func (r *Reporter) awaitWake(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.wake:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// markDelivered records that Core accepted the rows ids, committed lazily (store.CommitLazily): the next
// batch, and the changes arriving meanwhile, no longer wait behind a disk flush after every delivery. Only
// a crash of PostgreSQL itself right after can lose the mark, and then the rows are delivered again, as
// when status-report is killed between Core's answer and this commit. A row is marked only after Core
// accepted it, so nothing is lost either way. The statements in then run after the commit, in the same
// round trip: the drain lock's release, or the next read.
func markDelivered(ctx context.Context, conn *pgxpool.Conn, ids []int64, then ...*pgx.QueuedQuery) error {
	var b pgx.Batch
	b.Queue("UPDATE outbox SET delivered_at = now() WHERE id = ANY($1)", ids)
	return store.CommitLazily(ctx, conn, &b, then...)
}

// markDeliveredAndReadNext is markDelivered followed, in its round trip, by the next read of pending rows.
func markDeliveredAndReadNext(ctx context.Context, conn *pgxpool.Conn, delivered []int64) (ids []int64, items []ucloud.ResourceUpdateAndID[ucloud.JobUpdate], tps []string, _ error) {
	var next pgx.Batch
	next.Queue(selectPending, BatchSize).Query(func(rows pgx.Rows) error {
		var err error
		ids, items, tps, err = readPending(rows, nil)
		return err
	})
	if err := markDelivered(ctx, conn, delivered, next.QueuedQueries...); err != nil {
		return nil, nil, nil, err
	}
	return ids, items, tps, nil
}

// unlockDrain releases drainLock (a session lock: not undone by a transaction's end).
const unlockDrain = "SELECT pg_advisory_unlock($1)"

// selectPending reads the oldest rows waiting for delivery, per job in sequence order.
const selectPending = `SELECT id, job_id, update, coalesce(traceparent, '') FROM outbox WHERE delivered_at IS NULL ORDER BY job_id, seq LIMIT $1`

// readPending reads the rows of selectPending: their ids, updates and stored traceparents.
func readPending(rows pgx.Rows, err error) (ids []int64, items []ucloud.ResourceUpdateAndID[ucloud.JobUpdate], tps []string, _ error) {
	if err != nil {
		return nil, nil, nil, store.Classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var item ucloud.ResourceUpdateAndID[ucloud.JobUpdate]
		var raw []byte
		var tp string
		if err := rows.Scan(&id, &item.ID, &raw, &tp); err != nil {
			return nil, nil, nil, err
		}
		if err := json.Unmarshal(raw, &item.Update); err != nil {
			return nil, nil, nil, fmt.Errorf("outbox row %d: %w", id, err)
		}
		ids = append(ids, id)
		items = append(items, item)
		tps = append(tps, tp)
	}
	return ids, items, tps, store.Classify(rows.Err())
}

// deliverEach sends items singly; one Core refuses on its own is recorded as rejected, with Core's reason,
// and logged: kept, not retried forever.
func (r *Reporter) deliverEach(ctx context.Context, conn *pgxpool.Conn, ids []int64, items []ucloud.ResourceUpdateAndID[ucloud.JobUpdate], tps []string) (int, error) {
	for i, item := range items {
		sctx, span := startDelivery(ctx, tps[i:i+1])
		err := r.Core.UpdateJobs(sctx, items[i:i+1])
		span.End()
		var refused *ucloud.StatusError
		reason := ""
		switch {
		case errors.As(err, &refused) && refused.Status < 500:
			reason = refused.Error()
			r.Log.Error("Core refused a job update; recorded as rejected", "job_id", item.ID, "err", reason)
			r.Metrics.Rejected()
		case err != nil:
			return i, err
		}
		if _, err := conn.Exec(ctx, "UPDATE outbox SET delivered_at = now(), rejected = nullif($2, '') WHERE id = $1", ids[i], reason); err != nil {
			return i, store.Classify(err)
		}
		if reason == "" {
			r.Metrics.Delivered(1)
		}
	}
	return len(items), nil
}

// Pending counts undelivered rows (readiness detail and tests).
func (r *Reporter) Pending(ctx context.Context) (int, error) {
	var n int
	err := r.Pool.QueryRow(ctx, "SELECT count(*) FROM outbox WHERE delivered_at IS NULL").Scan(&n)
	return n, store.Classify(err)
}

// Stats reads what the outbox holds now: the undelivered rows and the age of the oldest, by the database's
// clock (the one that stamped it). The metrics read it at each scrape; both come from the partial index of
// pending rows, never a scan of the delivered ones kept for retention.
func (r *Reporter) Stats(ctx context.Context) (metrics.OutboxStats, error) {
	var s metrics.OutboxStats
	var age float64
	err := r.Pool.QueryRow(ctx, `SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
		FROM outbox WHERE delivered_at IS NULL`).Scan(&s.Pending, &age)
	s.OldestPending = time.Duration(age * float64(time.Second))
	return s, store.Classify(err)
}

// Sweep deletes delivered outbox rows (refused ones included: they carry delivered_at too) delivered
// before cutoff; rows waiting for delivery are never touched. It is status-report's retention.
func (r *Reporter) Sweep(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		tag, err := r.Pool.Exec(ctx, `DELETE FROM outbox WHERE id IN (
			SELECT id FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < $1 LIMIT $2)`, cutoff, store.SweepBatch)
		if err != nil {
			return total, store.Classify(err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < store.SweepBatch {
			return total, nil
		}
	}
}
