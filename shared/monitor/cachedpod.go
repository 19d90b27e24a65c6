package monitor

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/kube"
)

// cachedPod is what the informer keeps of a job pod: only the fields the monitor reads (Fold, the iapp rule,
// usage, the orphan sweep), in a struct of their own. A corev1.Pod with its spec and status emptied still
// carries the PodSpec and PodStatus structs (about 1 KB per pod, most of the cache at 10,000 pods); this
// keeps the object metadata and the handful of status fields. pod gives them back as the corev1.Pod the
// rules read. A field read from a cached pod must be kept here (TestCachedPodKeepsWhatTheMonitorReads).
type cachedPod struct {
	// ObjectMeta makes it a metav1.Object, what the informer's store keys and the indexers need.
	metav1.ObjectMeta
	phase     corev1.PodPhase
	reason    string
	startTime *metav1.Time
	// scheduled is the PodScheduled condition (type, status, message), if the pod has one.
	scheduled *corev1.PodCondition
	// terminated are the statuses of the containers that terminated (name, exit code, reason).
	terminated []corev1.ContainerStatus
}

// cachedOf is what the monitor keeps of p (what PodSource decodes a pod into).
func cachedOf(p *corev1.Pod) *cachedPod {
	c := &cachedPod{
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: p.Labels, Annotations: p.Annotations,
			CreationTimestamp: p.CreationTimestamp, DeletionTimestamp: p.DeletionTimestamp,
		},
		phase: p.Status.Phase, reason: p.Status.Reason, startTime: p.Status.StartTime,
	}
	for _, s := range p.Status.Conditions {
		if s.Type == corev1.PodScheduled {
			c.scheduled = &corev1.PodCondition{Type: s.Type, Status: s.Status, Message: s.Message}
		}
	}
	for _, s := range p.Status.ContainerStatuses {
		if t := s.State.Terminated; t != nil {
			c.terminated = append(c.terminated, corev1.ContainerStatus{Name: s.Name,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: t.ExitCode, Reason: t.Reason}}})
		}
	}
	return c
}

// pod is the kept fields as a pod (its maps and pointers shared with the cache: read, never written).
func (c *cachedPod) pod() *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: c.ObjectMeta,
		Status: corev1.PodStatus{Phase: c.phase, Reason: c.reason, StartTime: c.startTime, ContainerStatuses: c.terminated}}
	if c.scheduled != nil {
		p.Status.Conditions = []corev1.PodCondition{*c.scheduled}
	}
	return p
}

// jobOf is the job id label of a cached object ("" for anything else).
func jobOf(obj any) string {
	if c, ok := obj.(*cachedPod); ok {
		return c.Labels[kube.LabelJobID]
	}
	return ""
}
