package monitor

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/apps"
)

// The monitor skips the integrated-application lookup for a job whose pods are not an application's:
// decided on the pods the IM itself builds. job-create's pods (every fixture application) never need it;
// every registered application's pod does, and so does a job with no pod left.
func TestOnlyApplicationPodsOrNoPodsNeedTheRecord(t *testing.T) {
	catalog, err := jobs.LoadCatalog("")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := catalog.Product(ucloud.ProductReference{ID: "u1-standard-1", Category: "u1-standard"})
	for _, name := range []string{"batch", "jupyter"} {
		var job ucloud.Job
		apps.Load(name).Apply(&job)
		job.ID, job.Specification.Replicas = "42", 2
		app, err := jobs.ResolveApplication(job, nil)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := jobs.MakeObjects(job, p, app, jobs.Settings{Namespace: "ucloud-jobs"})
		if err != nil {
			t.Fatal(err)
		}
		if mayBeIApp(slim(t, objs.Pods...)) {
			t.Errorf("job-create's %s pods: the iapp record is read for every one of its reconciles", name)
		}
	}
	registry := iapps.BuiltinApps(iapps.AppEnv{})
	for _, name := range registry.Names() {
		h, _ := registry.Lookup(name)
		cfg := json.RawMessage(`{}`)
		objs, err := h.MakeObjects(iapps.Job{ID: "43", Key: iapps.Key{App: name, CreatedBy: "alice#1"}, ETag: "e1", Namespace: "ucloud-jobs"}, cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !mayBeIApp(slim(t, objs.Pod)) {
			t.Errorf("application %s's pod: its record would not be read", name)
		}
	}
	if !mayBeIApp(nil) {
		t.Error("a job without pods: its record would not be read (an application's pod would never be recreated)")
	}
}

// slim is what the informer holds of the pods.
func slim(t *testing.T, pods ...*corev1.Pod) []*corev1.Pod {
	out := make([]*corev1.Pod, len(pods))
	for i, p := range pods {
		out[i] = cached(t, p)
	}
	return out
}
