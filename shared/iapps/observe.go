package iapps

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Report is what Core is told about an integrated application's job.
type Report struct {
	State  ucloud.JobState
	Status string
}

// Observe is the integrated applications' whole rule, run by the monitor for every change of an
// application's pods (pods as its informer shows them): a pod that ended is deleted, so the application
// restarts; Reconcile makes the rank-0 pod match the stored configuration and the owner's access; the job
// is RUNNING while its pod with the stored configuration runs, IN_QUEUE while that pod starts, SUSPENDED
// while it is replaced or when it should not run. ok is false when there is nothing to report yet.
func Observe(ctx context.Context, cs kubernetes.Interface, ns string, registry *Registry, rec Record, access Access, pods []*corev1.Pod) (r Report, ok bool, err error) {
	h, found := registry.Lookup(rec.Key.App)
	if !found {
		return Report{}, false, fmt.Errorf("job %s belongs to unknown application %q", rec.JobID, rec.Key.App)
	}
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			if err := deleteRank0(ctx, cs, ns, rec.JobID); err != nil {
				return Report{}, false, err
			}
			return Report{State: ucloud.StateSuspended, Status: "The application stopped; it is being restarted."}, true, nil
		}
	}
	res, err := Reconcile(ctx, cs, ns, h, rec, access)
	if err != nil {
		return Report{}, false, err
	}
	lost := ""
	if len(res.Dropped) > 0 {
		lost = " You no longer have permission to use " + strings.Join(res.Dropped, ", ") + ": it is not mounted."
	}
	if res.Outcome == Stopped {
		return Report{State: ucloud.StateSuspended, Status: "Your machine is currently powered off." + lost}, true, nil
	}
	seen := false
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Annotations[kube.AnnotationIAppETag] != rec.ETag || res.Outcome != Unchanged {
			continue
		}
		seen = true
		switch p.Status.Phase {
		case corev1.PodRunning:
			return Report{State: ucloud.StateRunning, Status: "Your job is now running." + lost}, true, nil
		case corev1.PodPending:
			return Report{State: ucloud.StateInQueue, Status: "The application is starting." + lost}, true, nil
		}
	}
	if res.Outcome == Unchanged && !seen {
		// Reconcile found, through the apiserver, the pod in place with the stored configuration, but the
		// informer has not shown it yet: it lags behind the apiserver, by a lot on a busy machine. Report
		// nothing rather than a state not seen (this said SUSPENDED for a pod that was fine, e.g. right
		// after config-update created it); the informer's event for the pod brings the job back here.
		return Report{}, false, nil
	}
	return Report{State: ucloud.StateSuspended, Status: "The application is starting with its new configuration." + lost}, true, nil
}
