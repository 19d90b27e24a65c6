package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/envtest"
)

// A running job whose pods are deleted by hand, then terminated by Core: Core's job gets exactly one SUCCESS
// update, whoever sees the end first. With the monitor up, it reports SUCCESS when the pods go and
// terminate's own SUCCESS is skipped by Core; with the monitor down, terminate reports it, and the monitor,
// started again, finds the job without pods and must not add a second SUCCESS.
func TestTerminateWithoutPodsReportsSuccessOnceWithTheMonitor(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	ns := s.vars["JOBS_NAMESPACE"]
	vars := jobVars(t, s, "UCLOUD_GATEWAY_KEY_FILE", gatewayKey(t, "terminate"))
	create := startFunction(t, "job-create", vars)
	control := startFunction(t, "job-control", vars)
	mon := startFunction(t, "monitor", vars)
	running := func(id string) ucloud.Job {
		t.Helper()
		j := submitBatch(ctx, t, s, create.URL, id, 2)
		envtest.Eventually(t, 60*time.Second, func() error {
			if got := s.core.Transitions(id); len(got) == 0 || got[len(got)-1] != ucloud.StateRunning {
				return fmt.Errorf("job %s at Core: %v", id, got)
			}
			return nil
		})
		j.Status.State = ucloud.StateRunning
		return j
	}
	deletePods := func(id string) {
		t.Helper()
		zero := int64(0)
		if err := env.Clientset.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero},
			metav1.ListOptions{LabelSelector: kube.LabelJobID + "=" + id}); err != nil {
			t.Fatal(err)
		}
		envtest.Eventually(t, 30*time.Second, func() error {
			pods, err := env.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelJobID + "=" + id})
			if err == nil && len(pods.Items) > 0 {
				err = fmt.Errorf("%d pods left", len(pods.Items))
			}
			return err
		})
	}
	terminate := func(j ucloud.Job) {
		t.Helper()
		call, err := s.core.CallProvider(ctx, control.URL, http.MethodPost, "/ucloud/k8s/jobs/terminate", "alice#1", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{j}})
		if err != nil || call.Status != 200 {
			t.Fatalf("terminate %s: %+v %v", j.ID, call, err)
		}
	}
	successes := func(id string) int {
		n := 0
		for _, u := range s.core.JobUpdates(id) {
			if u.State != nil && *u.State == ucloud.StateSuccess {
				n++
			}
		}
		return n
	}
	settle := func(id string) {
		t.Helper()
		envtest.Eventually(t, 30*time.Second, func() error {
			if n := successes(id); n == 0 {
				return fmt.Errorf("job %s has no SUCCESS at Core", id)
			}
			return nil
		})
		time.Sleep(3 * time.Second) // resyncs of the monitor (1 s): nothing more may arrive
	}

	// The monitor up: it sees the pods go first.
	up := running("920001")
	deletePods(up.ID)
	settle(up.ID)
	terminate(up)
	terminate(up) // Core repeats a call it saw fail
	settle(up.ID)

	// The monitor down while the pods go and terminate comes; then it starts again.
	down := running("920002")
	mon.kill()
	deletePods(down.ID)
	terminate(down)
	if n := successes(down.ID); n != 1 {
		t.Fatalf("terminate of job %s without pods: %d SUCCESS updates at Core, want 1", down.ID, n)
	}
	startFunction(t, "monitor", vars)
	envtest.Eventually(t, 30*time.Second, func() error { // the restarted monitor has looked at the job
		for _, u := range s.core.Updates() {
			if u.ID == down.ID && u.Update.Status != nil && *u.Update.Status == "Your job has terminated." {
				return nil
			}
		}
		return fmt.Errorf("the monitor has not reported job %s's end yet", down.ID)
	})
	settle(down.ID)

	for _, id := range []string{up.ID, down.ID} {
		if n := successes(id); n != 1 {
			var seen []string
			for _, u := range s.core.JobUpdates(id) {
				if u.State != nil {
					seen = append(seen, string(*u.State))
				}
			}
			t.Errorf("job %s: %d SUCCESS updates at Core, want 1: %v", id, n, seen)
		}
		// (Deleting the ranks one by one may show IN_QUEUE in between: a rank gone, the other still there.)
		if got := s.core.Transitions(id); len(got) < 2 || got[0] != ucloud.StateRunning || got[len(got)-1] != ucloud.StateSuccess {
			t.Errorf("job %s went %v at Core, want RUNNING ... SUCCESS", id, got)
		}
	}
}
