package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	netclient "knative.dev/networking/pkg/client/clientset/versioned"

	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/appsession"
	"github.com/ucloud-im/knative-im/shared/coreauth"
	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/shellsession"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/shared/streams"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/conformance"
	"github.com/ucloud-im/knative-im/test/envtest"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }

// rig is one test's IM as Core reaches it: the job functions' and the iapps' real handlers behind the
// real host (Core token check, each route's body limit), a fresh namespace and database, and a
// fake Core whose traffic from the IM passes a recorder.
type rig struct {
	t    *testing.T
	ref  *conformance.Reference
	core *fakecore.Core
	ns   string
	url  string
	jobs *jobs.Service
	toCore
	client *ucloud.Client
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ref, err := conformance.Load(conformance.Dir())
	if err != nil {
		t.Fatal(err)
	}
	core := fakecore.Start(t)
	core.PersonalDrive("51234", "alice#1234") // the drive of the recorded Syncthing update's folders
	r := &rig{t: t, ref: ref, core: core}
	proxy := httputil.NewSingleHostReverseProxy(must(url.Parse(core.URL())))
	proxy.ModifyResponse = func(resp *http.Response) error {
		answer, err := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(answer))
		r.toCore.add(sent{Method: resp.Request.Method, Path: resp.Request.URL.Path, Query: resp.Request.URL.Query(),
			Body: resp.Request.Context().Value(bodyKey{}).([]byte), Status: resp.StatusCode, Answer: answer})
		return err
	}
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), bodyKey{}, body)))
	}))
	t.Cleanup(rec.Close)
	r.client, err = ucloud.NewClient(ucloud.ClientOptions{BaseURL: rec.URL, RefreshToken: func() (string, error) { return core.RefreshToken(), nil }})
	if err != nil {
		t.Fatal(err)
	}

	catalog, err := jobs.LoadCatalog("")
	if err != nil {
		t.Fatal(err)
	}
	r.ns = env.Namespace(t)
	env.FilesystemClaim(t, r.ns, iapps.FilesystemVolume)
	apps := appdomain.Settings{Provider: "k8s", AppsDomain: "apps.example.org", Namespace: r.ns,
		AuthService: appdomain.AuthServiceName, AuthHost: "app-auth.ucloud-im.svc.cluster.local"}
	r.jobs = &jobs.Service{Provider: "k8s", Catalog: catalog, Kube: env.Clientset, AppsDomain: "apps.example.org",
		Settings: jobs.Settings{Namespace: r.ns},
		Apps:     &appdomain.Apps{Kube: env.Clientset, Net: netclient.NewForConfigOrDie(env.Config), Settings: apps},
		Sessions: &appsession.Sessions{Key: []byte("conformance test key, long enough for hmac-sha256")}}

	// The configuration operations on config-update's database role (its grants cover all four).
	sdb := storetest.New(t, env.Database(t))
	db := sdb.Open(t, store.FnConfigUpdate)
	// Shell sessions on job-control's role, opened at job-streams (served below, as the path table does).
	r.jobs.Shells = &shellsession.Store{Pool: sdb.Open(t, store.FnJobControl).Pool}
	ia := &iapps.Service{Provider: "k8s", Registry: iapps.BuiltinApps(iapps.AppEnv{}), Store: &iapps.ConfigStore{Pool: db.Pool},
		Core: r.client, Kube: env.Clientset, Namespace: r.ns, Access: &drives.Access{Store: &drives.Store{Pool: db.Pool}, Core: r.client}}

	// As the path table splits them: create to job-create, the other job calls and the provider-level
	// calls to job-control, the configuration calls to the config functions.
	routes := http.NewServeMux()
	routes.Handle("/ucloud/k8s/jobs", r.jobs.CreateRoutes())
	routes.Handle("/ucloud/k8s/", r.jobs.ControlRoutes())
	routes.Handle("/ucloud/k8s/iapps/", ia.Routes(iapps.OpRetrieve, iapps.OpUpdate, iapps.OpReset, iapps.OpRestart))
	// openTerminalInFolder is config-update's: the terminal's configuration, lease and a shell session on its role.
	terminal := &iapps.TerminalOpener{Service: ia, Leases: iapps.Leases{Pool: db.Pool}, Sessions: &shellsession.Store{Pool: db.Pool}}
	routes.Handle(iapps.TerminalOpenPath("k8s"), terminal.Routes())
	key, err := coreauth.ParsePublicKey(core.PublicKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	ws := streams.Routes("k8s", &streams.FollowSocket{Provider: "k8s", Verifier: coreauth.NewVerifier(key, 0), KeepAlive: 30 * time.Second,
		Follower: &streams.Follower{Kube: env.Clientset, Namespace: r.ns, TailLines: 10, EndGrace: time.Second, Retry: time.Second}},
		&streams.ShellSocket{Sessions: &shellsession.Store{Pool: sdb.Open(t, store.FnJobStreams).Pool}, Kube: env.Clientset, Config: env.Config, Namespace: r.ns})
	routes.Handle("/ucloud/jobs.provider.k8s/websocket", ws)
	routes.Handle("/ucloud/k8s/websocket", ws)
	// The functions' own defaults (body limit above all), as they run without settings.
	var cfg fn.Config
	if err := fn.LoadEnv(&cfg); err != nil {
		t.Fatal(err)
	}
	host := &fn.Server{Name: "conformance", Routes: routes, Auth: coreauth.NewVerifier(key, 0), Config: cfg,
		Logger: fn.NewLogger(io.Discard, "conformance", "info")}
	srv := httptest.NewServer(host.Handler())
	t.Cleanup(srv.Close)
	r.url = srv.URL
	r.jobs.ShellURL = jobs.WebSocketURL(srv.URL)
	terminal.ShellURL = jobs.WebSocketURL(srv.URL)
	return r
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// sent is one request the IM made to Core, and the fake Core's answer.
type sent struct {
	Method, Path string
	Query        url.Values
	Body         []byte
	Status       int
	Answer       []byte
}

type bodyKey struct{}

type toCore struct {
	mu   sync.Mutex
	list []sent
}

func (c *toCore) add(s sent) { c.mu.Lock(); c.list = append(c.list, s); c.mu.Unlock() }

func (c *toCore) requests() []sent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sent(nil), c.list...)
}

