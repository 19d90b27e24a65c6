package fn_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/metrics"
	"github.com/ucloud-im/knative-im/test/envtest"
	"github.com/ucloud-im/knative-im/test/scrape"
)

// TestRequestsAreCountedOnTheMetricsListenerOnly: every answered request is counted by its route pattern
// (never the raw path a client picks), method and status; the health checks are not; the metrics are served
// on METRICS_ADDR's listener and not on the function's port, which is all Knative's route reaches.
func TestRequestsAreCountedOnTheMetricsListenerOnly(t *testing.T) {
	routes := http.NewServeMux()
	routes.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "teapot" {
			fn.WriteError(w, r, fn.Errorf(http.StatusTeapot, "TEAPOT", "No."))
			return
		}
		fn.WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", envtest.FreePort(t))
	srv := &fn.Server{Name: "t", Routes: routes, Metrics: metrics.New("t"),
		Config: fn.Config{ShutdownTimeout: 5 * time.Second}}
	srv.Config.MetricsAddr = metricsAddr
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + ln.Addr().String()
	scrapeURL := "http://" + metricsAddr + metrics.Path
	var before scrape.Samples
	for deadline := time.Now().Add(10 * time.Second); ; {
		if before, err = scrape.Get(scrapeURL); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, path := range []string{"/things/a", "/things/b", "/things/teapot", "/healthz", "/readyz", "/no/such/path", "/metrics"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if path == "/metrics" && resp.StatusCode != http.StatusNotFound {
			t.Errorf("the function's port answers /metrics with %d, want 404: metrics must not be on the routed port", resp.StatusCode)
		}
	}
	// A client's made-up methods do not each become a series.
	for _, m := range []string{"BREW", "WHEN", "X-Y"} {
		req, _ := http.NewRequest(m, base+"/things/a", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	after, err := scrape.Get(scrapeURL)
	if err != nil {
		t.Fatal(err)
	}
	want := scrape.Samples{
		`ucloud_im_http_requests_total{code="200",method="GET",route="GET /things/{id}"}`:      2,
		`ucloud_im_http_requests_total{code="418",method="GET",route="GET /things/{id}"}`:      1,
		`ucloud_im_http_requests_total{code="404",method="GET",route="unmatched"}`:             2,
		`ucloud_im_http_requests_total{code="405",method="other",route="unmatched"}`:           3,
		`ucloud_im_http_request_duration_seconds_count{method="other",route="unmatched"}`:      3,
		`ucloud_im_http_request_duration_seconds_count{method="GET",route="GET /things/{id}"}`: 3,
		`ucloud_im_http_request_duration_seconds_count{method="GET",route="unmatched"}`:        2,
	}
	got := scrape.Delta(before, after, "ucloud_im_http_requests_total", "ucloud_im_http_request_duration_seconds_count")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request metrics moved by (-want +got):\n%s", diff)
	}
	if after[`ucloud_im_function_info{function="t"}`] != 1 {
		t.Errorf("ucloud_im_function_info{function=\"t\"} missing from the scrape")
	}
}
