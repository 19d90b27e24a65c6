package monitor

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ucloud-im/knative-im/shared/store"
)

// acceptedWriter records accepted changes in job_state in batches, off the reconcile's path. Losing one
// (a crash before its write) costs only a resend: the row still holds the change as intended (SentSeq),
// so the next monitor sends it again under the same sequence number and status-report drops the copy;
// the next change's intent records it anyway (RecordIntent writes the previous accepted change).
//
// It is the monitor's durable point: the intents and outbox rows were committed lazily (groupWriter), and
// each batch of acceptances is followed by a durable commit (store.RecordAcceptedDurably), which puts it
// and them on disk. An acceptance whose intent is no longer in the table (PostgreSQL crashed before
// flushing it) is not recorded, and a batch whose durable commit failed may have been undone: lost is told
// those jobs, whose memory may be wrong, so each is read again from the table and its change written and
// sent again if it is not there.
type acceptedWriter struct {
	db   *store.JobStates
	log  *slog.Logger
	lost func(jobID string)

	mu      sync.Mutex
	pending map[string]store.Accepted
	wake    chan struct{}
}

// acceptGather is how long the acceptances of changes that follow one another are gathered into one
// batch. It delays only the durable point: a crash of PostgreSQL within it has the jobs read again (above).
// At 50 changes a second, 200 ms instead of 50 took the monitor from 1,405 to 1,126 database round trips
// per 1,000 changes and 0.59 to 0.54 CPU-s (`make bench`, 3,000 pods, one run each).
const acceptGather = 200 * time.Millisecond

func newAcceptedWriter(db *store.JobStates, log *slog.Logger, lost func(jobID string)) *acceptedWriter {
	return &acceptedWriter{db: db, log: log, lost: lost, pending: map[string]store.Accepted{}, wake: make(chan struct{}, 1)}
}

// add queues a for writing; a later change of the same job replaces an earlier one not yet written.
func (w *acceptedWriter) add(a store.Accepted) {
	w.mu.Lock()
	if old, ok := w.pending[a.JobID]; !ok || old.Seq < a.Seq {
		w.pending[a.JobID] = a
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run writes what is queued until ctx ends, then once more (a monitor stopping leaves nothing to resend).
func (w *acceptedWriter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = w.flush(flushCtx)
			return
		case <-w.wake:
		}
		// Gather the acceptances of the changes that follow within acceptGather: one round trip and one
		// disk flush for them all. Nothing waits for them (the change reached status-report already).
		select {
		case <-ctx.Done():
		case <-time.After(acceptGather):
		}
		if err := w.flush(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("recording accepted job states failed; retrying", "err", err.Error())
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			w.add(store.Accepted{}) // only to wake the next pass; the empty job id is dropped below
		}
	}
}

func (w *acceptedWriter) flush(ctx context.Context) error {
	w.mu.Lock()
	batch := make([]store.Accepted, 0, len(w.pending))
	for id, a := range w.pending {
		if id != "" {
			batch = append(batch, a)
		}
	}
	w.pending = map[string]store.Accepted{}
	w.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	// One statement per job, in job id order, as the intents' groups take their locks, so the two cannot
	// deadlock; committed lazily, then made durable (store.RecordAcceptedDurably, see acceptedWriter).
	slices.SortFunc(batch, func(a, b store.Accepted) int { return cmp.Compare(a.JobID, b.JobID) })
	found, committed, err := w.db.RecordAcceptedDurably(ctx, batch)
	switch {
	case err != nil && !committed:
		for _, a := range batch {
			w.add(a) // kept, unless a later change of the job came meanwhile
		}
		return err
	case err != nil:
		// Recorded, but whether on disk is unknown: a crash of PostgreSQL may have undone them with their
		// intents. Each job is read again from the table.
		for _, a := range batch {
			w.lost(a.JobID)
		}
		return err
	}
	for i, a := range batch {
		if !found[i] {
			w.log.Warn("the intent of an accepted job state change is gone (a crash of the database?); the job is read again",
				"job_id", a.JobID, "seq", a.Seq, "state", string(a.State))
			w.lost(a.JobID)
		}
	}
	return nil
}
