package monitor

import (
	"encoding/json"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// runningJobPod is the protobuf the apiserver sends for a running job pod as the IM builds it from core2's own
// jobs.create body (one JupyterLab job), with a running container's status and two managers' fields.
func runningJobPod(b *testing.B) []byte {
	raw, err := os.ReadFile("../../test/conformance/testdata/core-requests/jobs.create.json")
	if err != nil {
		b.Fatal(err)
	}
	var req ucloud.BulkRequest[ucloud.Job]
	if err := json.Unmarshal(raw, &req); err != nil {
		b.Fatal(err)
	}
	job := req.Items[0]
	app, err := jobs.ResolveApplication(job, jobs.WorkFolders(job))
	if err != nil {
		b.Fatal(err)
	}
	objs, err := jobs.MakeObjects(job, jobs.Product{ID: "u1-standard-4", Category: "u1-standard", CPU: 4, MemoryGiB: 16}, app, jobs.Settings{Namespace: "jobs"})
	if err != nil {
		b.Fatal(err)
	}
	p := objs.Pods[0]
	now := metav1.Now()
	p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "job-create", Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: &metav1.FieldsV1{Raw: make([]byte, 1500)}},
		{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: &metav1.FieldsV1{Raw: make([]byte, 800)}}}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &now,
		Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: p.Spec.Containers[0].Name, Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}}
	out, err := p.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkDecodeWholePod is the anchor: what client-go's decoder does with each pod of the watch.
func BenchmarkDecodeWholePod(b *testing.B) {
	raw := runningJobPod(b)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		var p corev1.Pod
		if err := p.Unmarshal(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeCachedPod is what PodSource's decoder does with it instead: metadata and status, kept.
func BenchmarkDecodeCachedPod(b *testing.B) {
	raw := runningJobPod(b)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		var c cachedPod
		if err := c.Unmarshal(raw); err != nil {
			b.Fatal(err)
		}
	}
}
