package status

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ucloud-im/knative-im/shared/store"
)

// A running status-report instance wakes its drainer from a PostgreSQL notification instead of an event
// per change: the monitor commits each change's outbox row itself, and while an instance listens, the
// commit's notification is all the drainer needs. The monitor learns in the same transaction whether one
// listens (QueueWakeUp) and sends the change's event only when none does; Knative then scales
// status-report from zero on that event, as before.
//
// Two advisory locks (keys of this package, beside drainLock) make the hand-over exact:
//   - listenerLock, held exclusively by the one listening instance for as long as it listens (a session
//     lock: it ends with the session, so a crashed instance stops counting at once);
//   - handoffLock, held shared by every commit that found the listener, until it commits, and taken
//     exclusively by a listener that stops: once it has it, every commit that found the listener has
//     committed and notified it, so the listener's last drain, after it let go of both, sees each of their
//     rows; the commits meanwhile and after find no listener and send their events.
const (
	outboxChannel       = "ucloud_im_outbox"
	listenerLock  int64 = 0x75636f6c // "ucol"
	handoffLock   int64 = 0x75636f68 // "ucoh"
)

// listenRetry is how long an instance waits before trying again to listen (another instance listens, or
// the database failed).
const listenRetry = time.Second

// QueueWakeUp queues, on a transaction that inserts outbox rows, the notification that wakes the
// listening drainer when it commits, and the question whether an instance listens: *listening is set when
// the batch has run. Without a listener the rows' event must be sent; with one it need not.
func QueueWakeUp(b *pgx.Batch, listening *bool) {
	// Neither lock is waited for: a commit never stalls behind a status-report instance. The hand-over
	// lock not had (a listener is stopping) counts as no listener. The listener's lock is either free (and
	// now held shared until the commit, which keeps a new listener from starting in between) or held by
	// the listener. CASE, not AND: the hand-over lock must be had before the listener counts.
	b.Queue(`SELECT CASE WHEN pg_try_advisory_xact_lock_shared($1) THEN NOT pg_try_advisory_xact_lock_shared($2) ELSE false END`,
		handoffLock, listenerLock).QueryRow(func(row pgx.Row) error {
		return row.Scan(listening)
	})
	b.Queue("SELECT pg_notify($1, '')", outboxChannel)
}

// Listen makes this instance the outbox's listener while ctx lasts, when no other instance is: each
// notification wakes the drainer. When ctx ends it hands over (see listenerLock) and drains once more.
// A failed connection is opened again after listenRetry; meanwhile the monitor sends events.
func (r *Reporter) Listen(ctx context.Context) {
	for {
		err := r.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.Log.Warn("listening for outbox rows failed; events wake the drainer meanwhile", "err", err.Error(), "retry_in", listenRetry.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(listenRetry):
		}
	}
}

// listen listens until ctx ends or the connection fails; it returns nil without listening when another
// instance is the listener.
func (r *Reporter) listen(ctx context.Context) error {
	c, err := r.Pool.Acquire(ctx)
	if err != nil {
		return store.Classify(err)
	}
	// A connection of its own: the session holds the lock, and it is idle between notifications.
	conn := c.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	// LISTEN before the lock: a commit that finds the lock held notifies a session already listening.
	if _, err := conn.Exec(ctx, "LISTEN "+outboxChannel); err != nil {
		return store.Classify(err)
	}
	var got bool
	// Not a waiting pg_advisory_lock: while it waited, commits would find the lock taken and send no event.
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", listenerLock).Scan(&got); err != nil {
		return store.Classify(err)
	}
	if !got {
		return nil // another instance listens, or a commit that found none is running: try again later
	}
	r.Wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			if ctx.Err() != nil {
				r.handOver(conn)
				return nil
			}
			return store.Classify(err)
		}
		r.Wake()
	}
}

// handOver stops listening without leaving a row behind: it waits until every commit that found this
// listener has committed, lets go of the listener's lock and delivers what they wrote.
func (r *Reporter) handOver(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", handoffLock); err != nil {
		r.Log.Warn("stopping the outbox listener: waiting for the monitor's commits failed; their rows wait for the next drain", "err", err.Error())
		return
	}
	// The session's end releases both locks; from then on the monitor sends events.
	if err := conn.Close(ctx); err != nil {
		r.Log.Warn("stopping the outbox listener", "err", err.Error())
	}
	if _, err := r.Drain(ctx); err != nil {
		r.Log.Warn("the last drain before stopping failed; the rows are kept for the next instance", "err", err.Error())
	}
}
