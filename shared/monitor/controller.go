package monitor

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/ucloud-im/knative-im/shared/metrics"
)

// controller is the monitor's watch loop, shaped as Kubernetes' sample-controller: newController takes
// the pod informer and the work queue (injected), gives the informer its transform and index and has its
// event handlers enqueue job ids; waitForCache waits for the first list; each worker (runWorker) repeats
// processNextWorkItem, which hands one job id to sync and forgets or requeues it on the outcome. The work
// queue never gives one job to two workers at once: a job's changes are decided in order.
type controller struct {
	informer cache.SharedIndexInformer
	queue    workqueue.TypedRateLimitingInterface[string]
	queued   *queuedSince
	sync     func(ctx context.Context, jobID string, st *stages) error
	metrics  *metrics.Monitor
	log      *slog.Logger
}

// byJob indexes the informer's pods by job id, so one job's pods are found without scanning all of them
// (with 10,000 pods a scan per reconcile made the monitor's CPU grow with the square of the pod count).
const byJob = "jobId"

// podInformer is the informer the monitor watches with: the job pods source lists and watches (PodSource:
// cachedPods), indexed by job id. No informer resync: the periodic pass re-examines every unfinished job (the
// only ones time can change) and every integrated application; resyncing every pod as well queued each job
// twice per period.
func podInformer(source cache.ListerWatcher) cache.SharedIndexInformer {
	return cache.NewSharedIndexInformerWithOptions(source, &cachedPod{}, cache.SharedIndexInformerOptions{
		ObjectDescription: "job pods",
		Indexers: cache.Indexers{byJob: func(obj any) ([]string, error) {
			if id := jobOf(obj); id != "" {
				return []string{id}, nil
			}
			return nil, nil
		}},
	})
}

// newJobQueue is the work queue of job ids, with client-go's controller rate limiter for retries.
func newJobQueue(provider workqueue.MetricsProvider) workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "jobs", MetricsProvider: provider})
}

// newController wires the informer (before it starts) to queue; sync decides one job. Event handlers only
// enqueue job ids, so a burst of pod events for a job is one pass.
func newController(informer cache.SharedIndexInformer, queue workqueue.TypedRateLimitingInterface[string],
	sync func(ctx context.Context, jobID string, st *stages) error, m *metrics.Monitor, log *slog.Logger) (*controller, error) {
	c := &controller{informer: informer, queue: queue, queued: &queuedSince{at: map[string]time.Time{}}, sync: sync, metrics: m, log: log}
	if _, err := c.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueue, UpdateFunc: func(_, n any) { c.enqueue(n) }, DeleteFunc: c.enqueue,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *controller) enqueue(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if id := jobOf(obj); id != "" {
		c.queued.add(id)
		c.queue.Add(id)
	}
}

// pods is the informer's cache, indexed by job (byJob).
func (c *controller) pods() cache.Indexer { return c.informer.GetIndexer() }

// waitForCache waits until the informer holds the first list.
func (c *controller) waitForCache(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), c.informer.HasSynced) {
		return errors.New("pod informer did not sync")
	}
	return nil
}

// runWorker processes job ids until the queue shuts down.
func (c *controller) runWorker(ctx context.Context) {
	for c.processNextWorkItem(ctx) {
	}
}

// processNextWorkItem syncs one job: forgotten when it succeeded (or the monitor is stopping), requeued
// with backoff when it failed. It answers false once the queue shut down.
func (c *controller) processNextWorkItem(ctx context.Context) bool {
	id, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(id)
	st := newStages()
	st.set("queued", c.queued.take(id, st.last))
	began := time.Now()
	err := c.sync(ctx, id, st)
	c.metrics.ObserveReconcile(err, time.Since(began))
	if err != nil && ctx.Err() == nil {
		c.log.Warn("reconcile failed; retrying", "job_id", id, "err", err.Error())
		c.queue.AddRateLimited(id)
		return true
	}
	c.queue.Forget(id)
	return true
}
