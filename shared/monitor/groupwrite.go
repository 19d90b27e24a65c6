package monitor

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ucloud-im/knative-im/shared/status"
	"github.com/ucloud-im/knative-im/shared/store"
)

// groupWriter commits the monitor's writes (each change's usage record, intent and outbox row) that
// arrive together in one transaction. A write is committed at once while fewer than maxCommits commits run
// (nobody waits to fill a group); the writes arriving while all of them run form the next groups. Several
// commits run side by side because on a busy machine one database backend executing every group alone is
// starved of CPU. Each caller returns only after its own writes committed: visible to every session, so
// status-report finds the outbox row, and kept across any crash of the monitor.
//
// The commits are lazy (store.CommitLazily): they do not wait for their WAL flush. A durable commit was the
// floor of a change's latency (its p99 alone was above 200 ms on a busy disk) while only a crash of
// PostgreSQL itself within the WAL writer's delay can undo a lazy one. The durable point comes after the
// send, off the change's path: the durable seal after the acceptances (acceptedWriter) flushes the log past
// the intent, and an acceptance finding its intent gone has the job read again and its change sent again.
//
// Groups running side by side cannot deadlock each other: every group takes its rows' locks in job id
// order (rowWrite; one job's writes keep their own order), so no two wait on each other in a cycle.
type groupWriter struct {
	pool *pgxpool.Pool

	mu      sync.Mutex
	pending []*groupWrite
	running int
}

// maxCommits is how many group commits run at once (each on a connection of the pool).
const maxCommits = 8

// rowWrite is one statement on the rows of one job; outbox: it inserts into status-report's outbox.
type rowWrite struct {
	jobID  string
	queue  func(b *pgx.Batch)
	outbox bool
}

type groupWrite struct {
	rows []rowWrite
	done chan groupResult
}

// groupResult is a group's commit: its error, and whether a status-report instance listens for the
// outbox rows it wrote (status.QueueWakeUp): their events need not be sent.
type groupResult struct {
	err       error
	listening bool
}

// write commits rows and returns once they are committed (or failed: then none of them was), with whether
// status-report listens for their outbox rows.
func (g *groupWriter) write(ctx context.Context, rows ...rowWrite) (listening bool, _ error) {
	w := &groupWrite{rows: rows, done: make(chan groupResult, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, w)
	lead := g.running < maxCommits
	if lead {
		g.running++
	}
	g.mu.Unlock()
	if lead {
		// This caller commits what is pending; its ctx ending must not cut off the others' commit.
		g.flush(context.WithoutCancel(ctx))
	}
	select {
	case res := <-w.done:
		return res.listening, res.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// flush commits what is pending as one group; if more writes arrived meanwhile, another goroutine commits
// them, so the caller that led this group goes on with its own change without waiting for the next ones.
func (g *groupWriter) flush(ctx context.Context) {
	g.mu.Lock()
	group := g.pending
	g.pending = nil
	g.mu.Unlock()
	if len(group) > 0 {
		if res := g.commit(ctx, group); res.err != nil && len(group) > 1 {
			// One failing write must not fail the others again and again: each alone, with its own answer.
			for _, w := range group {
				w.done <- g.commit(ctx, []*groupWrite{w})
			}
		} else {
			for _, w := range group {
				w.done <- res
			}
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pending) == 0 {
		g.running--
		return
	}
	go g.flush(ctx)
}

func (g *groupWriter) commit(ctx context.Context, group []*groupWrite) groupResult {
	var rows []rowWrite
	for _, w := range group {
		rows = append(rows, w.rows...)
	}
	if len(rows) == 0 {
		return groupResult{}
	}
	// Locks in job id order (stable: a job's own writes keep theirs).
	slices.SortStableFunc(rows, func(a, b rowWrite) int { return cmp.Compare(a.jobID, b.jobID) })
	var b pgx.Batch
	for _, r := range rows {
		r.queue(&b)
	}
	var res groupResult
	if slices.ContainsFunc(rows, func(r rowWrite) bool { return r.outbox }) {
		// Last: the hand-over lock it takes is held only for the rest of this transaction.
		status.QueueWakeUp(&b, &res.listening)
	}
	// Lazily: see groupWriter.
	res.err = store.CommitLazily(ctx, g.pool, &b)
	if res.err != nil {
		res.listening = false
	}
	return res
}
