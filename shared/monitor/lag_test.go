package monitor_test

import (
	"context"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/monitor"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/envtest"
)

// laggingWatch is the apiserver seen through a busy machine: pod watch events reach the informer late (by
// lag), while direct requests answer at once.
type laggingWatch struct {
	cache.ListerWatcher
	lag time.Duration
}

func (p laggingWatch) Watch(o metav1.ListOptions) (watch.Interface, error) {
	w, err := p.ListerWatcher.Watch(o)
	if err != nil {
		return nil, err
	}
	type stamped struct {
		at time.Time
		ev watch.Event
	}
	in, out, done := make(chan stamped, 1000), make(chan watch.Event), make(chan struct{})
	// A watch that starts with the initial list (client-go's streaming list) delivers that list on time:
	// the lag is in the events after it.
	initial := o.SendInitialEvents != nil && *o.SendInitialEvents
	go func() {
		defer close(in)
		for ev := range w.ResultChan() {
			at := time.Now()
			if initial {
				at = time.Time{}
			}
			if ev.Type == watch.Bookmark {
				initial = false
			}
			in <- stamped{at, ev}
		}
	}()
	go func() {
		defer close(out)
		for s := range in {
			select {
			case <-time.After(time.Until(s.at.Add(p.lag))):
			case <-done:
				return
			}
			select {
			case out <- s.ev:
			case <-done:
				return
			}
		}
	}()
	return &delayedWatch{Interface: w, out: out, done: done}, nil
}

type delayedWatch struct {
	watch.Interface
	out  chan watch.Event
	done chan struct{}
}

func (d *delayedWatch) ResultChan() <-chan watch.Event { return d.out }
func (d *delayedWatch) Stop() {
	select {
	case <-d.done:
	default:
		close(d.done)
	}
	d.Interface.Stop()
}

// The monitor's informer lags behind the apiserver (a loaded machine): config-update has created the
// integrated application's pod, the monitor's resync looks at the job, finds the pod through the apiserver
// in place with the stored configuration, but its informer has not seen that pod yet. It must not report
// what it did not see (it used to report SUSPENDED, "starting with its new configuration", for a pod that
// was fine, so Core got [SUSPENDED IN_QUEUE RUNNING] for an application's first start); the informer's
// event for the pod, late, brings the job back and the state is reported from the pod itself.
func TestLaggingInformerReportsOnlyWhatItSaw(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	sink, err := monitor.NewEventSink(r.sink, r.monitor.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	// A lag of several resync periods: the resync is certain to look while the informer has not seen the pod.
	pods, err := monitor.PodSource(env.Clientset, r.ns)
	if err != nil {
		t.Fatal(err)
	}
	m := &monitor.Monitor{Kube: env.Clientset, Pods: laggingWatch{ListerWatcher: pods, lag: 2 * time.Second}, Namespace: r.ns, Pool: r.db.Pool,
		Registry: iapps.BuiltinApps(iapps.AppEnv{}), Drives: r.access(r.db), DriveRefresh: driveRefresh, Sink: sink, Log: fn.NewLogger(io.Discard, "monitor", "info"), Resync: 300 * time.Millisecond}
	done := make(chan struct{})
	// Another job's pod, there before the monitor starts: once its state reaches Core, the informer has
	// synced and the resync loop runs.
	r.createJob("900", 1, nil)
	go func() { _ = m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	envtest.Eventually(t, 30*time.Second, func() error {
		if len(r.states("900")) == 0 {
			return fmt.Errorf("the monitor has not reported job 900 yet")
		}
		return nil
	})

	client, _ := r.core.Client(ucloud.ClientOptions{})
	svc := &iapps.Service{Provider: "k8s", Registry: iapps.BuiltinApps(iapps.AppEnv{}), Store: &iapps.ConfigStore{Pool: r.update.Pool}, Core: client, Kube: env.Clientset, Namespace: r.ns, Access: r.access(r.update)}
	if err := svc.Update(context.Background(), "terminal", iapps.UpdateRequest{Principal: ucloud.ResourceOwner{CreatedBy: "alice#1"}, Config: []byte(`{"folders":["/1/Home"]}`)}); err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, 30*time.Second, func() error {
		got := r.states("5000")
		if len(got) == 0 || got[len(got)-1] != "RUNNING" {
			return fmt.Errorf("Core has %v (%s)", got, r.statuses("5000"))
		}
		return nil
	})
	// Its pod was never anything but starting or running: the first start is queued, then running (or
	// straight running when the informer's first view of it is already Running).
	if got := r.states("5000"); !slices.Equal(got, []string{"IN_QUEUE", "RUNNING"}) && !slices.Equal(got, []string{"RUNNING"}) {
		t.Fatalf("Core has %v (%s), want [IN_QUEUE RUNNING]", got, r.statuses("5000"))
	}
}
