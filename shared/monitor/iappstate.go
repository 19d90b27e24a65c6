package monitor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// iappState runs the integrated application's reconcile rule: a pod that ended or runs an old
// configuration is replaced, a missing one recreated; the job is SUSPENDED until its pod runs again. seen is
// false when there is nothing to report yet (see below).
func (m *Monitor) iappState(ctx context.Context, rec iapps.Record, pods []*corev1.Pod) (obs Observation, seen bool, err error) {
	h, ok := m.Registry.Lookup(rec.Key.App)
	if !ok {
		return Observation{}, false, fmt.Errorf("job %s belongs to unknown application %q", rec.JobID, rec.Key.App)
	}
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			if err := m.deletePods(ctx, rec.JobID); err != nil {
				return Observation{}, false, err
			}
			return Observation{State: ucloud.StateSuspended, Status: "The application stopped; it is being restarted."}, true, nil
		}
	}
	var access iapps.Access
	if m.Drives != nil {
		access = m.Drives
	}
	res, err := iapps.Reconcile(ctx, m.Kube, m.Namespace, h, rec, access)
	if err != nil {
		return Observation{}, false, err
	}
	outcome := res.Outcome
	lost := ""
	if len(res.Dropped) > 0 {
		lost = " You no longer have permission to use " + strings.Join(res.Dropped, ", ") + ": it is not mounted."
	}
	if outcome == iapps.Stopped {
		return Observation{State: ucloud.StateSuspended, Status: "Your machine is currently powered off." + lost}, true, nil
	}
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Annotations[kube.AnnotationIAppETag] != rec.ETag || outcome != iapps.Unchanged {
			continue
		}
		seen = true
		switch p.Status.Phase {
		case corev1.PodRunning:
			return Observation{State: ucloud.StateRunning, Status: "Your job is now running." + lost}, true, nil
		case corev1.PodPending:
			return Observation{State: ucloud.StateInQueue, Status: "The application is starting." + lost}, true, nil
		}
	}
	if outcome == iapps.Unchanged && !seen {
		// iapps.Reconcile found, through the apiserver, the pod in place with the stored configuration, but
		// the informer (pods) has not shown it yet: it lags behind the apiserver, by a lot on a busy
		// machine. Report nothing rather than a state not seen (this said SUSPENDED for a pod that was
		// fine, e.g. right after config-update created it); the informer's event for the pod brings the
		// job back here.
		return Observation{}, false, nil
	}
	return Observation{State: ucloud.StateSuspended, Status: "The application is starting with its new configuration." + lost}, true, nil
}

func (m *Monitor) iapp(ctx context.Context, jobID string) (iapps.Record, bool, error) {
	rec, err := (&iapps.ConfigStore{Pool: m.Pool}).GetByJob(ctx, jobID)
	if errors.Is(err, store.ErrNotFound) {
		return iapps.Record{}, false, nil
	}
	if err == nil {
		rec, err = iapps.WithLease(ctx, m.Pool, rec) // the terminal's idle lease (terminal_lease)
	}
	return rec, err == nil, err
}
