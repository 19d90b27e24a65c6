package local_test

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	netclient "knative.dev/networking/pkg/client/clientset/versioned"

	"github.com/ucloud-im/knative-im/gateway/local"
	"github.com/ucloud-im/knative-im/shared/appauth"
	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/appsession"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }

const domain = "apps.localhost"

var sessions = appsession.Sessions{Key: []byte("the local gateway test's signing key, 32+ bytes")}

// upstream is the job's application: it names the Host it saw, and echoes a WebSocket's bytes.
func upstream(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			fmt.Fprintf(w, "hello from the app at %s", r.Host)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept(r.Header.Get("Sec-WebSocket-Key")))
		rw.Flush()
		_, _ = io.Copy(conn, rw)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func accept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

type rig struct {
	t        *testing.T
	ns       string
	jobs     *jobs.Service
	gw       string
	upstream *httptest.Server
}

func newRig(t *testing.T) *rig {
	ctx := context.Background()
	ns := env.Namespace(t)
	nc := netclient.NewForConfigOrDie(env.Config)
	settings := appdomain.Settings{Provider: "k8s", AppsDomain: domain, Namespace: ns,
		AuthService: appdomain.AuthServiceName, AuthHost: "app-auth.ucloud-im.svc.cluster.local"}
	catalog, err := jobs.LoadCatalog("")
	if err != nil {
		t.Fatal(err)
	}
	svc := &jobs.Service{Provider: "k8s", Catalog: catalog, Kube: env.Clientset, AppsDomain: domain,
		Settings: jobs.Settings{Namespace: ns, GatewayNamespace: "kourier-system"},
		Apps:     &appdomain.Apps{Kube: env.Clientset, Net: nc, Settings: settings}, Sessions: &sessions}

	pool, err := pgxpool.New(ctx, env.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := (&store.Store{Pool: pool}).Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	auth := &appauth.Auth{Provider: "k8s", AppsDomain: domain, Sessions: sessions, Ledger: appsession.PostgresLedger{Pool: pool}}
	authSrv := httptest.NewServer(auth.Routes())
	t.Cleanup(authSrv.Close)

	fns := map[string]*url.URL{appdomain.FnAppAuth: mustURL(authSrv.URL)}
	routes := appdomain.APIRoutes("k8s", []string{"syncthing"})
	for _, r := range routes {
		if _, ok := fns[r.Function]; ok {
			continue
		}
		name := r.Function
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) }))
		t.Cleanup(s.Close)
		fns[name] = mustURL(s.URL)
	}
	gctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	g := &local.Gateway{Kube: env.Clientset, Net: nc, Namespace: ns, API: routes, Functions: fns,
		Auth: &appauth.Auth{Provider: "k8s", AppsDomain: domain, Sessions: sessions}, Log: fn.NewLogger(io.Discard, "gw", "info")}
	if err := g.Start(gctx); err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(g)
	t.Cleanup(gw.Close)
	return &rig{t: t, ns: ns, jobs: svc, gw: gw.URL, upstream: upstream(t)}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// get asks the gateway for path on host, with the cookie if given.
func (r *rig) get(host, path string, cookie *http.Cookie) (*http.Response, string) {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.gw+path, nil)
	req.Host = host
	if cookie != nil {
		req.AddCookie(cookie)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func webJob(id string) ucloud.Job {
	return ucloud.Job{ID: id, CreatedAt: time.Now().UnixMilli(), Owner: ucloud.ResourceOwner{CreatedBy: "alice#1234"},
		Specification: ucloud.JobSpecification{
			Product:     ucloud.ProductReference{ID: "u1-standard-1", Category: "u1-standard", Provider: "k8s"},
			Application: ucloud.NameAndVersion{Name: "jupyter-lab", Version: "4.0.0"}, Replicas: 1,
			Parameters: map[string]ucloud.AppParameterValue{}, Resources: []ucloud.AppParameterValue{},
			TimeAllocation: &ucloud.SimpleDuration{Hours: 1},
		}, Status: ucloud.JobStatus{State: ucloud.StateInQueue}, Updates: []ucloud.JobUpdate{}}
}

// pointAtUpstream puts the test's upstream behind the rank's Service (KWOK's pods have no network).
func (r *rig) pointAtUpstream(jobID string) {
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(r.upstream.URL, "http://"))
	p, _ := strconv.Atoi(port)
	if err := local.PointAtLocal(context.Background(), env.Clientset, r.ns, appdomain.AppName(jobID, 0), "upstream", p); err != nil {
		r.t.Fatal(err)
	}
}

