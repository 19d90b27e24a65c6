package monitor

import (
	"context"
	"time"

	"k8s.io/client-go/util/workqueue"

	"github.com/ucloud-im/knative-im/shared/iapps"
)

// resyncPass queues, every Resync, the jobs that may have no pod to send an event: unfinished ones (their
// pods may have gone while we were down) and integrated applications (their pod may need recreating).
// After the first pass the jobs are spread over the period, so that a pod event never waits behind
// thousands of re-examinations queued at once.
func (m *Monitor) resyncPass(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string]) {
	ticker := time.NewTicker(m.Resync)
	defer ticker.Stop()
	for first := true; ; first = false {
		ids, err := m.podlessCandidates(ctx)
		if err != nil {
			m.Log.Warn("listing jobs to resync failed", "err", err.Error())
		}
		for i, id := range ids {
			if first {
				queue.Add(id)
			} else {
				queue.AddAfter(id, time.Duration(i)*m.Resync/time.Duration(len(ids)))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

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
