package monitor_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/test/apps"
	"github.com/ucloud-im/knative-im/test/envtest"

	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// driveRefresh is the rig monitors' drive refresh period (DRIVE_REFRESH).
const driveRefresh = 500 * time.Millisecond

// access decides folders on db's role with the rig's fake Core.
func (r *rig) access(db *store.Store) *drives.Access {
	client, err := r.core.Client(ucloud.ClientOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	return &drives.Access{Store: &drives.Store{Pool: db.Pool}, Core: client}
}

// revocationBound is how long the test waits for a revoked folder to leave a pod: the rig's DRIVE_REFRESH
// (500 ms) plus its resync (300 ms), with room for a busy machine. In a cluster the bound is DRIVE_REFRESH
// (30 s) + MONITOR_RESYNC (10 s) + one reconcile.
const revocationBound = 20 * time.Second

// statusesOf are the status messages Core received for a job.
func (r *rig) statusesOf(jobID string) []string {
	var out []string
	for _, u := range r.core.Updates() {
		if u.ID == jobID && u.Update.Status != nil {
			out = append(out, *u.Update.Status)
		}
	}
	return out
}

// Bob shares his drive 60 with alice (a user ACL entry with EDIT); alice syncs a folder of it and opens a
// terminal on it. Bob then removes the entry in Core (which tells the provider nothing): within the bound,
// the running Syncthing pod is replaced by one that mounts drive 1 only, its configuration no longer lists
// the folder, and Core receives a status message naming it; the terminal's pod is stopped, with a message
// naming its folder. The stored configurations are unchanged (access may come back).
func TestRevokedAccessLeavesTheRunningApplications(t *testing.T) {
	r := newRig(t)
	stop := r.start()
	defer stop()
	shared := r.core.PersonalDrive("60", "bob#1")
	shared.Permissions.Others = []ucloud.ResourceAclEntry{{Entity: ucloud.AclEntity{Type: ucloud.AclUser, Username: "alice#1"}, Permissions: []ucloud.Permission{"READ", "EDIT"}}}
	r.core.PutDrive(shared)
	client, _ := r.core.Client(ucloud.ClientOptions{})
	svc := &iapps.Service{Provider: "k8s", Registry: iapps.BuiltinApps(iapps.AppEnv{}), Store: &iapps.ConfigStore{Pool: r.update.Pool}, Core: client,
		Kube: env.Clientset, Namespace: r.ns, Access: r.access(r.update)}
	alice := ucloud.ResourceOwner{CreatedBy: "alice#1"}
	ctx := context.Background()
	syncCfg := `{"devices":[{"deviceId":"MFZWI3D-BONSGYC-YLTMRWG-C43ENR5-QXGZDMM-FZWI3DP-BONSGYY-LTMRWAD","label":"l"}],` +
		`"folders":[{"id":"mine","ucloudPath":"/1/Sync"},{"id":"bobs","ucloudPath":"/60/Shared"}]}`
	if err := svc.Update(ctx, "syncthing", iapps.UpdateRequest{Principal: alice, Config: []byte(syncCfg)}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Update(ctx, "terminal", iapps.UpdateRequest{Principal: alice, Config: []byte(`{"folders":["/60/Shared"]}`)}); err != nil {
		t.Fatal(err)
	}
	syncJob, termJob := "5000", "5001"
	r.waitStates(syncJob, "[IN_QUEUE RUNNING]")
	r.waitStates(termJob, "[IN_QUEUE RUNNING]")
	drivesOf := func(jobID string) (string, error) {
		p, err := env.Clientset.CoreV1().Pods(r.ns).Get(ctx, kube.PodName(jobID, 0), metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		var ids []string
		for _, m := range p.Spec.Containers[0].VolumeMounts {
			if m.Name == drives.ClaimVolume {
				ids = append(ids, m.SubPath)
			}
		}
		return strings.Join(ids, ","), nil
	}
	if got, err := drivesOf(syncJob); err != nil || got != "1,60" {
		t.Fatalf("syncthing mounts drives %q (%v), want 1,60", got, err)
	}

	revoked := time.Now()
	r.core.SetDriveACL("60", nil)
	envtest.Eventually(t, revocationBound, func() error {
		got, err := drivesOf(syncJob)
		if err != nil || got != "1" {
			return fmt.Errorf("syncthing mounts drives %q (%v)", got, err)
		}
		return nil
	})
	syncGone := time.Since(revoked)
	envtest.Eventually(t, revocationBound, func() error {
		if _, err := drivesOf(termJob); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the terminal's pod is still there (%v)", err)
		}
		return nil
	})
	termGone := time.Since(revoked)
	t.Logf("revoked folder left the Syncthing pod after %s, the terminal's pod after %s (bound here %s)", syncGone, termGone, revocationBound)
	// The replacement pod is created before its configuration map (the map is owned by the pod, so it
	// needs the pod's UID): the map follows within the bound.
	envtest.Eventually(t, revocationBound, func() error {
		cm, err := env.Clientset.CoreV1().ConfigMaps(r.ns).Get(ctx, "j-"+syncJob+"-iapp-config", metav1.GetOptions{})
		if err != nil || strings.Contains(cm.Data["config.json"], "/60/") || !strings.Contains(cm.Data["config.json"], "/1/Sync") {
			return fmt.Errorf("Syncthing's runtime configuration: %v %v", cm, err)
		}
		return nil
	})
	for job, folder := range map[string]string{syncJob: "/60/Shared", termJob: "/60/Shared"} {
		envtest.Eventually(t, revocationBound, func() error {
			for _, s := range r.statusesOf(job) {
				if strings.Contains(s, "no longer have permission") && strings.Contains(s, folder) {
					return nil
				}
			}
			return fmt.Errorf("Core has no status naming %s for job %s: %q", folder, job, r.statusesOf(job))
		})
	}
	r.waitStates(termJob, "[IN_QUEUE RUNNING SUSPENDED]")
	if got, err := svc.Retrieve(ctx, "syncthing", iapps.RetrieveRequest{ProductID: "syncthing", Principal: alice}); err != nil || !strings.Contains(string(got.Config), "/60/Shared") {
		t.Fatalf("the stored configuration changed: %s %v", got.Config, err)
	}
}

// A normal job reads bob's drive 61 through a READ entry Core checked at submit. Bob removes the entry: within
// the bound the monitor stops the job (its pods are deleted) and Core receives FAILURE with a message naming
// the folder, once.
func TestRevokedAccessStopsARunningJob(t *testing.T) {
	r := newRig(t)
	stop := r.start()
	defer stop()
	shared := r.core.PersonalDrive("61", "bob#1")
	shared.Permissions.Others = []ucloud.ResourceAclEntry{{Entity: ucloud.AclEntity{Type: ucloud.AclUser, Username: "alice#1"}, Permissions: []ucloud.Permission{"READ"}}}
	r.core.PutDrive(shared)
	catalog, _ := jobs.LoadCatalog("")
	job := ucloud.Job{ID: "610", Owner: ucloud.ResourceOwner{CreatedBy: "alice#1"}, Specification: ucloud.JobSpecification{
		Product:  ucloud.ProductReference{ID: "u1-standard-1", Category: "u1-standard"},
		Replicas: 2, Resources: []ucloud.AppParameterValue{{Type: "file", Path: "/61/Data", ReadOnly: ptr.To(true)}, {Type: "file", Path: "/1/Out", ReadOnly: ptr.To(false)}}}}
	apps.Load("batch").Apply(&job)
	p, _ := catalog.Product(job.Specification.Product)
	app, err := jobs.ResolveApplication(job, jobs.WorkFolders(job))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := jobs.MakeObjects(job, p, app, jobs.Settings{Namespace: r.ns})
	if err != nil {
		t.Fatal(err)
	}
	for _, pod := range objs.Pods {
		if _, err := env.Clientset.CoreV1().Pods(r.ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	lastState := func(want string) {
		t.Helper()
		envtest.Eventually(t, revocationBound, func() error {
			if got := r.states("610"); len(got) == 0 || got[len(got)-1] != want {
				return fmt.Errorf("Core has %v for the job, want it to end with %s", got, want)
			}
			return nil
		})
	}
	lastState("RUNNING")
	revoked := time.Now()
	r.core.SetDriveACL("61", nil)
	lastState("FAILURE")
	t.Logf("the job was stopped %s after its owner lost access", time.Since(revoked))
	if s := r.statusesOf("610"); !strings.Contains(s[len(s)-1], "no longer have permission to use /61/Data") {
		t.Fatalf("Core's last status for the job: %q", s)
	}
	envtest.Eventually(t, revocationBound, func() error {
		pods, err := env.Clientset.CoreV1().Pods(r.ns).List(context.Background(), metav1.ListOptions{LabelSelector: kube.LabelJobID + "=610"})
		if err != nil || len(pods.Items) != 0 {
			return fmt.Errorf("the job's pods are still there (%v)", err)
		}
		return nil
	})
	r.quiet("610")
}
