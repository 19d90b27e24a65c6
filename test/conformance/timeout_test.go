package conformance_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/monitor"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/envtest"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// slowPodCreates makes every pod create take longer than Core waits, and complete anyway: the apiserver
// finishes a create whether or not the caller is still there.
type slowPodCreates struct{ next http.RoundTripper }

func (s slowPodCreates) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/pods") {
		time.Sleep(fakecore.ProviderTimeout + time.Second)
		req = req.WithContext(context.WithoutCancel(req.Context()))
	}
	return s.next.RoundTrip(req)
}

func batchJob(id string) ucloud.Job {
	return fakecore.NewJob(id, ucloud.ResourceOwner{CreatedBy: "alice#1234"},
		ucloud.ProductReference{ID: "u1-standard-1", Category: "u1-standard", Provider: "k8s"}, "batch", 2)
}

// Core gives up on a create after 5 s and deletes the job; the provider, slower than that, still makes a
// pod. Once the monitor's sweep has asked Core, nothing of that job is left, while a job Core accepted
// (answered in time) runs on.
func TestCreateCoreGaveUpOnLeavesNoPods(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	call, err := r.core.CallProvider(ctx, r.url, http.MethodPost, "/ucloud/k8s/jobs", "alice#1234",
		ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{batchJob("901")}})
	if err != nil || call.Status != 200 || !r.core.KnowsJob("901") {
		t.Fatalf("create answered in time: %+v %v (known to Core: %v)", call, err, r.core.KnowsJob("901"))
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Wrap(func(next http.RoundTripper) http.RoundTripper { return slowPodCreates{next} })
	r.jobs.Kube = kubernetes.NewForConfigOrDie(cfg)
	call, err = r.core.CallProvider(ctx, r.url, http.MethodPost, "/ucloud/k8s/jobs", "alice#1234",
		ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{batchJob("902")}})
	if err != nil || !call.TimedOut || r.core.KnowsJob("902") {
		t.Fatalf("slow create: %+v %v: Core must have given up and not know the job", call, err)
	}
	pods := func(id string) []metav1.Object {
		list, err := env.Clientset.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelJobID + "=" + id})
		if err != nil {
			t.Fatal(err)
		}
		out := make([]metav1.Object, 0, len(list.Items))
		for i := range list.Items {
			if list.Items[i].DeletionTimestamp == nil {
				out = append(out, &list.Items[i])
			}
		}
		return out
	}
	// The provider went on after Core left: the orphan's pod appears.
	envtest.Eventually(t, 30*time.Second, func() error {
		if n := len(pods("902")); n == 0 {
			return fmt.Errorf("the slow create has made no pod yet")
		}
		return nil
	})
	sweep := &monitor.Orphans{Core: r.client, Kube: env.Clientset, Namespace: r.ns,
		Now: func() time.Time { return time.Now().Add(5 * time.Minute) }}
	removed, err := sweep.Sweep(ctx, append(pods("901"), pods("902")...))
	if err != nil || !slices.Equal(removed, []string{"902"}) {
		t.Fatalf("sweep removed %v (%v), want [902]", removed, err)
	}
	envtest.Eventually(t, 30*time.Second, func() error {
		if n := len(pods("902")); n > 0 {
			return fmt.Errorf("%d pods of the job Core gave up on are left", n)
		}
		return nil
	})
	if n := len(pods("901")); n != 2 {
		t.Fatalf("the job Core knows has %d pods, want 2", n)
	}
}
