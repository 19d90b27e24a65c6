package monitor

import (
	"context"
	"sync"

	"github.com/ucloud-im/knative-im/shared/store"
)

// lastStates is the leading monitor's memory of job_state. The leader is the table's only writer, so once
// rebuilt from the table on election it answers "what did we last report" without a database round trip
// per reconcile (at 10,000 jobs every resync asked that of each). A job whose write failed (it may or may
// not have committed) is marked unsure and read from the table again; before the rebuild (Reconcile
// called on its own, as the tests do) every question goes to the table.
type lastStates struct {
	db     *store.JobStates
	mu     sync.Mutex
	loaded bool
	rows   map[string]store.JobStateRow
	unsure map[string]bool
}

func newLastStates(db *store.JobStates) *lastStates {
	return &lastStates{db: db, rows: map[string]store.JobStateRow{}, unsure: map[string]bool{}}
}

// load rebuilds the memory from the table.
func (l *lastStates) load(ctx context.Context) error {
	all, err := l.db.All(ctx)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rows, l.unsure, l.loaded = all, map[string]bool{}, true
	return nil
}

// get answers the job's row: from memory when it is sure, else from the table.
func (l *lastStates) get(ctx context.Context, jobID string) (store.JobStateRow, error) {
	l.mu.Lock()
	row := l.rows[jobID]
	sure := l.loaded && !l.unsure[jobID]
	l.mu.Unlock()
	if sure {
		return row, nil // a job missing from a loaded memory has no row: never reported
	}
	row, err := l.db.Last(ctx, jobID)
	if err != nil {
		return row, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loaded {
		if row == (store.JobStateRow{}) {
			delete(l.rows, jobID)
		} else {
			l.rows[jobID] = row
		}
		delete(l.unsure, jobID)
	}
	return row, nil
}

// set records a row the table now holds (after a write that succeeded).
func (l *lastStates) set(jobID string, row store.JobStateRow) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loaded {
		l.rows[jobID] = row
		delete(l.unsure, jobID)
	}
}

// doubt marks the job's row unknown after a failed write: the next get reads the table.
func (l *lastStates) doubt(jobID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unsure[jobID] = true
}

// forget drops a row the retention sweep deleted.
func (l *lastStates) forget(jobID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.rows, jobID)
}

// unfinished lists the jobs last reported in a state that is not final, from memory once loaded.
func (l *lastStates) unfinished(ctx context.Context) ([]string, error) {
	l.mu.Lock()
	if !l.loaded || len(l.unsure) > 0 {
		l.mu.Unlock()
		return l.db.Unfinished(ctx)
	}
	ids := make([]string, 0, len(l.rows))
	for id, r := range l.rows {
		if !r.State.Final() {
			ids = append(ids, id)
		}
	}
	l.mu.Unlock()
	return ids, nil
}
