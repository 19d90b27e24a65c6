package appauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	netclient "knative.dev/networking/pkg/client/clientset/versioned"

	"github.com/ucloud-im/knative-im/gateway/local"
	"github.com/ucloud-im/knative-im/shared/appauth"
	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/appsession"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/test/apphost"
	"github.com/ucloud-im/knative-im/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }

const domain = "apps.localhost"

var sessions = appsession.Sessions{Key: []byte("the app-auth test's signing key, 32+ bytes")}

type rig struct {
	ns   string
	app  *apphost.App
	pool *pgxpool.Pool
	h    *appauth.Handler
	addr string
}

// newRig runs app-auth's handler on a real HTTP server, with its Services from the real apiserver (the
// local way: EndpointSlices to this machine), a real token ledger, and one job rank, 7-0, whose Service
// job-create's code made and which leads to a recording application.
func newRig(t *testing.T) *rig {
	ctx := context.Background()
	r := &rig{ns: env.Namespace(t), app: apphost.NewApp(t)}
	var err error
	if r.pool, err = pgxpool.New(ctx, env.Database(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.pool.Close)
	if err := (&store.Store{Pool: r.pool}).Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	r.expose(t, "7", 0)
	ups := &appauth.Upstreams{Kube: env.Clientset, Namespace: r.ns, Local: true}
	uctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	if err := ups.Start(uctx); err != nil {
		t.Fatal(err)
	}
	r.h = appauth.NewHandler(appauth.Decider{Provider: "k8s", AppsDomain: domain, Sessions: sessions},
		appsession.PostgresLedger{Pool: r.pool}, ups, fn.NewLogger(io.Discard, "app-auth", "info"))
	r.h.Ready = ups.Ready
	srv := httptest.NewServer(r.h)
	t.Cleanup(srv.Close)
	r.addr = srv.Listener.Addr().String()
	host := appdomain.AppHost("7", 0, domain)
	envtest.Eventually(t, 10*time.Second, func() error {
		c := sessions.Cookie(host)
		if a := apphost.Send(t, r.addr, "GET / HTTP/1.1\r\nHost: "+host+"\r\nCookie: "+c.Name+"="+c.Value+"\r\nConnection: close\r\n\r\n"); a.Status != 200 {
			return fmt.Errorf("the app is not reachable yet: %d %s", a.Status, a.Body)
		}
		return nil
	})
	return r
}

// expose makes a rank's pod and, with job-create's code, its Service and KIngress, and points the
// Service at the recording application (KWOK's pods run nothing).
func (r *rig) expose(t *testing.T, jobID string, rank int) {
	ctx := context.Background()
	pod, err := env.Clientset.CoreV1().Pods(r.ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: kube.PodName(jobID, rank), Labels: kube.JobLabels(jobID, rank, "")},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: kube.ContainerName, Image: "app"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	apps := &appdomain.Apps{Kube: env.Clientset, Net: netclient.NewForConfigOrDie(env.Config), Settings: appdomain.Settings{
		Provider: "k8s", AppsDomain: domain, Namespace: r.ns, AuthService: appdomain.AuthServiceName, AuthHost: "app-auth.ucloud-im.svc.cluster.local"}}
	if err := apps.Expose(ctx, pod, jobID, rank, 8888); err != nil {
		t.Fatal(err)
	}
	if err := local.PointAtLocal(ctx, env.Clientset, r.ns, appdomain.AppName(jobID, rank), "app", r.app.Port()); err != nil {
		t.Fatal(err)
	}
}

func cookieHeader(host string) string {
	c := sessions.Cookie(host)
	return c.Name + "=" + c.Value
}

// TestDecisionOnTheRawRequest sends the attacker's requests byte for byte to app-auth's own server: every
// one is refused and none reaches the application; the user's requests (page, same-origin POST and
// WebSocket, the real authorize path) work, and the application never sees the IM's cookie.
func TestDecisionOnTheRawRequest(t *testing.T) {
	r := newRig(t)
	host, other := appdomain.AppHost("7", 0, domain), appdomain.AppHost("8", 0, domain)
	tok, err := sessions.IssueToken(host)
	if err != nil {
		t.Fatal(err)
	}
	apphost.Check(t, r.addr, r.app, apphost.Cases("k8s", apphost.Target{Host: host, Cookie: cookieHeader(host), Token: tok,
		OtherHost: other, OtherCookie: cookieHeader(other), Origin: "http://" + host}))
}

// TestOnlyTheIMsServicesAreTargets: a valid cookie for a host whose Service the IM did not make (another
// party's Service of that name, or one without an owning pod) leads nowhere; probes answer only on hosts
// that are not app hosts.
func TestOnlyTheIMsServicesAreTargets(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	svc := func(name string, labels map[string]string) {
		_, err := env.Clientset.CoreV1().Services(r.ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "web", Port: 80, TargetPort: intstr.FromInt(8888)}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := local.PointAtLocal(ctx, env.Clientset, r.ns, name, "app", r.app.Port()); err != nil {
			t.Fatal(err)
		}
	}
	svc("app-20-0", nil)
	ours := kube.JobLabels("21", 0, "")
	ours[appdomain.LabelManagedBy] = appdomain.ManagedBy
	svc("app-21-0", ours) // labelled as ours, but owned by no pod
	// Caches filled after those Services exist, so a refusal below is the check's, not a stale cache's.
	ups := &appauth.Upstreams{Kube: env.Clientset, Namespace: r.ns, Local: true}
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := ups.Start(uctx); err != nil {
		t.Fatal(err)
	}
	r.h.Targets = ups
	for _, host := range []string{"app-20-0." + domain, "app-21-0." + domain, "app-22-0." + domain} {
		a := apphost.Send(t, r.addr, "GET / HTTP/1.1\r\nHost: "+host+"\r\nCookie: "+cookieHeader(host)+"\r\nConnection: close\r\n\r\n")
		if a.Status != http.StatusNotFound || !strings.Contains(a.Body, "NO_APP") {
			t.Errorf("%s: %d %s", host, a.Status, a.Body)
		}
	}
	if n := len(r.app.Seen()); n != 1 { // the rig's own reachability check
		t.Fatalf("the application received %d requests", n)
	}
	for _, tc := range []struct {
		host, path string
		status     int
	}{
		{"10.0.0.7:8080", "/readyz", 200},
		{"127.0.0.1:8080", "/healthz", 200},
		{"app-7-0." + domain, "/healthz", 401}, // the application's path, behind the cookie like every other
	} {
		if a := apphost.Send(t, r.addr, "GET "+tc.path+" HTTP/1.1\r\nHost: "+tc.host+"\r\nConnection: close\r\n\r\n"); a.Status != tc.status {
			t.Errorf("%s%s: %d %s", tc.host, tc.path, a.Status, a.Body)
		}
	}
}

func TestAuthorizeApp(t *testing.T) {
	ctx := context.Background()
	// The ledger as app-auth's own database role.
	pool := storetest.New(t, env.Database(t)).Open(t, store.FnAppAuth).Pool
	now := time.Now()
	sessions := appsession.Sessions{Key: []byte("0123456789abcdef0123456789abcdef"), Now: func() time.Time { return now }}
	h := appauth.NewHandler(appauth.Decider{Provider: "k8s", AppsDomain: "apps.example.org", Sessions: sessions},
		appsession.PostgresLedger{Pool: pool}, nil, fn.NewLogger(io.Discard, "app-auth", "info"))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tok := func() string {
		s, _ := sessions.IssueToken("app-9-0.apps.example.org")
		return s
	}
	used, used2 := tok(), tok()
	expired, _ := appsession.Sessions{Key: sessions.Key, Now: func() time.Time { return now.Add(-time.Hour) }}.IssueToken("app-9-0.apps.example.org")
	for _, tc := range []struct {
		name, method, host, query string
		status                    int
		code                      string
	}{
		{"valid", "GET", "app-9-0.apps.example.org", "token=" + used, http.StatusFound, ""},
		{"used again", "GET", "app-9-0.apps.example.org", "token=" + used, http.StatusUnauthorized, "USED_TOKEN"},
		{"no token", "GET", "app-9-0.apps.example.org", "", http.StatusUnauthorized, "MISSING_TOKEN"},
		{"garbage", "GET", "app-9-0.apps.example.org", "token=abc", http.StatusUnauthorized, "BAD_TOKEN"},
		{"expired", "GET", "app-9-0.apps.example.org", "token=" + expired, http.StatusUnauthorized, "EXPIRED_TOKEN"},
		{"another app's host", "GET", "app-10-0.apps.example.org", "token=" + tok(), http.StatusUnauthorized, "WRONG_HOST"},
		{"upper case, port, trailing dot: the same host", "GET", "APP-9-0.apps.example.org.:443", "token=" + tok(), http.StatusFound, ""},
		{"POST", "POST", "app-9-0.apps.example.org", "token=" + tok(), http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED"},
		{"HEAD does not spend the token", "HEAD", "app-9-0.apps.example.org", "token=" + used2, http.StatusMethodNotAllowed, ""},
		{"the token HEAD left unspent", "GET", "app-9-0.apps.example.org", "token=" + used2, http.StatusFound, ""},
		{"the function's own host: not an app host", "GET", "app-auth.ucloud-im.svc.cluster.local", "token=" + tok(), http.StatusNotFound, "NOT_AN_APP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+"/ucloud/k8s/authorize-app?"+tc.query, nil)
			req.Host = tc.host
			resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var e struct{ ErrorCode string }
			_ = json.Unmarshal(b, &e)
			if resp.StatusCode != tc.status || e.ErrorCode != tc.code {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			if tc.status == http.StatusFound {
				c := resp.Cookies()
				if len(c) != 1 || c[0].Name != "__Host-ucloud-im-session" || c[0].Path != "/" || !c[0].Secure || c[0].Domain != "" || resp.Header.Get("Location") != "/" {
					t.Fatalf("session cookie %+v, location %q", c, resp.Header.Get("Location"))
				}
			}
		})
	}

	// The database unreachable: 503 with a clear reason.
	down, err := pgxpool.New(ctx, fmt.Sprintf("postgres://ucloud@127.0.0.1:%d/ucloud?connect_timeout=2", envtest.FreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(down.Close)
	h.Ledger = appsession.PostgresLedger{Pool: down}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ucloud/k8s/authorize-app?token="+tok(), nil)
	req.Host = "app-9-0.apps.example.org"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("database down: %d", resp.StatusCode)
	}
}
