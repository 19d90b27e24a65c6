package iapps_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// podUIDs are the namespace's pods by name: "no pod changes" is this map staying equal.
func (r *rig) podUIDs() map[string]string {
	r.t.Helper()
	pods, err := env.Clientset.CoreV1().Pods(r.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	// The uid, what the pod runs and its annotations; not the resourceVersion, which KWOK's status updates
	// change, nor the node the scheduler binds it to.
	out := map[string]string{}
	for _, p := range pods.Items {
		p.Spec.NodeName = "" // set by the scheduler after creation
		spec, _ := json.Marshal(p.Spec)
		meta, _ := json.Marshal(p.Annotations)
		out[p.Name] = string(p.UID) + "/" + string(spec) + string(meta)
	}
	return out
}

// The attacker (alice, or a forged call in her name) asks for folders in drives she may not write: another
// user's drive, a drive where her ACL entry is READ only, a drive Core does not know, and another
// provider's drive. Each update is 403 in UCloud's shape naming the folder; nothing is stored (her earlier
// configuration and ETag stay), no job is registered, no pod changes.
func TestUpdateWithFoldersTheOwnerMayNotUseIsForbidden(t *testing.T) {
	r := newRig(t)
	r.core.PersonalDrive("50", "bob#1")
	readOnly := r.core.PersonalDrive("51", "bob#1")
	readOnly.Permissions.Others = []ucloud.ResourceAclEntry{{Entity: ucloud.AclEntity{Type: ucloud.AclUser, Username: alice().CreatedBy}, Permissions: []ucloud.Permission{"READ"}}}
	r.core.PutDrive(readOnly)
	foreign := r.core.PersonalDrive("52", alice().CreatedBy)
	foreign.Specification.Product.Provider = "other"
	r.core.PutDrive(foreign)
	device := `{"deviceId":"` + device1 + `","label":"x"}`
	attacks := []struct {
		app, cfg, folder string
	}{
		{"syncthing", `{"devices":[` + device + `],"folders":[{"id":"a","ucloudPath":"/123/Home/Sync"},{"id":"b","ucloudPath":"/50/Sync"}]}`, "/50/Sync"},
		{"syncthing", `{"devices":[` + device + `],"folders":[{"id":"a","ucloudPath":"/51/Shared"}]}`, "/51/Shared"},
		{"syncthing", `{"devices":[` + device + `],"folders":[{"id":"a","ucloudPath":"/999/x"}]}`, "/999/x"},
		{"syncthing", `{"devices":[` + device + `],"folders":[{"id":"a","ucloudPath":"/52/x"}]}`, "/52/x"},
		{"terminal", `{"folders":["/7/Home","/50"]}`, "/50"},
		{"terminal", `{"folders":["/51/Shared"]}`, "/51/Shared"},
	}
	// Nothing stored yet: no row, no job registered, no pod.
	for _, a := range attacks {
		code, body := r.call(a.app, iapps.OpUpdate, iapps.UpdateRequest{Principal: alice(), Config: json.RawMessage(a.cfg)})
		checkForbidden(t, a.app+" "+a.cfg, code, body, a.folder)
	}
	if n := r.rows(); n != 0 {
		t.Fatalf("%d configurations stored after refused updates", n)
	}
	if n := len(r.core.Registered()); n != 0 {
		t.Fatalf("%d jobs registered after refused updates", n)
	}
	if pods := r.podUIDs(); len(pods) != 0 {
		t.Fatalf("pods after refused updates: %v", pods)
	}
	// With configurations stored and running: refused updates change neither them nor their pods.
	for _, app := range []string{"syncthing", "terminal"} {
		cfg := syncthingConfig("mine")
		if app == "terminal" {
			cfg = json.RawMessage(`{"folders":["/7/Home"]}`)
		}
		if code, body := r.call(app, iapps.OpUpdate, iapps.UpdateRequest{Principal: alice(), Config: cfg}); code != 200 {
			t.Fatalf("%s: own folders: %d %s", app, code, body)
		}
	}
	before := map[string]iapps.Retrieved{"syncthing": r.retrieve("syncthing", alice()), "terminal": r.retrieve("terminal", alice())}
	pods, registered := r.podUIDs(), len(r.core.Registered())
	for _, a := range attacks {
		etag := before[a.app].ETag
		code, body := r.call(a.app, iapps.OpUpdate, iapps.UpdateRequest{Principal: alice(), Config: json.RawMessage(a.cfg), ExpectedETag: &etag})
		checkForbidden(t, a.app+" "+a.cfg, code, body, a.folder)
	}
	for app, b := range before {
		if got := r.retrieve(app, alice()); got.ETag != b.ETag || string(got.Config) != string(b.Config) {
			t.Errorf("%s: refused updates changed the configuration: %s -> %s", app, b.Config, got.Config)
		}
	}
	if got := r.podUIDs(); !equalMaps(got, pods) {
		t.Errorf("refused updates changed pods: %v -> %v", pods, got)
	}
	if n := len(r.core.Registered()); n != registered {
		t.Errorf("refused updates registered jobs: %d -> %d", registered, n)
	}
	if v := r.core.Violations(); len(v) != 0 {
		t.Errorf("calls to Core off the wire format: %v", v)
	}
}

func checkForbidden(t *testing.T, what string, code int, body []byte, folder string) {
	t.Helper()
	var e ucloud.Error
	if err := json.Unmarshal(body, &e); err != nil || code != 403 || e.StatusCode != 403 || e.ErrorCode != "FORBIDDEN" ||
		!strings.Contains(e.Why, folder) {
		t.Errorf("%s: %d %s; want 403 in UCloud's shape naming %s", what, code, body, folder)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
