package monitor

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ucloud-im/knative-im/shared/store"
)

// groupWriter commits the monitor's writes (each change's usage record and intent, the batched
// acceptances) that arrive together in one transaction: with a durable database each commit waits for its
// WAL flush, and at 100 changes/s the two commits per change, one after the other, were most of a change's
// p99. A lone write is committed at once (nobody waits to fill a group); the writes arriving while a commit
// runs form the next group. Each caller returns only after its own writes committed, so the intent is
// durable before the change is sent, as before. One transaction at a time: the monitor's writes to a job's
// rows cannot deadlock with each other.
type groupWriter struct {
	pool *pgxpool.Pool

	mu       sync.Mutex
	pending  []*groupWrite
	flushing bool
}

type groupWrite struct {
	queue func(b *pgx.Batch)
	done  chan error
}

// write commits what queue queues and returns once it is committed (or failed: then none of it was).
func (g *groupWriter) write(ctx context.Context, queue func(b *pgx.Batch)) error {
	w := &groupWrite{queue: queue, done: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, w)
	lead := !g.flushing
	g.flushing = true
	g.mu.Unlock()
	if lead {
		// This caller commits groups until none is left; its ctx ending must not cut off the others' commit.
		g.flush(context.WithoutCancel(ctx))
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush commits one group; if more writes arrived meanwhile, another goroutine commits them, so the caller
// that led this group goes on with its own change without waiting for the next ones.
func (g *groupWriter) flush(ctx context.Context) {
	g.mu.Lock()
	group := g.pending
	g.pending = nil
	g.mu.Unlock()
	if err := g.commit(ctx, group); err != nil && len(group) > 1 {
		// One failing write must not fail the others again and again: each alone, with its own answer.
		for _, w := range group {
			w.done <- g.commit(ctx, []*groupWrite{w})
		}
	} else {
		for _, w := range group {
			w.done <- err
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pending) == 0 {
		g.flushing = false
		return
	}
	go g.flush(ctx)
}

func (g *groupWriter) commit(ctx context.Context, group []*groupWrite) error {
	var b pgx.Batch
	for _, w := range group {
		w.queue(&b)
	}
	if b.Len() == 0 {
		return nil
	}
	// A batch is one implicit transaction (one Sync for all its statements): atomic, one round trip,
	// no BEGIN and COMMIT of its own.
	return store.Classify(g.pool.SendBatch(ctx, &b).Close())
}
