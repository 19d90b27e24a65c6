package iapps_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// denyAll refuses every folder, as after the owner lost access to all of them.
type denyAll struct{}

func (denyAll) Denied(_ context.Context, _ ucloud.ResourceOwner, folders []drives.Folder, _ bool) ([]drives.Folder, error) {
	return folders, nil
}

// allowAll lets the owner use every folder.
type allowAll struct{}

func (allowAll) Denied(context.Context, ucloud.ResourceOwner, []drives.Folder, bool) ([]drives.Folder, error) {
	return nil, nil
}

// The integrated applications' rule, in its one place: what Core is told of a Syncthing job for what the
// monitor's informer shows and what the apiserver holds, and which rank-0 pod the apiserver holds after.
// (The cluster is client-go's fake: the rule is the logic under test; the monitor's tests run it against
// the real apiserver.)
func TestObserveTable(t *testing.T) {
	const ns, jobID = "ucloud-jobs", "43"
	cfg := json.RawMessage(`{"devices":[{"deviceId":"MFZWI3D-BONSGYC-YLTMRWG-C43ENR5-QXGZDMM-FZWI3DP-BONSGYY-LTMRWAD","label":"l"}],` +
		`"folders":[{"id":"mine","ucloudPath":"/1/Sync"}]}`)
	registry := iapps.BuiltinApps(iapps.AppEnv{})
	app, _ := registry.Lookup("syncthing")
	rec := iapps.Record{Key: iapps.Key{App: "syncthing", CreatedBy: "alice#1"}, Config: cfg, ETag: "e2", JobID: jobID, State: "active", UpdatedAt: time.Now()}
	podWith := func(etag string, phase corev1.PodPhase) *corev1.Pod {
		objs, err := app.MakeObjects(iapps.Job{ID: jobID, Key: rec.Key, ETag: etag, Namespace: ns}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		objs.Pod.Status.Phase = phase
		return objs.Pod
	}
	stopped := rec
	stopped.State = "stopped"
	cases := []struct {
		name     string
		rec      iapps.Record
		access   iapps.Access
		informer []*corev1.Pod // what the monitor sees
		cluster  *corev1.Pod   // what the apiserver holds
		want     iapps.Report
		reported bool
		after    string // the rank-0 pod's ETag in the apiserver afterwards, "" for none
	}{
		{name: "running with the stored configuration", rec: rec, access: allowAll{},
			informer: []*corev1.Pod{podWith("e2", corev1.PodRunning)}, cluster: podWith("e2", corev1.PodRunning),
			want: iapps.Report{State: ucloud.StateRunning, Status: "Your job is now running."}, reported: true, after: "e2"},
		{name: "starting with the stored configuration", rec: rec, access: allowAll{},
			informer: []*corev1.Pod{podWith("e2", corev1.PodPending)}, cluster: podWith("e2", corev1.PodPending),
			want: iapps.Report{State: ucloud.StateInQueue, Status: "The application is starting."}, reported: true, after: "e2"},
		{name: "an old configuration is replaced", rec: rec, access: allowAll{},
			informer: []*corev1.Pod{podWith("e1", corev1.PodRunning)}, cluster: podWith("e1", corev1.PodRunning),
			want: iapps.Report{State: ucloud.StateSuspended, Status: "The application is starting with its new configuration."}, reported: true, after: "e2"},
		{name: "a missing pod is created", rec: rec, access: allowAll{},
			want: iapps.Report{State: ucloud.StateSuspended, Status: "The application is starting with its new configuration."}, reported: true, after: "e2"},
		{name: "an ended pod is deleted, to restart", rec: rec, access: allowAll{},
			informer: []*corev1.Pod{podWith("e2", corev1.PodFailed)}, cluster: podWith("e2", corev1.PodFailed),
			want: iapps.Report{State: ucloud.StateSuspended, Status: "The application stopped; it is being restarted."}, reported: true},
		{name: "the informer lags behind the apiserver: nothing to say yet", rec: rec, access: allowAll{},
			cluster: podWith("e2", corev1.PodRunning), after: "e2"},
		{name: "stopped by its owner", rec: stopped, access: allowAll{},
			want: iapps.Report{State: ucloud.StateSuspended, Status: "Your machine is currently powered off."}, reported: true},
		{name: "the owner lost its only folder", rec: rec, access: denyAll{},
			informer: []*corev1.Pod{podWith("e2", corev1.PodRunning)}, cluster: podWith("e2", corev1.PodRunning),
			want:     iapps.Report{State: ucloud.StateSuspended, Status: "Your machine is currently powered off. You no longer have permission to use /1/Sync: it is not mounted."},
			reported: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var objs []runtime.Object
			if tc.cluster != nil {
				objs = append(objs, tc.cluster)
			}
			cs := fake.NewClientset(objs...)
			got, reported, err := iapps.Observe(context.Background(), cs, ns, registry, tc.rec, tc.access, tc.informer)
			if err != nil {
				t.Fatal(err)
			}
			if reported != tc.reported || !cmp.Equal(got, tc.want) {
				t.Errorf("reported %v %+v, want %v %+v", reported, got, tc.reported, tc.want)
			}
			pod, err := cs.CoreV1().Pods(ns).Get(context.Background(), kube.PodName(jobID, 0), metav1.GetOptions{})
			switch {
			case tc.after == "" && !apierrors.IsNotFound(err):
				t.Errorf("the apiserver holds a pod (%v), want none", err)
			case tc.after != "" && err != nil:
				t.Errorf("the apiserver holds no pod: %v", err)
			case tc.after != "" && pod.Annotations[kube.AnnotationIAppETag] != tc.after:
				t.Errorf("the apiserver's pod has configuration %q, want %q", pod.Annotations[kube.AnnotationIAppETag], tc.after)
			}
		})
	}
	if _, _, err := iapps.Observe(context.Background(), fake.NewClientset(), ns, registry, iapps.Record{Key: iapps.Key{App: "nope"}, JobID: "9", State: "active"}, allowAll{}, nil); err == nil {
		t.Error("a job of an unknown application: no error")
	}
}
