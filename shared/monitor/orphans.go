package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloud-im/knative-im/shared/kube"
)

// JobDirectory tells which jobs Core knows (the Core client's KnownJobs).
type JobDirectory interface {
	KnownJobs(ctx context.Context, ids []string) (map[string]bool, error)
}

// Orphans removes the objects of jobs the provider runs but Core does not know. Core gives up on a
// provider call after 5 s; on a create it then deletes the job it had made, while the provider may still
// be making the pods. Nobody would ever stop those pods (Core will never call terminate for a job it
// deleted), so the monitor asks Core about every job it sees and removes what Core does not list.
type Orphans struct {
	Core      JobDirectory
	Kube      kubernetes.Interface
	Namespace string
	// Grace is how old a job's first pod must be before it can be an orphan: Core confirms a job only once
	// the provider has answered its create, so a young job may not be listed yet (default 2 min).
	Grace time.Duration
	Log   *slog.Logger
	Now   func() time.Time

	// confirmed are the jobs Core listed once, among those the last sweep looked at. core2 deletes a job
	// only when the provider's create failed (ResourceCreateThroughProvider); a job Core listed once stays
	// known, so it is not asked about again (at 10,000 jobs the sweep asked for all of them every minute).
	mu        sync.Mutex
	confirmed map[string]bool
}

// Sweep looks at the given pods (the monitor's informer cache: their object metadata is all it reads) and
// removes every job of theirs that is older than Grace and unknown to Core. It returns the jobs it removed.
// When Core cannot be asked it removes nothing.
func (o *Orphans) Sweep(ctx context.Context, pods []metav1.Object) ([]string, error) {
	grace := o.Grace
	if grace == 0 {
		grace = 2 * time.Minute
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	oldest := map[string]time.Time{}
	for _, p := range pods {
		id := p.GetLabels()[kube.LabelJobID]
		if id == "" || p.GetDeletionTimestamp() != nil {
			continue
		}
		if t, ok := oldest[id]; !ok || p.GetCreationTimestamp().Time.Before(t) {
			oldest[id] = p.GetCreationTimestamp().Time
		}
	}
	var candidates []string
	for id, created := range oldest {
		if now().Sub(created) >= grace {
			candidates = append(candidates, id)
		}
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	slices.Sort(candidates)
	o.mu.Lock()
	defer o.mu.Unlock()
	var ask []string
	for _, id := range candidates {
		if !o.confirmed[id] {
			ask = append(ask, id)
		}
	}
	known := map[string]bool{}
	if len(ask) > 0 {
		var err error
		if known, err = o.Core.KnownJobs(ctx, ask); err != nil {
			return nil, fmt.Errorf("ask Core which jobs it knows: %w", err)
		}
	}
	// Kept for the jobs still running only, so the memory does not outgrow the cache.
	confirmed := make(map[string]bool, len(candidates))
	for _, id := range candidates {
		if o.confirmed[id] || known[id] {
			confirmed[id] = true
		}
	}
	o.confirmed = confirmed
	var removed []string
	for _, id := range candidates {
		if confirmed[id] {
			continue
		}
		if err := o.remove(ctx, id); err != nil {
			return removed, err
		}
		if o.Log != nil {
			o.Log.Warn("removed a job Core does not know (it gave up on the create, or deleted the job)", "job_id", id)
		}
		removed = append(removed, id)
	}
	return removed, nil
}

// remove deletes the job's pods; its headless Service, NetworkPolicy and app routes are owned by its pods
// and go with them.
func (o *Orphans) remove(ctx context.Context, jobID string) error {
	if err := deleteJobPods(ctx, o.Kube, o.Namespace, jobID); err != nil {
		return fmt.Errorf("remove orphaned job %s: %w", jobID, err)
	}
	return nil
}

// sweepOrphans runs the sweep over the informer's pods every OrphanEvery until ctx ends.
func (m *Monitor) sweepOrphans(ctx context.Context) {
	every := m.OrphanEvery
	if every <= 0 {
		every = time.Minute
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if _, err := m.Orphans.Sweep(ctx, cachedObjects(m.pods.List())); err != nil && ctx.Err() == nil {
			m.Log.Warn("looking for jobs Core does not know failed; trying again later", "err", err.Error())
		}
	}
}

// cachedObjects are the informer cache's pods as their object metadata: not converted to whole pods (at
// 10,000 pods every minute, megabytes of garbage for three fields).
func cachedObjects(objs []any) []metav1.Object {
	out := make([]metav1.Object, 0, len(objs))
	for _, o := range objs {
		if c, ok := o.(*cachedPod); ok {
			out = append(out, c)
		}
	}
	return out
}
