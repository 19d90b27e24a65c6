package monitor

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSlimPodKeepsWhatTheMonitorReads(t *testing.T) {
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
	got, err := slimPod(whole)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got.(*cachedPod).pod()); diff != "" {
		t.Errorf("slimPod (-want, +got):\n%s", diff)
	}
}
