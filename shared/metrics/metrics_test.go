package metrics_test

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/util/workqueue"

	"github.com/ucloud-im/knative-im/shared/metrics"
	"github.com/ucloud-im/knative-im/test/scrape"
)

func read(t *testing.T, r *metrics.Registry, prefixes ...string) scrape.Samples {
	t.Helper()
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	got, err := scrape.Get(srv.URL + metrics.Path)
	if err != nil {
		t.Fatal(err)
	}
	return scrape.Delta(scrape.Samples{}, got, prefixes...)
}

// client-go's own rate-limited queue, given the provider, reports under the controllers' names: three adds
// of which one is a duplicate while queued, one retry, the depth back to 0 once all are done.
func TestWorkQueueReportsThroughTheProvider(t *testing.T) {
	r := metrics.New("monitor")
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Millisecond, time.Millisecond),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "jobs", MetricsProvider: metrics.NewWorkQueue(r)})
	defer q.ShutDown()
	q.Add("a")
	q.Add("b")
	q.Add("a") // already queued: not an add
	if got := read(t, r, "workqueue_depth", "workqueue_adds_total"); !cmp.Equal(got, scrape.Samples{`workqueue_depth{name="jobs"}`: 2, `workqueue_adds_total{name="jobs"}`: 2}) {
		t.Fatalf("after 3 adds of 2 items: %v", got)
	}
	a, _ := q.Get()
	q.AddRateLimited(a) // a failed reconcile
	q.Done(a)
	for range 2 {
		item, _ := q.Get()
		q.Forget(item)
		q.Done(item)
	}
	want := scrape.Samples{
		`workqueue_adds_total{name="jobs"}`:                   3,
		`workqueue_retries_total{name="jobs"}`:                1,
		`workqueue_work_duration_seconds_count{name="jobs"}`:  3,
		`workqueue_queue_duration_seconds_count{name="jobs"}`: 3,
	}
	got := read(t, r, "workqueue_adds_total", "workqueue_retries_total", "workqueue_work_duration_seconds_count", "workqueue_queue_duration_seconds_count")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if d := read(t, r, "workqueue_depth")[`workqueue_depth{name="jobs"}`]; d != 0 {
		t.Errorf("depth %v after every item was done", d)
	}
}

// Open sessions go up while open and down when closed; the monitor's leader gauge follows the lease; a
// reconcile is counted by result.
func TestSessionsLeaderAndReconciles(t *testing.T) {
	r := metrics.New("x")
	s := metrics.NewSessions(r)
	closeA, closeB := s.Open("shell"), s.Open("shell")
	closeF := s.Open("follow")
	closeA()
	m := metrics.NewMonitor(r)
	m.SetLeader(true)
	m.ObserveReconcile(nil, time.Millisecond)
	m.ObserveReconcile(errors.New("x"), time.Millisecond)
	want := scrape.Samples{
		`ucloud_im_websocket_sessions_open{kind="shell"}`:                    1,
		`ucloud_im_websocket_sessions_open{kind="follow"}`:                   1,
		"ucloud_im_monitor_leader":                                           1,
		`ucloud_im_monitor_reconcile_duration_seconds_count{result="ok"}`:    1,
		`ucloud_im_monitor_reconcile_duration_seconds_count{result="error"}`: 1,
	}
	got := read(t, r, "ucloud_im_websocket_sessions_open", "ucloud_im_monitor_leader", "ucloud_im_monitor_reconcile_duration_seconds_count")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	closeB()
	closeF()
	m.SetLeader(false)
	if got := read(t, r, "ucloud_im_websocket_sessions_open", "ucloud_im_monitor_leader"); len(got) != 0 {
		t.Errorf("after closing every session and losing the lease, non-zero: %v", got)
	}
}
