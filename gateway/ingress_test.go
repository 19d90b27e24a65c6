package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
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
	"k8s.io/apimachinery/pkg/types"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	netclient "knative.dev/networking/pkg/client/clientset/versioned"

	"github.com/ucloud-im/knative-im/gateway"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }

// TestIngressesPassKnativeValidationAndTheAPIServer checks both KIngress kinds with Knative networking's own
// SetDefaults and Validate, and has the real apiserver (with Knative's CRDs) accept them.
func TestIngressesPassKnativeValidationAndTheAPIServer(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "j-9-job-0", Namespace: ns, UID: types.UID("0b7f6f3c-1d3e-4c57-9e0a-3f2b1c4d5e6f")}}
	s := gateway.Settings{Provider: "k8s", AppsDomain: "apps.example.org", Namespace: ns,
		AuthService: gateway.AuthServiceName, AuthHost: "app-auth.ucloud-im.svc.cluster.local"}
	app := gateway.AppIngress(pod, "9", 0, s)
	api := gateway.APIIngress(ns, "provider.example.org", "", gateway.APIRoutes("k8s", []string{"syncthing", "terminal"}))
	nc := netclient.NewForConfigOrDie(env.Config)
	for _, ing := range []*netv1alpha1.Ingress{app, api} {
		ing.SetDefaults(ctx)
		if err := ing.Validate(ctx); err != nil {
			t.Fatalf("%s: %v", ing.Name, err)
		}
		if _, err := nc.NetworkingV1alpha1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Fatalf("%s refused by the apiserver: %v", ing.Name, err)
		}
	}
	if got := app.Spec.Rules[0].Hosts[0]; got != "app-9-0.apps.example.org" {
		t.Fatalf("app host %s", got)
	}
	if app.Annotations["networking.knative.dev/ingress.class"] != gateway.DefaultIngressClass || app.OwnerReferences[0].UID != pod.UID {
		t.Fatalf("app ingress metadata %+v", app.ObjectMeta)
	}
	// A backend in another namespace is what Knative refuses: the check is live.
	bad := gateway.AppIngress(pod, "9", 0, s)
	bad.Spec.Rules[0].HTTP.Paths[1].Splits[0].ServiceNamespace = "elsewhere"
	if err := bad.Validate(ctx); err == nil {
		t.Fatal("Validate accepted a backend in another namespace")
	}
}

// TestPathTableOrder: every path comes before the paths it is a prefix of, since ingresses match by prefix.
func TestPathTableOrder(t *testing.T) {
	routes := gateway.APIRoutes("k8s", []string{"syncthing"})
	for i, a := range routes {
		for _, b := range routes[i+1:] {
			if strings.HasPrefix(b.Path, a.Path) {
				t.Errorf("%s comes before %s, which it would shadow", a.Path, b.Path)
			}
		}
	}
}

func TestAuthorizeApp(t *testing.T) {
	ctx := context.Background()
	// The ledger as app-auth's own database role.
	pool := storetest.New(t, env.Database(t)).Open(t, store.FnAppAuth).Pool
	now := time.Now()
	sessions := gateway.Sessions{Key: []byte("0123456789abcdef0123456789abcdef"), Now: func() time.Time { return now }}
	auth := &gateway.Auth{Provider: "k8s", AppsDomain: "apps.example.org", Sessions: sessions, Ledger: gateway.PostgresLedger{Pool: pool}}
	srv := httptest.NewServer(auth.Routes())
	t.Cleanup(srv.Close)
	tok := func() string {
		s, _ := sessions.IssueToken("app-9-0.apps.example.org")
		return s
	}
	used := tok()
	expired, _ := gateway.Sessions{Key: sessions.Key, Now: func() time.Time { return now.Add(-time.Hour) }}.IssueToken("app-9-0.apps.example.org")
	for _, tc := range []struct {
		name, host, query string
		status            int
		code              string
	}{
		{"valid", "app-9-0.apps.example.org", "token=" + used, http.StatusFound, ""},
		{"used again", "app-9-0.apps.example.org", "token=" + used, http.StatusUnauthorized, "USED_TOKEN"},
		{"no token", "app-9-0.apps.example.org", "", http.StatusUnauthorized, "MISSING_TOKEN"},
		{"garbage", "app-9-0.apps.example.org", "token=abc", http.StatusUnauthorized, "BAD_TOKEN"},
		{"expired", "app-9-0.apps.example.org", "token=" + expired, http.StatusUnauthorized, "EXPIRED_TOKEN"},
		{"another app's host", "app-10-0.apps.example.org", "token=" + tok(), http.StatusUnauthorized, "WRONG_HOST"},
		{"behind a host-rewriting ingress", "app-auth.ucloud-im.svc.cluster.local", "token=" + tok(), http.StatusFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ucloud/k8s/authorize-app?"+tc.query, nil)
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
			if tc.status == http.StatusFound && !strings.Contains(resp.Header.Get("Set-Cookie"), gateway.CookieName+"=") {
				t.Fatalf("no session cookie: %v", resp.Header)
			}
		})
	}

	// The ingress's external-authorization check.
	cookie := sessions.Cookie("app-9-0.apps.example.org")
	for _, tc := range []struct {
		name, host, path string
		withCookie       bool
		status           int
	}{
		{"app with cookie", "app-9-0.apps.example.org", "/check/lab", true, 200},
		{"app without cookie", "app-9-0.apps.example.org", "/check/lab", false, 401},
		{"authorize-app without cookie", "app-9-0.apps.example.org", "/check/ucloud/k8s/authorize-app", false, 200},
		{"API host: Core's token is checked by the functions", "provider.example.org", "/check/ucloud/k8s/jobs", false, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+tc.path, nil)
			req.Host = tc.host
			if tc.withCookie {
				req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("check: %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}

	// The database unreachable: 503 with a clear reason.
	down, err := pgxpool.New(ctx, fmt.Sprintf("postgres://ucloud@127.0.0.1:%d/ucloud?connect_timeout=2", envtest.FreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(down.Close)
	auth.Ledger = gateway.PostgresLedger{Pool: down}
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

// Expose repeated for its pod succeeds; for another pod under the same name it is refused, not adopted.
func TestExposeIsIdempotentAndRefusesAnotherPod(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	cs := env.Clientset
	apps := &gateway.Apps{Kube: cs, Net: netclient.NewForConfigOrDie(env.Config), Settings: gateway.Settings{Provider: "k8s",
		AppsDomain: "apps.example.org", Namespace: ns, AuthService: gateway.AuthServiceName, AuthHost: "app-auth.ucloud-im.svc.cluster.local"}}
	pod := func(name string) *corev1.Pod {
		p, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first, other := pod("j-9-job-0"), pod("someone-else")
	for range 2 {
		if err := apps.Expose(ctx, first, "9", 0, 8888); err != nil {
			t.Fatalf("expose for its own pod: %v", err)
		}
	}
	if err := apps.Expose(ctx, other, "9", 0, 8888); !errors.Is(err, gateway.ErrTaken) {
		t.Fatalf("expose for another pod: %v, want ErrTaken", err)
	}
}
