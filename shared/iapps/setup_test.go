package iapps_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ucloud-im/knative-im/shared/coreauth"
	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/envtest"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }

// rig is one test's IM: a fresh database and namespace, a strict fake Core, and the four operations
// behind the real host (Core token check included).
type rig struct {
	t    *testing.T
	svc  *iapps.Service
	db   *store.Store
	core *fakecore.Core
	ns   string
	url  string
	tok  string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	env.Cluster(t) // before the database: without a cluster the test is skipped before PostgreSQL starts
	// The service runs as config-update, whose role covers every operation's queries (retrieve and
	// restart only read); the test's own checks use the schema owner's pool.
	sdb := storetest.New(t, env.Database(t))
	db := &store.Store{Pool: sdb.OwnerPool(t)}
	fnDB := sdb.Open(t, store.FnConfigUpdate)
	core := fakecore.Start(t)
	client, err := core.Client(ucloud.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t)
	env.FilesystemClaim(t, ns, iapps.FilesystemVolume)
	svc := &iapps.Service{
		Provider: "k8s", Registry: iapps.BuiltinApps(iapps.AppEnv{}), Store: &iapps.ConfigStore{Pool: fnDB.Pool},
		Core: client, Kube: env.Clientset, Namespace: ns,
		Access: &drives.Access{Store: &drives.Store{Pool: fnDB.Pool}, Core: client},
	}
	// The drives the tests' folders are in belong to alice; anyone else is refused them.
	for _, id := range []string{"1", "2", "3", "4", "7", "8", "9", "123"} {
		core.PersonalDrive(id, alice().CreatedBy)
	}
	key, err := coreauth.ParsePublicKey(core.PublicKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	all := []iapps.Op{iapps.OpRetrieve, iapps.OpUpdate, iapps.OpReset, iapps.OpRestart}
	host := &fn.Server{Name: "iapps-test", Routes: svc.Routes(all...),
		Auth: coreauth.NewVerifier(key, 0), Config: fn.Config{MaxBodyBytes: 1 << 20}, Logger: fn.NewLogger(io.Discard, "iapps-test", "info")}
	srv := httptest.NewServer(host.Handler())
	t.Cleanup(srv.Close)
	return &rig{t: t, svc: svc, db: db, core: core, ns: ns, url: srv.URL, tok: core.Token()}
}

// call POSTs body to /ucloud/k8s/iapps/<app>/<op> with Core's token and returns status and body.
func (r *rig) call(app string, op iapps.Op, body any) (int, []byte) {
	r.t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			r.t.Fatal(err)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, r.url+"/ucloud/k8s/iapps/"+app+"/"+string(op), bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (r *rig) retrieve(app string, owner ucloud.ResourceOwner) iapps.Retrieved {
	r.t.Helper()
	code, body := r.call(app, iapps.OpRetrieve, iapps.RetrieveRequest{ProductID: app, Principal: owner})
	if code != 200 {
		r.t.Fatalf("retrieve: %d %s", code, body)
	}
	var got iapps.Retrieved
	if err := json.Unmarshal(body, &got); err != nil {
		r.t.Fatal(err)
	}
	return got
}

func (r *rig) rows() int {
	r.t.Helper()
	var n int
	if err := r.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM iapp_config").Scan(&n); err != nil {
		r.t.Fatal(err)
	}
	return n
}

func alice() ucloud.ResourceOwner { return ucloud.ResourceOwner{CreatedBy: "alice#1234"} }

const (
	device1 = "MFZWI3D-BONSGYC-YLTMRWG-C43ENR5-QXGZDMM-FZWI3DP-BONSGYY-LTMRWAD"
	device2 = "P56IOI7-MZJNU2Y-IQGDREY-DM2MGTI-MGL3BXN-PQ6W5BM-TBBZ4TJ-XZWICQ2"
)

func syncthingConfig(label string) json.RawMessage {
	return json.RawMessage(`{"devices":[{"deviceId":"` + device1 + `","label":"` + label + `"}],"folders":[{"id":"x1","ucloudPath":"/123/Home/Sync"}]}`)
}

func ptr[T any](v T) *T { return &v }
