package iapps_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/envtest"
)

func TestRetrieveWithNothingStoredGivesDefaultAndStoresNothing(t *testing.T) {
	r := newRig(t)
	for app, want := range map[string]string{"syncthing": `{"devices":[],"folders":[]}`, "terminal": `{"folders":[]}`} {
		got := r.retrieve(app, alice())
		if got.ETag != iapps.InitialETag || string(got.Config) != want {
			t.Errorf("%s: retrieve = %s %s, want %s initial", app, got.ETag, got.Config, want)
		}
	}
	if n := r.rows(); n != 0 {
		t.Fatalf("retrieve stored %d rows", n)
	}
	if n := len(r.core.Registered()); n != 0 {
		t.Fatalf("retrieve registered %d jobs", n)
	}
}

func (r *rig) pod(jobID string) (*corev1.Pod, error) {
	return env.Clientset.CoreV1().Pods(r.ns).Get(context.Background(), kube.PodName(jobID, 0), metav1.GetOptions{})
}

func TestUpdateRoundTripsRegistersOnceAndStartsThePod(t *testing.T) {
	r := newRig(t)
	code, body := r.call("syncthing", iapps.OpUpdate, iapps.UpdateRequest{ProductID: "syncthing", Principal: alice(), Config: syncthingConfig("Laptop"), ExpectedETag: ptr(iapps.InitialETag)})
	if code != 200 || string(body) != "{}\n" {
		t.Fatalf("update: %d %s", code, body)
	}
	got := r.retrieve("syncthing", alice())
	if got.ETag == iapps.InitialETag || got.ETag == "" {
		t.Fatalf("ETag after update: %q", got.ETag)
	}
	// Read back as validated (with the folder's path in the pod added), keys in the order written: jsonb used
	// to put "label" before "deviceId".
	want := `{"devices":[{"deviceId":"` + device1 + `","label":"Laptop"}],"folders":[{"id":"x1","ucloudPath":"/123/Home/Sync","path":"/work/Sync"}]}`
	if string(got.Config) != want {
		t.Fatalf("config after update: %s, want %s", got.Config, want)
	}
	reg := r.core.Registered()
	if len(reg) != 1 {
		t.Fatalf("Core saw %d registrations, want 1", len(reg))
	}
	spec := reg[0].Spec
	if spec.Product != (ucloud.ProductReference{ID: "syncthing", Category: "syncthing", Provider: "k8s"}) ||
		spec.Application != (ucloud.NameAndVersion{Name: "syncthing", Version: "latest"}) || spec.Replicas != 1 || *reg[0].CreatedBy != "alice#1234" {
		t.Fatalf("registered %+v", reg[0])
	}
	jobID := "5000"
	pod, err := r.pod(jobID)
	if err != nil {
		t.Fatalf("rank-0 pod: %v", err)
	}
	if pod.Annotations[kube.AnnotationIAppETag] != got.ETag || pod.Annotations[kube.AnnotationIAppName] != "syncthing" || pod.Labels[kube.LabelJobID] != jobID {
		t.Fatalf("pod metadata %v %v", pod.Labels, pod.Annotations)
	}
	for _, name := range []string{"j-5000-syncthing"} {
		svc, err := env.Clientset.CoreV1().Services(r.ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil || len(svc.OwnerReferences) != 1 || svc.OwnerReferences[0].UID != pod.UID {
			t.Fatalf("service %s: %v %+v", name, err, svc)
		}
	}
	cm, err := env.Clientset.CoreV1().ConfigMaps(r.ns).Get(context.Background(), "j-5000-iapp-config", metav1.GetOptions{})
	if err != nil || !strings.Contains(cm.Data["config.json"], "Laptop") {
		t.Fatalf("config map: %v %+v", err, cm)
	}

	// A second update with the current ETag replaces the pod; the new one carries the new ETag.
	code, body = r.call("syncthing", iapps.OpUpdate, iapps.UpdateRequest{ProductID: "syncthing", Principal: alice(), Config: syncthingConfig("Desktop"), ExpectedETag: &got.ETag})
	if code != 200 {
		t.Fatalf("second update: %d %s", code, body)
	}
	again := r.retrieve("syncthing", alice())
	pod2, err := r.pod(jobID)
	if err != nil || pod2.UID == pod.UID || pod2.Annotations[kube.AnnotationIAppETag] != again.ETag {
		t.Fatalf("pod after reconfiguration: %v (old uid %s)", err, pod.UID)
	}
	if n := len(r.core.Registered()); n != 1 {
		t.Fatalf("second update registered again (%d)", n)
	}
}

func TestStaleETagChangesNothing(t *testing.T) {
	r := newRig(t)
	if code, body := r.call("syncthing", iapps.OpUpdate, iapps.UpdateRequest{Principal: alice(), Config: syncthingConfig("A")}); code != 200 {
		t.Fatalf("update: %d %s", code, body)
	}
	before := r.retrieve("syncthing", alice())
	for _, stale := range []string{iapps.InitialETag, "not-the-etag"} {
		code, body := r.call("syncthing", iapps.OpUpdate, iapps.UpdateRequest{Principal: alice(), Config: syncthingConfig("B"), ExpectedETag: ptr(stale)})
		if code != 400 || !strings.Contains(string(body), "changed since you last loaded") {
			t.Fatalf("stale %q: %d %s", stale, code, body)
		}
		code, body = r.call("syncthing", iapps.OpReset, iapps.ResetRequest{Principal: alice(), ExpectedETag: ptr(stale)})
		if code != 400 {
			t.Fatalf("reset with stale %q: %d %s", stale, code, body)
		}
	}
	if after := r.retrieve("syncthing", alice()); after.ETag != before.ETag || string(after.Config) != string(before.Config) {
		t.Fatalf("stale update changed the config: %s -> %s", before.Config, after.Config)
	}
	// A stale ETag on a key with nothing stored registers nothing.
	bob := ucloud.ResourceOwner{CreatedBy: "bob#1"}
	r.core.PersonalDrive("124", bob.CreatedBy)
	bobs := json.RawMessage(strings.Replace(string(syncthingConfig("B")), "/123/", "/124/", 1))
	if code, _ := r.call("syncthing", iapps.OpUpdate, iapps.UpdateRequest{Principal: bob, Config: bobs, ExpectedETag: ptr("old")}); code != 400 {
		t.Fatalf("stale first update: %d", code)
	}
	if n := len(r.core.Registered()); n != 1 {
		t.Fatalf("%d registrations, want 1", n)
	}
}

func TestResetRestartAndReconcile(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if code, body := r.call("syncthing", iapps.OpUpdate, iapps.UpdateRequest{Principal: alice(), Config: syncthingConfig("A")}); code != 200 {
		t.Fatalf("update: %d %s", code, body)
	}
	cur := r.retrieve("syncthing", alice())
	first, err := r.pod("5000")
	if err != nil {
		t.Fatal(err)
	}
	// restart deletes the pod at once...
	if code, body := r.call("syncthing", iapps.OpRestart, iapps.RestartRequest{Principal: alice()}); code != 200 {
		t.Fatalf("restart: %d %s", code, body)
	}
	envtest.Eventually(t, 10*time.Second, func() error {
		p, err := r.pod("5000")
		if apierrors.IsNotFound(err) || (err == nil && p.UID != first.UID) {
			return nil
		}
		return fmt.Errorf("old pod still there")
	})
	// ...and the monitor's reconcile step brings it back with the same configuration.
	rec, err := r.svc.Store.Get(ctx, iapps.KeyOf("syncthing", alice()))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := r.svc.Registry.Lookup("syncthing")
	if _, err := iapps.Reconcile(ctx, env.Clientset, r.ns, h, rec, r.svc.Access); err != nil {
		t.Fatal(err)
	}
	back, err := r.pod("5000")
	if err != nil || back.UID == first.UID || back.Annotations[kube.AnnotationIAppETag] != cur.ETag {
		t.Fatalf("pod after restart: %v", err)
	}
	envtest.Eventually(t, 10*time.Second, func() error {
		p, err := r.pod("5000")
		if err != nil || p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("recreated pod not running: %v", err)
		}
		return nil
	})
	// reset: back to the default; Syncthing with no devices does not run, so the pod goes.
	if code, body := r.call("syncthing", iapps.OpReset, iapps.ResetRequest{Principal: alice(), ExpectedETag: &cur.ETag}); code != 200 {
		t.Fatalf("reset: %d %s", code, body)
	}
	after := r.retrieve("syncthing", alice())
	if string(after.Config) != `{"devices":[],"folders":[]}` || after.ETag == cur.ETag {
		t.Fatalf("after reset: %s %s", after.ETag, after.Config)
	}
	if _, err := r.pod("5000"); !apierrors.IsNotFound(err) {
		t.Fatalf("pod still there after reset to a config that should not run: %v", err)
	}
	// restart of something never configured is 404.
	if code, _ := r.call("terminal", iapps.OpRestart, iapps.RestartRequest{Principal: alice()}); code != http.StatusNotFound {
		t.Fatalf("restart of unconfigured terminal: %d", code)
	}
}

