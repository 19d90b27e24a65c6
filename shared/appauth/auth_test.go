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

	"github.com/ucloud-im/knative-im/shared/appauth"
	"github.com/ucloud-im/knative-im/shared/appsession"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }

func TestAuthorizeApp(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, env.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := (&store.Store{Pool: pool}).Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sessions := appsession.Sessions{Key: []byte("0123456789abcdef0123456789abcdef"), Now: func() time.Time { return now }}
	auth := &appauth.Auth{Provider: "k8s", AppsDomain: "apps.example.org", Sessions: sessions, Ledger: appsession.PostgresLedger{Pool: pool}}
	srv := httptest.NewServer(auth.Routes())
	t.Cleanup(srv.Close)
	tok := func() string {
		s, _ := sessions.IssueToken("app-9-0.apps.example.org")
		return s
	}
	used := tok()
	expired, _ := appsession.Sessions{Key: sessions.Key, Now: func() time.Time { return now.Add(-time.Hour) }}.IssueToken("app-9-0.apps.example.org")
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
			if tc.status == http.StatusFound && !strings.Contains(resp.Header.Get("Set-Cookie"), appsession.CookieName+"=") {
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
	auth.Ledger = appsession.PostgresLedger{Pool: down}
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