func TestInteractiveJobThroughTheGateway(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if errs := r.jobs.Create(ctx, []ucloud.Job{webJob("501")}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	r.pointAtUpstream("501")
	host := "app-501-0." + domain

	// Without a cookie: 401, for pages and WebSockets alike.
	envtest.Eventually(t, 10*time.Second, func() error {
		if resp, body := r.get(host, "/lab", nil); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Open this application from UCloud") {
			return fmt.Errorf("without a cookie: %d %s", resp.StatusCode, body)
		}
		return nil
	})
	if status, _ := r.websocket(host, nil); status != http.StatusUnauthorized {
		t.Fatalf("websocket without a cookie: %d", status)
	}

	// Core opens a session; the browser follows the link to the app's host and gets the cookie.
	opened, err := r.jobs.OpenSession(jobs.SessionRequest{Job: webJob("501"), Rank: 0, SessionType: "WEB"})
	if err != nil {
		t.Fatal(err)
	}
	link := mustURL(opened.RedirectClientTo)
	resp, body := r.get(link.Host, link.RequestURI(), nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Fatalf("authorize-app: %d %s", resp.StatusCode, body)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == appsession.CookieName {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteLaxMode || cookie.MaxAge != 30*24*3600 || cookie.Domain != "" {
		t.Fatalf("session cookie: %+v", cookie)
	}
	// The token worked once.
	if resp, body := r.get(link.Host, link.RequestURI(), nil); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "already been used") {
		t.Fatalf("second use of the token: %d %s", resp.StatusCode, body)
	}

	// With the cookie: the app, under its own host name, and its WebSocket.
	if resp, body := r.get(host, "/lab", &http.Cookie{Name: cookie.Name, Value: cookie.Value}); resp.StatusCode != 200 || body != "hello from the app at "+host {
		t.Fatalf("with the cookie: %d %s", resp.StatusCode, body)
	}
	if status, echo := r.websocket(host, &http.Cookie{Name: cookie.Name, Value: cookie.Value}); status != http.StatusSwitchingProtocols || echo != "ping over the tunnel" {
		t.Fatalf("websocket with the cookie: %d %q", status, echo)
	}
	// The cookie is bound to its host: another job's host refuses it.
	if errs := r.jobs.Create(ctx, []ucloud.Job{webJob("502")}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	envtest.Eventually(t, 10*time.Second, func() error {
		if resp, _ := r.get("app-502-0."+domain, "/", &http.Cookie{Name: cookie.Name, Value: cookie.Value}); resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("another job's host with this cookie: %d", resp.StatusCode)
		}
		return nil
	})

	// After terminate the host is gone.
	if err := r.jobs.Terminate(ctx, webJob("501")); err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, 10*time.Second, func() error {
		if resp, body := r.get(host, "/lab", &http.Cookie{Name: cookie.Name, Value: cookie.Value}); resp.StatusCode != http.StatusNotFound {
			return fmt.Errorf("after terminate: %d %s", resp.StatusCode, body)
		}
		return nil
	})
}

// websocket opens a WebSocket through the gateway and sends one message over the upgraded connection.
func (r *rig) websocket(host string, cookie *http.Cookie) (int, string) {
	r.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.gw, "http://"))
	if err != nil {
		r.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/api/kernels/1/channels", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if cookie != nil {
		req.AddCookie(cookie)
	}
	if err := req.Write(conn); err != nil {
		r.t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		r.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return resp.StatusCode, ""
	}
	if resp.Header.Get("Sec-WebSocket-Accept") != accept("dGhlIHNhbXBsZSBub25jZQ==") {
		r.t.Fatalf("handshake accept %q", resp.Header.Get("Sec-WebSocket-Accept"))
	}
	msg := "ping over the tunnel"
	if _, err := conn.Write([]byte(msg)); err != nil {
		r.t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(br, buf); err != nil {
		r.t.Fatal(err)
	}
	return resp.StatusCode, string(buf)
}

func TestAPIHostByThePathTable(t *testing.T) {
	r := newRig(t)
	for _, tc := range []struct {
		method, path, want string
		status             int
	}{
		{"POST", "/ucloud/k8s/jobs", "job-create", 200},
		{"POST", "/ucloud/k8s/jobs/terminate", "job-control", 200},
		{"GET", "/ucloud/k8s/jobs/retrieveProducts", "job-control", 200},
		{"POST", "/ucloud/k8s/iapps/syncthing/update", "config-update", 200},
		{"POST", "/ucloud/k8s/iapps/syncthing/retrieve", "config-retrieve", 200},
		{"POST", "/ucloud/other/jobs", "", 404},
		{"GET", "/ucloud/k8s/jobs", "", 405},
	} {
		req, _ := http.NewRequest(tc.method, r.gw+tc.path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || (tc.want != "" && string(b) != tc.want) {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.want)
		}
	}
}

// A KWOK pod's address is made up: the gateway never sends a request off this machine to reach it.
func TestNoUpstreamOffThisMachine(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if errs := r.jobs.Create(ctx, []ucloud.Job{webJob("503")}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	name := appdomain.AppName("503", 0)
	envtest.Eventually(t, 30*time.Second, func() error {
		slices, err := env.Clientset.DiscoveryV1().EndpointSlices(r.ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
		if err != nil || len(slices.Items) == 0 || len(slices.Items[0].Endpoints) == 0 {
			return fmt.Errorf("no endpoint for the running pod yet: %v", err)
		}
		return nil
	})
	host := "app-503-0." + domain
	c := sessions.Cookie(host)
	envtest.Eventually(t, 10*time.Second, func() error {
		resp, body := r.get(host, "/", &http.Cookie{Name: c.Name, Value: c.Value})
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "not ready") {
			return fmt.Errorf("an app on a KWOK pod: %d %s", resp.StatusCode, body)
		}
		return nil
	})
}