func TestBadRequestsAreRefusedAndStoreNothing(t *testing.T) {
	r := newRig(t)
	upd := func(app, cfg string) iapps.UpdateRequest {
		return iapps.UpdateRequest{ProductID: app, Principal: alice(), Config: json.RawMessage(cfg)}
	}
	tests := []struct {
		name, app string
		body      any
		status    int
		why       string
	}{
		{"bad device id", "syncthing", upd("syncthing", `{"devices":[{"deviceId":"ABC","label":"x"}],"folders":[]}`), 400, "devices[0].deviceId"},
		{"duplicate device", "syncthing", upd("syncthing", `{"devices":[{"deviceId":"`+device1+`"},{"deviceId":"`+strings.ToLower(device1)+`"}],"folders":[]}`), 400, "devices[1].deviceId appears twice"},
		{"duplicate folder id", "syncthing", upd("syncthing", `{"devices":[],"folders":[{"id":"a","ucloudPath":"/1/A"},{"id":"a","ucloudPath":"/1/B"}]}`), 400, "folders[1].id appears twice"},
		{"relative path", "syncthing", upd("syncthing", `{"devices":[],"folders":[{"id":"a","ucloudPath":"Home/Sync"}]}`), 400, "folders[0].ucloudPath"},
		{"dot-dot path", "syncthing", upd("syncthing", `{"devices":[],"folders":[{"id":"a","ucloudPath":"/1/../2"}]}`), 400, "folders[0].ucloudPath must not contain"},
		{"unknown setting", "syncthing", upd("syncthing", `{"devices":[],"folders":[],"relays":true}`), 400, "relays is not a known setting"},
		{"wrong type", "syncthing", upd("syncthing", `{"devices":"all"}`), 400, "devices has the wrong type"},
		{"too many folders", "terminal", upd("terminal", `{"folders":[`+strings.Repeat(`"/1/a",`, 60)+`"/1/b"]}`), 400, "folders has 61 entries"},
		{"terminal bad path", "terminal", upd("terminal", `{"folders":["/abc/x"]}`), 400, "folders[0]"},
		{"missing config", "syncthing", iapps.UpdateRequest{Principal: alice()}, 400, "config is required"},
		{"no principal", "syncthing", iapps.UpdateRequest{Config: syncthingConfig("x")}, 400, "principal.createdBy"},
		{"unknown app", "jupyter", upd("jupyter", `{}`), 404, "Unknown integrated application"},
		{"malformed JSON", "syncthing", []byte(`{"principal":`), 400, "malformed JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := r.call(tc.app, iapps.OpUpdate, tc.body)
			if code != tc.status || !strings.Contains(string(body), tc.why) {
				t.Fatalf("%d %s, want %d naming %q", code, body, tc.status, tc.why)
			}
		})
	}
	r.tok = "not-a-token"
	if code, _ := r.call("syncthing", iapps.OpUpdate, upd("syncthing", string(syncthingConfig("x")))); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
	if n := r.rows(); n != 0 {
		t.Fatalf("refused requests stored %d rows", n)
	}
	if n := len(r.core.Received()); n != 0 {
		t.Fatalf("refused requests reached Core %d times", n)
	}
}

