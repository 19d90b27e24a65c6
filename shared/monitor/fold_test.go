package monitor

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// foldPod is one rank of job 42 as the job function labels and annotates it.
func foldPod(rank int, replicas, allocMs string, phase corev1.PodPhase, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "j-42-job-" + string(rune('0'+rank)),
			Annotations: map[string]string{"ucloud.dk/replicas": replicas},
		},
		Status: corev1.PodStatus{Phase: phase},
	}
	if allocMs != "" {
		p.Annotations["ucloud.dk/time-allocation-ms"] = allocMs
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func startedAt(t time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Status.StartTime = &metav1.Time{Time: t} }
}

func terminated(reason string, code int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name:  "user-job",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code}},
		}}
	}
}

func deleting(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)} }

func TestFoldTable(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	hourAgo := now.Add(-time.Hour)
	for _, tc := range []struct {
		name   string
		pods   []*corev1.Pod
		want   Observation
		wantOK bool
	}{{
		name: "no pods",
	}, {
		name: "only pods being deleted",
		pods: []*corev1.Pod{foldPod(0, "1", "", corev1.PodRunning, deleting)},
	}, {
		name:   "single rank pending",
		pods:   []*corev1.Pod{foldPod(0, "1", "", corev1.PodPending)},
		want:   Observation{State: ucloud.StateInQueue, Status: "Your job is currently in the queue."},
		wantOK: true,
	}, {
		name: "unschedulable rank says why",
		pods: []*corev1.Pod{foldPod(0, "1", "", corev1.PodPending, func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Message: "0/3 nodes are available"}}
		})},
		want:   Observation{State: ucloud.StateInQueue, Status: "There are currently no machines available to run your job: 0/3 nodes are available"},
		wantOK: true,
	}, {
		name:   "single rank running",
		pods:   []*corev1.Pod{foldPod(0, "1", "", corev1.PodRunning, startedAt(hourAgo))},
		want:   Observation{State: ucloud.StateRunning, Status: "Your job is now running."},
		wantOK: true,
	}, {
		name:   "all ranks running",
		pods:   []*corev1.Pod{foldPod(0, "2", "", corev1.PodRunning, startedAt(hourAgo)), foldPod(1, "2", "", corev1.PodRunning, startedAt(hourAgo))},
		want:   Observation{State: ucloud.StateRunning, Status: "Your job is now running."},
		wantOK: true,
	}, {
		name:   "one of two ranks running",
		pods:   []*corev1.Pod{foldPod(0, "2", "", corev1.PodRunning, startedAt(hourAgo)), foldPod(1, "2", "", corev1.PodPending)},
		want:   Observation{State: ucloud.StateInQueue, Status: "Your job is currently in the queue."},
		wantOK: true,
	}, {
		name:   "one of two ranks seen so far",
		pods:   []*corev1.Pod{foldPod(0, "2", "", corev1.PodRunning, startedAt(hourAgo))},
		want:   Observation{State: ucloud.StateInQueue, Status: "Your job is currently in the queue."},
		wantOK: true,
	}, {
		name:   "one rank done, other running",
		pods:   []*corev1.Pod{foldPod(0, "2", "", corev1.PodSucceeded), foldPod(1, "2", "", corev1.PodRunning, startedAt(hourAgo))},
		want:   Observation{State: ucloud.StateRunning, Status: "Your job is now running."},
		wantOK: true,
	}, {
		name:   "all ranks succeeded",
		pods:   []*corev1.Pod{foldPod(0, "2", "", corev1.PodSucceeded), foldPod(1, "2", "", corev1.PodSucceeded)},
		want:   Observation{State: ucloud.StateSuccess, Status: "Your job has successfully completed."},
		wantOK: true,
	}, {
		name:   "one of two ranks succeeded, other not seen",
		pods:   []*corev1.Pod{foldPod(0, "2", "", corev1.PodSucceeded)},
		want:   Observation{State: ucloud.StateInQueue, Status: "Your job is currently in the queue."},
		wantOK: true,
	}, {
		name:   "failed rank with exit code fails the job",
		pods:   []*corev1.Pod{foldPod(0, "2", "", corev1.PodRunning, startedAt(hourAgo)), foldPod(1, "2", "", corev1.PodFailed, terminated("Error", 3))},
		want:   Observation{State: ucloud.StateFailure, Status: "Your job has failed (exit code 3 on j-42-job-1)."},
		wantOK: true,
	}, {
		name:   "out of memory",
		pods:   []*corev1.Pod{foldPod(0, "1", "", corev1.PodFailed, terminated("OOMKilled", 137))},
		want:   Observation{State: ucloud.StateFailure, Status: "Your job ran out of memory."},
		wantOK: true,
	}, {
		name:   "failed by the kubelet with a pod reason",
		pods:   []*corev1.Pod{foldPod(0, "1", "", corev1.PodFailed, func(p *corev1.Pod) { p.Status.Reason = "Evicted" })},
		want:   Observation{State: ucloud.StateFailure, Status: "Your job has failed: Evicted."},
		wantOK: true,
	}, {
		name:   "failed with no reason",
		pods:   []*corev1.Pod{foldPod(0, "1", "", corev1.PodFailed)},
		want:   Observation{State: ucloud.StateFailure, Status: "Your job has failed."},
		wantOK: true,
	}, {
		name:   "failure wins over success of the others",
		pods:   []*corev1.Pod{foldPod(0, "2", "", corev1.PodSucceeded), foldPod(1, "2", "", corev1.PodFailed, terminated("Error", 1))},
		want:   Observation{State: ucloud.StateFailure, Status: "Your job has failed (exit code 1 on j-42-job-1)."},
		wantOK: true,
	}, {
		name:   "a failed pod being deleted does not count",
		pods:   []*corev1.Pod{foldPod(0, "1", "", corev1.PodFailed, terminated("Error", 1), deleting)},
		wantOK: false,
	}, {
		name:   "running within the allocation",
		pods:   []*corev1.Pod{foldPod(0, "1", "7200000", corev1.PodRunning, startedAt(hourAgo))},
		want:   Observation{State: ucloud.StateRunning, Status: "Your job is now running."},
		wantOK: true,
	}, {
		name:   "running past the allocation expires",
		pods:   []*corev1.Pod{foldPod(0, "1", "1800000", corev1.PodRunning, startedAt(hourAgo))},
		want:   Observation{State: ucloud.StateExpired, Status: "Your job has used all of its allocated time.", Expired: true},
		wantOK: true,
	}, {
		name: "expiry counts from the earliest rank's start",
		pods: []*corev1.Pod{
			foldPod(0, "2", "2400000", corev1.PodRunning, startedAt(now.Add(-10*time.Minute))),
			foldPod(1, "2", "2400000", corev1.PodRunning, startedAt(hourAgo)),
		},
		want:   Observation{State: ucloud.StateExpired, Status: "Your job has used all of its allocated time.", Expired: true},
		wantOK: true,
	}, {
		name:   "succeeded job past its allocation is a success",
		pods:   []*corev1.Pod{foldPod(0, "1", "1000", corev1.PodSucceeded, startedAt(hourAgo))},
		want:   Observation{State: ucloud.StateSuccess, Status: "Your job has successfully completed."},
		wantOK: true,
	}, {
		name:   "missing replicas annotation means one rank",
		pods:   []*corev1.Pod{foldPod(0, "", "", corev1.PodRunning, startedAt(hourAgo))},
		want:   Observation{State: ucloud.StateRunning, Status: "Your job is now running."},
		wantOK: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Fold(tc.pods, now)
			if ok != tc.wantOK {
				t.Errorf("Fold ok = %v, want %v", ok, tc.wantOK)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Unexpected Observation (-want, +got):\n%s", diff)
			}
			// The informer holds slimmed pods: they must fold to the same answer.
			slim := make([]*corev1.Pod, len(tc.pods))
			for i, p := range tc.pods {
				slim[i] = cached(t, p)
			}
			if slimGot, slimOK := Fold(slim, now); slimOK != ok || !cmp.Equal(got, slimGot) {
				t.Errorf("Fold of the slimmed pods = %+v, %v; of the whole pods %+v, %v", slimGot, slimOK, got, ok)
			}
		})
	}
}
