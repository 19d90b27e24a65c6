package status

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ucloud-im/knative-im/shared/store"
)

// outboxRow is one event waiting to be inserted.
type outboxRow struct {
	eventID, jobID string
	seq            int64
	traceparent    string // the event's trace ("" without one), so the update to Core joins it
	update         []byte
	done           chan error
}

// groupCommit inserts the events that arrive together in one transaction: with a durable database each
// commit waits for its WAL flush, so one commit per event made concurrent events queue behind each
// other's flushes. A lone event is inserted at once (nobody waits to fill a group); the events arriving
// while a commit runs form the next group. Each event is acknowledged only after its group committed.
type groupCommit struct {
	mu       sync.Mutex
	pending  []*outboxRow
	flushing bool
}

// insert stores r (or recognises it as a duplicate) and returns once it is committed.
func (g *groupCommit) insert(ctx context.Context, pool *pgxpool.Pool, r *outboxRow) error {
	r.done = make(chan error, 1)
	g.mu.Lock()
	g.pending = append(g.pending, r)
	lead := !g.flushing
	g.flushing = true
	g.mu.Unlock()
	if lead {
		// This caller commits groups until none is left; the request context of one event must not cut
		// off the others' commit, so the groups run without it.
		g.flush(context.WithoutCancel(ctx), pool)
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush commits one group; if more events arrived meanwhile, another goroutine commits them, so the
// caller that led this group answers its own event without waiting for the next ones.
func (g *groupCommit) flush(ctx context.Context, pool *pgxpool.Pool) {
	g.mu.Lock()
	group := g.pending
	g.pending = nil
	g.mu.Unlock()
	err := insertGroup(ctx, pool, group)
	for _, r := range group {
		r.done <- err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pending) == 0 {
		g.flushing = false
		return
	}
	go g.flush(ctx, pool)
}

// insertGroup inserts the rows in one transaction; a repeated event (same id, or same job and sequence)
// changes nothing.
func insertGroup(ctx context.Context, pool *pgxpool.Pool, group []*outboxRow) error {
	// In (job, sequence) order, so two instances inserting the same events cannot deadlock.
	slices.SortFunc(group, func(a, b *outboxRow) int {
		return cmp.Or(strings.Compare(a.jobID, b.jobID), cmp.Compare(a.seq, b.seq))
	})
	var b pgx.Batch
	for _, r := range group {
		QueueOutboxInsert(&b, OutboxRow{EventID: r.eventID, JobID: r.jobID, Seq: r.seq, Update: r.update, TraceParent: r.traceparent})
	}
	// The listening instance, perhaps another, is woken too: this instance's own drain gives up when
	// another holds the drain lock, and that one may have read the outbox just before this commit.
	b.Queue("SELECT pg_notify($1, '')", outboxChannel)
	// A batch is one implicit transaction (one Sync for all its statements): atomic, in one round trip
	// instead of three with BEGIN and COMMIT.
	return store.Classify(pool.SendBatch(ctx, &b).Close())
}
