package monitor

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCachedPodKeepsWhatTheMonitorReads(t *testing.T) {
	created, started, deleted := metav1.NewTime(time.Unix(100, 0)), metav1.NewTime(time.Unix(200, 0)), metav1.NewTime(time.Unix(300, 0))
	whole := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "j-42-job-0", Namespace: "ucloud-jobs", UID: "u-1", ResourceVersion: "7",
			Labels:            map[string]string{"ucloud.dk/job-id": "42"},
			Annotations:       map[string]string{"ucloud.dk/replicas": "1", "ucloud.dk/iapp-etag": "e1"},
			CreationTimestamp: created, DeletionTimestamp: &deleted,
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate}},
			OwnerReferences: []metav1.OwnerReference{{Kind: "Pod", Name: "other"}},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "user-job", Image: "img", Command: []string{"sleep", "1"},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodFailed, Reason: "Evicted", StartTime: &started, HostIP: "10.0.0.1", PodIP: "10.1.0.1",
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Message: "0/3 nodes", Reason: "Unschedulable"},
				{Type: corev1.PodReady, Status: corev1.ConditionFalse},
			},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "user-job", Image: "img", ImageID: "sha", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error", Message: "long"}}},
				{Name: "sidecar", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
			},
		},
	}
	want := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "j-42-job-0", Namespace: "ucloud-jobs", UID: "u-1", ResourceVersion: "7",
			Labels:            map[string]string{"ucloud.dk/job-id": "42"},
			Annotations:       map[string]string{"ucloud.dk/replicas": "1", "ucloud.dk/iapp-etag": "e1"},
			CreationTimestamp: created, DeletionTimestamp: &deleted,
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodFailed, Reason: "Evicted", StartTime: &started,
			Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Message: "0/3 nodes"}},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "user-job", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}}},
			},
		},
	}
	if diff := cmp.Diff(want, cached(t, whole)); diff != "" {
		t.Errorf("decoded pod (-want, +got):\n%s", diff)
	}

	// A list: its resource version (where the informer's watch starts) and every item.
	other := whole.DeepCopy()
	other.Name, other.Status = "j-43-job-0", corev1.PodStatus{Phase: corev1.PodRunning}
	raw, err := (&corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "9"}, Items: []corev1.Pod{*whole, *other}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var list cachedPodList
	if err := list.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	if list.ResourceVersion != "9" || len(list.Items) != 2 {
		t.Fatalf("decoded list: resource version %q, %d items; want 9, 2", list.ResourceVersion, len(list.Items))
	}
	if diff := cmp.Diff(want, list.Items[0].pod()); diff != "" {
		t.Errorf("first item (-want, +got):\n%s", diff)
	}
	if got := list.Items[1].pod(); got.Name != "j-43-job-0" || got.Status.Phase != corev1.PodRunning {
		t.Errorf("second item: %s in %s, want j-43-job-0 Running", got.Name, got.Status.Phase)
	}

	// A cut-off message is an error, not a pod with fields missing.
	full, _ := whole.Marshal()
	if err := new(cachedPod).Unmarshal(full[:len(full)-5]); err == nil {
		t.Error("a truncated pod decoded without error")
	}
}

// The informer may copy what it caches (DeletedFinalStateUnknown, a resync's copies): a copy shares nothing.
func TestCachedPodCopiesShareNothing(t *testing.T) {
	started := metav1.NewTime(time.Unix(200, 0))
	orig := cachedOf(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"a": "1"}},
		Status: corev1.PodStatus{StartTime: &started, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Message: "m"}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}}},
	})
	want := orig.pod().DeepCopy()
	cp := orig.DeepCopyObject().(*cachedPod)
	if diff := cmp.Diff(want, cp.pod()); diff != "" {
		t.Fatalf("copy (-want, +got):\n%s", diff)
	}
	cp.Labels["a"] = "2"
	cp.startTime.Time = time.Unix(1, 0)
	cp.scheduled.Message = "changed"
	cp.terminated[0].State.Terminated.ExitCode = 9
	if diff := cmp.Diff(want, orig.pod()); diff != "" {
		t.Errorf("the original changed with its copy (-want, +got):\n%s", diff)
	}
}

// cached is p as the informer holds it: encoded as the apiserver sends it, decoded as PodSource decodes it.
func cached(t *testing.T, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	raw, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var c cachedPod
	if err := c.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	return c.pod()
}