func TestTerminalAcceptsCapitalFoldersAndStoresLowercase(t *testing.T) {
	r := newRig(t)
	code, body := r.call("terminal", iapps.OpUpdate, iapps.UpdateRequest{Principal: alice(), Config: json.RawMessage(`{"Folders":["/7/Home","/8/Home"]}`)})
	if code != 200 {
		t.Fatalf("update: %d %s", code, body)
	}
	got := r.retrieve("terminal", alice())
	if string(got.Config) != `{"folders":["/7/Home","/8/Home"]}` {
		t.Fatalf("stored %s", got.Config)
	}
	pod, err := r.pod("5000")
	if err != nil {
		t.Fatal(err)
	}
	var mounts []string
	for _, m := range pod.Spec.Containers[0].VolumeMounts {
		mounts = append(mounts, m.MountPath)
	}
	if strings.Join(mounts, ",") != "/etc/ucloud/iapp,/ucloud/drives/7,/ucloud/drives/8,/work" {
		t.Fatalf("mounts %v", mounts)
	}
	if links := strings.Join(pod.Spec.InitContainers[0].Args[3:], ","); links != "/ucloud/drives/7/Home,/work/Home,/ucloud/drives/8/Home,/work/Home-2" {
		t.Fatalf("links %s", links)
	}
}

