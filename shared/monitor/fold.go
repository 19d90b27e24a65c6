// Package monitor is the long-lived pod monitor: it watches the job pods, folds each job's ranks into one
// job state, acts on what needs acting (expired jobs, integrated-app pods to recreate), and emits a
// CloudEvent per state change for status-report to deliver to Core.
package monitor

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Observation is what the monitor concludes about one job from its pods.
type Observation struct {
	State  ucloud.JobState
	Status string
	// Expired is a running job past its time allocation: its pods must go.
	Expired bool
	// UnlessAlready asks Core to apply the state only if the job is not in it already
	// (expectedDifferentState): someone else may have reported it.
	UnlessAlready bool
}

// Fold turns a job's pods into its state. Any failed rank fails the job; it succeeds only when every rank
// succeeded; it runs when every rank runs; otherwise it is queued. Pods being deleted do not count. A
// running job past its allocation (time-allocation annotation from the first rank's start) is expired.
func Fold(pods []*corev1.Pod, now time.Time) (Observation, bool) {
	var live []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return Observation{}, false
	}
	replicas, err := strconv.Atoi(live[0].Annotations[kube.AnnotationReplicas])
	if err != nil || replicas < 1 {
		replicas = 1
	}
	var running, succeeded int
	var earliest time.Time
	for _, p := range live {
		switch p.Status.Phase {
		case corev1.PodFailed:
			return Observation{State: ucloud.StateFailure, Status: failureReason(p)}, true
		case corev1.PodSucceeded:
			succeeded++
		case corev1.PodRunning:
			running++
			if p.Status.StartTime != nil && (earliest.IsZero() || p.Status.StartTime.Time.Before(earliest)) {
				earliest = p.Status.StartTime.Time
			}
		}
	}
	switch {
	case succeeded == replicas && len(live) == replicas:
		return Observation{State: ucloud.StateSuccess, Status: "Your job has successfully completed."}, true
	case running+succeeded == replicas && running > 0 && len(live) == replicas:
		if alloc, err := strconv.ParseInt(live[0].Annotations[kube.AnnotationTimeAllocation], 10, 64); err == nil && !earliest.IsZero() &&
			now.Sub(earliest) > time.Duration(alloc)*time.Millisecond {
			return Observation{State: ucloud.StateExpired, Status: "Your job has used all of its allocated time.", Expired: true}, true
		}
		return Observation{State: ucloud.StateRunning, Status: "Your job is now running."}, true
	}
	return Observation{State: ucloud.StateInQueue, Status: queueReason(live)}, true
}

// failureReason says why a failed pod failed, from its main container when it tells.
func failureReason(p *corev1.Pod) string {
	for _, c := range p.Status.ContainerStatuses {
		if t := c.State.Terminated; t != nil {
			switch {
			case t.Reason == "OOMKilled":
				return "Your job ran out of memory."
			case t.ExitCode != 0:
				return fmt.Sprintf("Your job has failed (exit code %d on %s).", t.ExitCode, p.Name)
			}
		}
	}
	if p.Status.Reason != "" {
		return fmt.Sprintf("Your job has failed: %s.", p.Status.Reason)
	}
	return "Your job has failed."
}

func queueReason(pods []*corev1.Pod) string {
	for _, p := range pods {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message != "" {
				return "There are currently no machines available to run your job: " + c.Message
			}
		}
	}
	return "Your job is currently in the queue."
}
