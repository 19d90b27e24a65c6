package monitor

import (
	"context"
	"log/slog"
	"time"

	"k8s.io/client-go/util/workqueue"

	"github.com/ucloud-im/knative-im/shared/iapps"
)

// resyncPass queues, every Resync, the jobs that may have no pod to send an event: unfinished ones (their
// pods may have gone while we were down) and integrated applications (their pod may need recreating).
// After the first pass the jobs are spread over the period, so that a pod event never waits behind
// thousands of re-examinations queued at once: in resyncSlices slices, not one timer per job, as every
// timer that fires wakes the process (10,000 jobs every 10 s were 1,000 wake-ups a second at rest).
func (m *Monitor) resyncPass(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string]) {
	resync(ctx, queue, m.Resync, m.podlessCandidates, m.Log)
}

// resync is resyncPass's loop: every period it queues what candidates lists.
func resync(ctx context.Context, queue interface{ Add(string) }, period time.Duration, candidates func(context.Context) ([]string, error), log *slog.Logger) {
	wait := time.NewTimer(period)
	defer wait.Stop()
	sleep := func(d time.Duration) bool {
		wait.Reset(d) // no stale tick: go.mod's go 1.23+ timers
		select {
		case <-ctx.Done():
			return false
		case <-wait.C:
			return true
		}
	}
	for first := true; ; first = false {
		ids, err := candidates(ctx)
		if err != nil {
			log.Warn("listing jobs to resync failed", "err", err.Error())
		}
		n := min(len(ids), resyncSlices)
		if first || n == 0 {
			n = 1 // all at once, then the period
		}
		for i := range n {
			for _, id := range ids[i*len(ids)/n : (i+1)*len(ids)/n] {
				queue.Add(id)
			}
			if !sleep(period / time.Duration(n)) {
				return
			}
		}
	}
}

// resyncSlices is how many slices a resync pass's jobs are queued in, evenly over the period.
const resyncSlices = 100

// podlessCandidates lists, once each, the unfinished jobs and the active integrated applications' jobs.
func (m *Monitor) podlessCandidates(ctx context.Context) ([]string, error) {
	unfinished, err := m.memory().unfinished(ctx)
	if err != nil {
		return nil, err
	}
	apps, err := (&iapps.ConfigStore{Pool: m.Pool}).ActiveJobs(ctx)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(unfinished)+len(apps))
	ids := make([]string, 0, len(unfinished)+len(apps))
	for _, id := range append(unfinished, apps...) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}
