package local_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	"github.com/ucloud-im/knative-im/test/apphost"
	"github.com/ucloud-im/knative-im/test/envtest"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }

const domain = "apps.localhost"

var sessions = appsession.Sessions{Key: []byte("the local gateway test's signing key, 32+ bytes")}

type rig struct {
	t        *testing.T
	ns       string
	jobs     *jobs.Service
	gw       string
	auth     *httptest.Server
	upstream *apphost.App
}

// newRig runs the local gateway as make run does: app hosts go, by their KIngress, to an app-auth server
// (app-auth's real handler, finding Services the local way); API paths to stand-in functions. authAddr,
// when set, replaces app-auth's address (a process that does not answer).
func newRig(t *testing.T, authAddr string) *rig {
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
		Settings: jobs.Settings{Namespace: ns},
		Apps:     &appdomain.Apps{Kube: env.Clientset, Net: nc, Settings: settings}, Sessions: &sessions}

	pool, err := pgxpool.New(ctx, env.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := (&store.Store{Pool: pool}).Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	gctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	ups := &appauth.Upstreams{Kube: env.Clientset, Namespace: ns, Local: true}
	if err := ups.Start(gctx); err != nil {
		t.Fatal(err)
	}
	auth := appauth.NewHandler(appauth.Decider{Provider: "k8s", AppsDomain: domain, Sessions: sessions},
		appsession.PostgresLedger{Pool: pool}, ups, fn.NewLogger(io.Discard, "app-auth", "info"))
	authSrv := httptest.NewServer(auth)
	t.Cleanup(authSrv.Close)
	if authAddr == "" {
		authAddr = authSrv.URL
	}

	fns := map[string]*url.URL{appdomain.FnAppAuth: mustURL(authAddr)}
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
	g := &local.Gateway{Kube: env.Clientset, Net: nc, Namespace: ns, API: routes, Functions: fns,
		FunctionTimeout: 2 * time.Second, Log: fn.NewLogger(io.Discard, "gw", "info")}
	if err := g.Start(gctx); err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(g)
	t.Cleanup(gw.Close)
	return &rig{t: t, ns: ns, jobs: svc, gw: gw.URL, auth: authSrv, upstream: apphost.NewApp(t)}
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
	return fakecore.NewJob(id, ucloud.ResourceOwner{CreatedBy: "alice#1234"},
		ucloud.ProductReference{ID: "u1-standard-1", Category: "u1-standard", Provider: "k8s"}, "jupyter", 1)
}

// pointAtUpstream puts the test's upstream behind the rank's Service (KWOK's pods have no network).
func (r *rig) pointAtUpstream(jobID string) {
	if err := local.PointAtLocal(context.Background(), env.Clientset, r.ns, appdomain.AppName(jobID, 0), "upstream", r.upstream.Port()); err != nil {
		r.t.Fatal(err)
	}
}

func TestInteractiveJobThroughTheGateway(t *testing.T) {
	r := newRig(t, "")
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
	if cookie == nil || cookie.Name != "__Host-ucloud-im-session" || cookie.Path != "/" || !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteLaxMode || cookie.MaxAge != 30*24*3600 || cookie.Domain != "" {
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

// websocket opens a WebSocket through the gateway, from the app's own origin, and sends one message over
// the upgraded connection.
func (r *rig) websocket(host string, cookie *http.Cookie) (int, string) {
	r.t.Helper()
	c := ""
	if cookie != nil {
		c = "Cookie: " + cookie.Name + "=" + cookie.Value + "\r\n"
	}
	a := apphost.Send(r.t, strings.TrimPrefix(r.gw, "http://"), "GET /api/kernels/1/channels HTTP/1.1\r\nHost: "+host+"\r\n"+
		"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "+apphost.WSKey+"\r\n"+
		"Origin: http://"+host+"\r\n"+c+"\r\n")
	if a.Status == http.StatusSwitchingProtocols && a.Header.Get("Sec-WebSocket-Accept") != apphost.Accept(apphost.WSKey) {
		r.t.Fatalf("handshake accept %q", a.Header.Get("Sec-WebSocket-Accept"))
	}
	return a.Status, a.Echo
}

func TestAPIHostByThePathTable(t *testing.T) {
	r := newRig(t, "")
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
	r := newRig(t, "")
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

// TestAppHostRequestsThroughTheGateway sends the attacker's requests byte for byte to the local gateway
// (the ingress of make run), which hands every app-host request to app-auth: every one is refused and none
// reaches the application; the user's requests work.
func TestAppHostRequestsThroughTheGateway(t *testing.T) {
	r := newRig(t, "")
	if errs := r.jobs.Create(context.Background(), []ucloud.Job{webJob("601")}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	r.pointAtUpstream("601")
	host, other := appdomain.AppHost("601", 0, domain), appdomain.AppHost("602", 0, domain)
	c, oc := sessions.Cookie(host), sessions.Cookie(other)
	envtest.Eventually(t, 10*time.Second, func() error {
		if resp, body := r.get(host, "/", &http.Cookie{Name: c.Name, Value: c.Value}); resp.StatusCode != 200 {
			return fmt.Errorf("the app is not reachable yet: %d %s", resp.StatusCode, body)
		}
		return nil
	})
	tok, err := sessions.IssueToken(host)
	if err != nil {
		t.Fatal(err)
	}
	apphost.Check(t, strings.TrimPrefix(r.gw, "http://"), r.upstream, apphost.Cases("k8s", apphost.Target{Host: host,
		Cookie: c.Name + "=" + c.Value, Token: tok, OtherHost: other, OtherCookie: oc.Name + "=" + oc.Value, Origin: "http://" + host}))
}

// TestAuthServiceDownOrStalled: with app-auth killed, or accepting connections and never answering, an app
// host answers 503 from the gateway (the ingress), with a valid cookie too, and the application sees nothing.
func TestAuthServiceDownOrStalled(t *testing.T) {
	stalled, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stalled.Close() })
	go func() { // accept and hold: a process that is stopped or hung
		var held []net.Conn
		for {
			c, err := stalled.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	for _, tc := range []struct {
		name, authAddr string
		kill           bool
	}{
		{"killed", "", true},
		{"stalled", "http://" + stalled.Addr().String(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.authAddr)
			if errs := r.jobs.Create(context.Background(), []ucloud.Job{webJob("701")}); errs[0] != nil {
				t.Fatal(errs[0])
			}
			r.pointAtUpstream("701")
			host := appdomain.AppHost("701", 0, domain)
			c := sessions.Cookie(host)
			if tc.kill {
				envtest.Eventually(t, 10*time.Second, func() error {
					if resp, body := r.get(host, "/", &http.Cookie{Name: c.Name, Value: c.Value}); resp.StatusCode != 200 {
						return fmt.Errorf("the app is not reachable yet: %d %s", resp.StatusCode, body)
					}
					return nil
				})
				r.auth.Close()
			}
			before := len(r.upstream.Seen())
			envtest.Eventually(t, 10*time.Second, func() error { // until the gateway knows the host
				if resp, body := r.get(host, "/lab", &http.Cookie{Name: c.Name, Value: c.Value}); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"errorCode":"UNAVAILABLE"`) {
					return fmt.Errorf("page: %d %s", resp.StatusCode, body)
				}
				return nil
			})
			if status, _ := r.websocket(host, &http.Cookie{Name: c.Name, Value: c.Value}); status != http.StatusServiceUnavailable {
				t.Fatalf("websocket: %d", status)
			}
			if seen := r.upstream.Seen()[before:]; len(seen) > 0 {
				t.Fatalf("the application received %+v", seen)
			}
		})
	}
}