// An idle terminal is scaled to zero by the reconcile step (its pod goes; the job is not ended), and a
// configuration change (activity) brings it back.
func TestIdleTerminalIsStoppedByReconcile(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if code, body := r.call("terminal", iapps.OpUpdate, iapps.UpdateRequest{Principal: alice(), Config: json.RawMessage(`{"folders":["/7/Home"]}`)}); code != 200 {
		t.Fatalf("update: %d %s", code, body)
	}
	if _, err := r.pod("5000"); err != nil {
		t.Fatalf("terminal pod not started: %v", err)
	}
	rec, err := r.svc.Store.Get(ctx, iapps.KeyOf("terminal", alice()))
	if err != nil {
		t.Fatal(err)
	}
	now := rec.UpdatedAt.Add(10 * time.Minute)
	term := iapps.Terminal{IdleTimeout: 15 * time.Minute, Now: func() time.Time { return now }}
	if out, err := iapps.Reconcile(ctx, env.Clientset, r.ns, term, rec, r.svc.Access); err != nil || out.Outcome != iapps.Unchanged {
		t.Fatalf("after 10 idle minutes: %s %v, want unchanged", out, err)
	}
	now = rec.UpdatedAt.Add(16 * time.Minute)
	if out, err := iapps.Reconcile(ctx, env.Clientset, r.ns, term, rec, r.svc.Access); err != nil || out.Outcome != iapps.Stopped {
		t.Fatalf("after 16 idle minutes: %s %v, want stopped", out, err)
	}
	if _, err := r.pod("5000"); !apierrors.IsNotFound(err) {
		t.Fatalf("idle terminal pod still there: %v", err)
	}
	if rec2, err := r.svc.Store.Get(ctx, iapps.KeyOf("terminal", alice())); err != nil || !rec2.Active() {
		t.Fatalf("idle terminal lost its configuration: %v", err)
	}
}
