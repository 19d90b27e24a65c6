package monitor

import (
	"sync"
	"time"
)

// stages times the steps of one reconcile, logged with the change it reports (where a change's latency
// goes: make bench sums them).
type stages struct {
	last time.Time
	took map[string]int64 // step -> microseconds
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

func newStages() *stages { return &stages{last: time.Now(), took: map[string]int64{}} }

func (s *stages) mark(step string) {
	now := time.Now()
	s.took[step] = now.Sub(s.last).Microseconds()
	s.last = now
}
