package monitor

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"

	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/store"
)

// iappState runs the integrated applications' rule (iapps.Observe, its one place) for an application's job.
func (m *Monitor) iappState(ctx context.Context, rec iapps.Record, pods []*corev1.Pod) (Observation, bool, error) {
	var access iapps.Access
	if m.Drives != nil {
		access = m.Drives
	}
	r, seen, err := iapps.Observe(ctx, m.Kube, m.Namespace, m.Registry, rec, access, pods)
	return Observation{State: r.State, Status: r.Status}, seen, err
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

// mayBeIApp says whether the job's integrated-application record must be read. Its pods are made by the
// IM only (job-create for a job, iapps for an application), and an application's pods always carry its
// ETag annotation: a job whose pods all lack it is not an application's, and the periodic pass no longer
// asks the database that of every unfinished job (at 10,000 jobs, most of the monitor's round trips). A
// job without pods is asked (an application's pod may need recreating), and so is one with a pod that
// carries the annotation: the record, not the annotation, decides.
func mayBeIApp(pods []*corev1.Pod) bool {
	if len(pods) == 0 {
		return true
	}
	for _, p := range pods {
		if _, ok := p.Annotations[kube.AnnotationIAppETag]; ok {
			return true
		}
	}
	return false
}
