package monitor_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/monitor"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/envtest"
)

// Core gave up on a create after its 5 s timeout (and deleted the job) while the provider went on making
// the pods: the job is unknown to Core, and the sweep removes its pods (what they own goes with them). A job Core
// knows, and a job too young for Core to have confirmed, are left alone; with Core unreachable nothing
// is removed.
func TestJobsCoreDoesNotKnowAreRemoved(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, id := range []string{"301", "302", "303"} {
		r.createJob(id, 2, nil)
	}
	r.core.PutJob(ucloud.Job{ID: "301"})
	client, err := r.core.Client(ucloud.ClientOptions{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	asked := &askedJobs{JobDirectory: client}
	sweeper := &monitor.Orphans{Core: asked, Kube: env.Clientset, Namespace: r.ns, Grace: time.Minute,
		Now: func() time.Time { return time.Now().Add(2 * time.Minute) }}
	pods := func() []metav1.Object {
		list, err := env.Clientset.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelJobID})
		if err != nil {
			t.Fatal(err)
		}
		out := make([]metav1.Object, 0, len(list.Items))
		for i := range list.Items {
			p := &list.Items[i]
			if p.Labels[kube.LabelJobID] == "303" {
				p.CreationTimestamp = metav1.NewTime(time.Now().Add(90 * time.Second)) // younger than the grace
			}
			out = append(out, p)
		}
		return out
	}
	r.core.Fail("/api/jobs/control/browse", http.StatusServiceUnavailable, 1)
	if removed, err := sweeper.Sweep(ctx, pods()); err == nil || len(removed) != 0 {
		t.Fatalf("sweep with Core down removed %v (%v)", removed, err)
	}
	removed, err := sweeper.Sweep(ctx, pods())
	if err != nil || !slices.Equal(removed, []string{"302"}) {
		t.Fatalf("removed %v (%v), want [302]", removed, err)
	}
	// Core listed 301 once: the next sweep does not ask about it again (nor about 302, being removed).
	asked.ids = nil
	if removed, err := sweeper.Sweep(ctx, pods()); err != nil || len(removed) != 0 || len(asked.ids) != 0 {
		t.Fatalf("the next sweep removed %v (%v) and asked Core about %v, want nothing", removed, err, asked.ids)
	}
	envtest.Eventually(t, 30*time.Second, func() error {
		for id, want := range map[string]int{"301": 2, "302": 0, "303": 2} {
			list, err := env.Clientset.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelJobID + "=" + id})
			if err != nil {
				return err
			}
			if len(list.Items) != want {
				return fmt.Errorf("job %s has %d pods, want %d", id, len(list.Items), want)
			}
		}
		return nil
	})
}

// askedJobs records the job ids the sweep asks Core about.
type askedJobs struct {
	monitor.JobDirectory
	ids []string
}

func (a *askedJobs) KnownJobs(ctx context.Context, ids []string) (map[string]bool, error) {
	a.ids = append(a.ids, ids...)
	return a.JobDirectory.KnownJobs(ctx, ids)
}
