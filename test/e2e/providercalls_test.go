package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/test/conformance"
)

// checkProviderCalls makes, through the gateway of a running stack, every call core2 sends that needs no
// job (its polls, init, the Create page's requestDynamicParameters) and the job calls this IM refuses, with
// core2's own bodies: each reaches the function the path table names and is answered in JSON, never a 404.
func checkProviderCalls(t *testing.T, imURL, provider, token string) {
	t.Helper()
	ref, err := conformance.Load(conformance.Dir())
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path string, body []byte) (int, string) {
		req, _ := http.NewRequest(method, imURL+path, strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if !json.Valid(raw) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d %q is not a JSON answer", method, path, resp.StatusCode, raw)
		}
		return resp.StatusCode, string(raw)
	}
	for _, r := range appdomain.APIRoutes(provider, iapps.BuiltinApps(iapps.AppEnv{}).Names()) {
		if strings.HasSuffix(r.Path, "/websocket") {
			// The job page's sockets (job-streams): a plain GET reaches the function and is refused in JSON.
			if code, body := do(r.Method, r.Path, nil); code != http.StatusBadRequest || !strings.Contains(body, "NOT_A_WEBSOCKET") {
				t.Errorf("GET %s without an upgrade: %d %s", r.Path, code, body)
			}
			continue
		}
		if r.Method == http.MethodGet {
			if code, body := do(r.Method, r.Path, nil); code != http.StatusOK {
				t.Errorf("GET %s: %d %s", r.Path, code, body)
			}
		}
	}
	// openTerminalInFolder reaches config-update and is refused there: this call names no user (ucloud-username).
	for name, status := range map[string]int{"integration.init": 200, "jobs.requestDynamicParameters": 200, "jobs.suspend": 400, "jobs.openTerminalInFolder": 400} {
		c, err := ref.Find(name)
		if err != nil {
			t.Fatal(err)
		}
		body, err := ref.Body(c)
		if err != nil {
			t.Fatal(err)
		}
		path := strings.Replace(c.Path, "/ucloud/k8s/", "/ucloud/"+provider+"/", 1)
		if code, answer := do(c.Method, path, body); code != status {
			t.Errorf("%s: %d %s, want %d", name, code, answer, status)
		}
	}
}
