package e2e

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/ucloud-im/knative-im/test/scrape"
)

// checkMakeRunMetrics: make run names every function's metrics endpoint (METRICS_<FUNCTION> in its env
// file); each answers as that function, the walkthrough's work shows in them, and the gateway (IM_URL,
// what Core reaches) serves no metrics.
func checkMakeRunMetrics(t *testing.T, env map[string]string) {
	t.Helper()
	fns, err := os.ReadDir("../../functions")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fns {
		key := "METRICS_" + strings.ToUpper(strings.ReplaceAll(f.Name(), "-", "_"))
		url := env[key]
		if url == "" {
			t.Errorf("make run's env names no %s", key)
			continue
		}
		got, err := scrape.Get(url)
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		if got[scrape.Series("ucloud_im_function_info", map[string]string{"function": f.Name()})] != 1 {
			t.Errorf("%s (%s) does not answer as %s", key, url, f.Name())
		}
	}
	if got, err := scrape.Get(env["METRICS_JOB_CREATE"]); err == nil &&
		got[`ucloud_im_http_requests_total{code="200",method="POST",route="POST /ucloud/{provider}/jobs"}`] < 1 {
		t.Errorf("job-create's metrics do not count the walkthrough's create")
	}
	resp, err := http.Get(env["IM_URL"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("the gateway serves /metrics (%d): metrics must stay off Core's address", resp.StatusCode)
	}
}
