package appauth_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ucloud-im/knative-im/shared/appauth"
	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/fn"
)

// fixed is a rank always at one address: the benchmark measures the decision and the proxy alone.
type fixed string

func (f fixed) Addr(string, int) (string, error) { return string(f), nil }

// BenchmarkAppHostRequest: one request with a valid cookie through app-auth's handler on a real server to
// a real upstream, keep-alive, against the same request sent to the upstream directly.
func BenchmarkAppHostRequest(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "a notebook page") }))
	defer up.Close()
	h := appauth.NewHandler(appauth.Decider{Provider: "k8s", AppsDomain: domain, Sessions: sessions}, nil,
		fixed(strings.TrimPrefix(up.URL, "http://")), fn.NewLogger(io.Discard, "app-auth", "error"))
	srv := httptest.NewServer(h)
	defer srv.Close()
	host := appdomain.AppHost("7", 0, domain)
	c := sessions.Cookie(host)
	for _, tc := range []struct{ name, url string }{{"direct", up.URL}, {"app-auth", srv.URL}} {
		b.Run(tc.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, tc.url+"/lab", nil)
					req.Host = host
					req.AddCookie(c)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}
