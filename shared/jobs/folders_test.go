package jobs_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// A job with two folders, one read-only as Core says, gets both at /work/<name> (the original's place) through
// drive-level mounts: drive 6 read-write, drive 7 read-only, each by its own folder only; the pod is accepted
// by the real apiserver under Pod Security baseline.
func TestJobWithTwoFoldersMountsBothWithTheirModes(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	j := job("4300", 2, "u1-standard-1")
	j.Specification.Resources = []ucloud.AppParameterValue{
		{Type: "file", Path: "/6/Sync", ReadOnly: ptr.To(false)},
		{Type: "file", Path: "/7/Data/Reference", ReadOnly: ptr.To(true)},
		{Type: "network", ID: "ip-1"},
	}
	if code, body := r.call(http.MethodPost, "", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{j}}); code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	for rank := range 2 {
		pod, err := env.Clientset.CoreV1().Pods(r.ns).Get(ctx, "j-4300-job-"+string(rune('0'+rank)), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var claimMounts []corev1.VolumeMount
		for _, m := range pod.Spec.Containers[0].VolumeMounts {
			if m.Name == drives.ClaimVolume {
				claimMounts = append(claimMounts, m)
			}
		}
		want := []corev1.VolumeMount{
			{Name: "ucloud-filesystem", SubPath: "6", MountPath: "/ucloud/drives/6"},
			{Name: "ucloud-filesystem", SubPath: "7", MountPath: "/ucloud/drives-ro/7", ReadOnly: true},
		}
		if diff := cmp.Diff(want, claimMounts); diff != "" {
			t.Errorf("rank %d: drive mounts (-want, +got):\n%s", rank, diff)
		}
		if len(pod.Spec.InitContainers) != 1 {
			t.Fatalf("rank %d: init containers %+v, want the links container", rank, pod.Spec.InitContainers)
		}
		ic := pod.Spec.InitContainers[0]
		wantArgs := []string{"-c", `set -e; while [ $# -gt 0 ]; do ln -sfn "$1" "$2"; shift 2; done`, "links",
			"/ucloud/drives/6/Sync", "/work/Sync", "/ucloud/drives-ro/7/Data/Reference", "/work/Reference"}
		if diff := cmp.Diff(wantArgs, ic.Args); diff != "" {
			t.Errorf("rank %d: links (-want, +got):\n%s", rank, diff)
		}
		if diff := cmp.Diff([]corev1.VolumeMount{{Name: "ucloud-work", MountPath: "/work"}}, ic.VolumeMounts); diff != "" {
			t.Errorf("rank %d: the links container must mount no drive (-want, +got):\n%s", rank, diff)
		}
	}
	layout, err := drives.JobLayout(j)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"/6/Sync": "/work/Sync", "/6/Sync/a/b.txt": "/work/Sync/a/b.txt", "/7/Data/Reference/x": "/work/Reference/x",
		"/6/Other": "/ucloud/drives/6/Other", "/7/Data": "/ucloud/drives-ro/7/Data",
	} {
		if got, ok := layout.ContainerPath(in); !ok || got != want {
			t.Errorf("ContainerPath(%s) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if got, ok := layout.ContainerPath("/8/x"); ok {
		t.Errorf("ContainerPath of a drive the job does not mount = %q, want none", got)
	}
}