// fixture is the call named name and its body exactly as core2 sent it.
func (r *rig) fixture(name string) (conformance.Call, []byte) {
	r.t.Helper()
	c, err := r.ref.Find(name)
	if err != nil {
		r.t.Fatal(err)
	}
	body, err := r.ref.Body(c)
	if err != nil {
		r.t.Fatal(err)
	}
	return c, body
}

// edit changes a fixture body the way a different user action would (another product, rank, ...),
// keeping everything else core2 put in it.
func edit(t *testing.T, body []byte, change func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	change(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// item is items[i] of a bulk request body.
func item(m map[string]any, i int) map[string]any { return m["items"].([]any)[i].(map[string]any) }

// answer is what Core got back from the IM.
type answer struct {
	call   conformance.Call
	status int
	body   []byte
}

// send makes the call as core2 does (fake Core's CallProvider: Core's token, ucloud-username, 5 s timeout).
func (r *rig) send(c conformance.Call, body []byte) answer {
	r.t.Helper()
	var payload any
	if body != nil {
		payload = json.RawMessage(body)
	}
	got, err := r.core.CallProvider(context.Background(), r.url, c.Method, c.Path, c.Username, payload)
	if err != nil {
		r.t.Fatalf("%s: %v", c.Name, err)
	}
	if got.TimedOut {
		r.t.Fatalf("%s: the IM did not answer within core2's %s", c.Name, fakecore.ProviderTimeout)
	}
	return answer{call: c, status: got.Status, body: got.Body}
}

// fits fails the test where a 2xx answer does not decode into the response type core2 uses, or carries
// fields core2 does not have (they would be dropped); fields core2 has and the IM leaves out are logged.
func (r *rig) fits(a answer) {
	r.t.Helper()
	if a.status/100 != 2 {
		r.t.Fatalf("%s: %d %s, want 2xx", a.call.Name, a.status, a.body)
	}
	r.check(a.call.Name+" answer", a.call.ResponseType, a.body)
}

func (r *rig) check(what, typeName string, body []byte) []conformance.Problem {
	r.t.Helper()
	probs, err := r.ref.Check(typeName, body)
	if err != nil {
		r.t.Fatal(err)
	}
	if bad := conformance.Only(probs, conformance.Mismatch, conformance.Unknown); len(bad) > 0 {
		r.t.Errorf("%s does not fit core2's %s: %v\nbody: %s", what, typeName, bad, body)
	}
	if soft := conformance.Only(probs, conformance.Missing, conformance.Null); len(soft) > 0 {
		r.t.Logf("%s leaves out what core2 reads as zero: %v", what, soft)
	}
	return probs
}

// refused asserts a non-2xx answer whose body is UCloud's error as core2 reads it: it fits the error
// type, has a message (why) and repeats the status, so core2 shows the provider's own message.
func (r *rig) refused(a answer, status int, code string) {
	r.t.Helper()
	if a.status != status {
		r.t.Fatalf("%s: %d %s, want %d", a.call.Name, a.status, a.body, status)
	}
	r.check(a.call.Name+" error", r.ref.ErrorType, a.body)
	var e struct {
		Why        string `json:"why"`
		StatusCode int    `json:"statusCode"`
		ErrorCode  string `json:"errorCode"`
	}
	if err := json.Unmarshal(a.body, &e); err != nil || e.Why == "" || e.StatusCode != a.status || (code != "" && e.ErrorCode != code) {
		r.t.Fatalf("%s: error body %s, want why, statusCode %d and errorCode %s", a.call.Name, a.body, a.status, code)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
