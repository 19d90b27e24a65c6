package monitor

import (
	"log/slog"
	"sync"
	"time"
)

// stages times the steps of one reconcile, logged with the change it reports (where a change's latency
// goes: make bench sums them). A slice of attributes, not a map: every reconcile makes one, and the log
// writes it as a JSON object without reflection.
type stages struct {
	last time.Time
	took []slog.Attr // step: microseconds, in the order the steps ran
}

// queuedSince remembers when a pod event first queued each job, until a worker takes it.
type queuedSince struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (q *queuedSince) add(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.at[id]; !ok {
		q.at[id] = time.Now()
	}
}

// take answers how long id waited (zero when no pod event queued it) and forgets it.
func (q *queuedSince) take(id string, now time.Time) time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	t, ok := q.at[id]
	if !ok {
		return 0
	}
	delete(q.at, id)
	return now.Sub(t)
}

func newStages() *stages { return &stages{last: time.Now(), took: make([]slog.Attr, 0, 9)} }

// set records a step's time measured elsewhere.
func (s *stages) set(step string, took time.Duration) {
	s.took = append(s.took, slog.Int64(step, took.Microseconds()))
}

// mark records the step that ended now.
func (s *stages) mark(step string) {
	now := time.Now()
	s.set(step, now.Sub(s.last))
	s.last = now
}

// LogValue is the steps as one object: step -> microseconds.
func (s *stages) LogValue() slog.Value { return slog.GroupValue(s.took...) }
