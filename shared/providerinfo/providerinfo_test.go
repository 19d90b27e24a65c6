package providerinfo_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/providerinfo"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// The answers themselves are checked against core2's types in test/conformance; here: what is refused.
func TestRefusals(t *testing.T) {
	// Registered as job-control registers them, on the provider API's path table, less job-control's own.
	mux := http.NewServeMux()
	hs := providerinfo.Handlers("k8s")
	for _, c := range appdomain.Calls() {
		if h, ok := hs[c.Path]; ok {
			mux.Handle(c.Method+" /ucloud/"+c.Path, h)
		}
	}
	host := &fn.Server{Name: "test", Routes: mux, Logger: fn.NewLogger(io.Discard, "test", "info")}
	srv := httptest.NewServer(host.Handler())
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"another provider's manifest", "GET", "/ucloud/other/integration/retrieveManifest", "", 404, "UNKNOWN_PROVIDER"},
		{"another provider's products", "GET", "/ucloud/other/licenses/retrieveProducts", "", 404, "UNKNOWN_PROVIDER"},
		{"init without a body", "POST", "/ucloud/k8s/integration/init", "", 400, "BAD_REQUEST"},
		{"init with a malformed body", "POST", "/ucloud/k8s/integration/init", `{"username":`, 400, "BAD_REQUEST"},
		{"init with a body over the limit", "POST", "/ucloud/k8s/integration/init", `{"username":"` + strings.Repeat("a", providerinfo.NoBodyMax) + `"}`, 413, "BODY_TOO_LARGE"},
		{"a kind that is not polled", "GET", "/ucloud/k8s/shares/retrieveProducts", "", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, raw, tc.status)
			}
			if tc.code == "" {
				return
			}
			var e ucloud.Error
			if err := json.Unmarshal(raw, &e); err != nil || e.ErrorCode != tc.code || e.Why == "" || e.StatusCode != tc.status {
				t.Fatalf("error body %s, want errorCode %s", raw, tc.code)
			}
		})
	}
}
