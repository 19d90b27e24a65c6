package fn_test

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/test/otlptest"
)

// With OTEL_EXPORTER_OTLP_ENDPOINT set, the span of a request still in flight when SIGTERM arrives reaches
// the collector before the process exits: the drain lets the request finish, then the provider flushes.
// The batch delay is set to ten minutes, so only that flush can have sent it.
func TestSIGTERMFlushesTheLastSpans(t *testing.T) {
	recv := otlptest.Start(t)
	cmd, base, out := startSlowFunction(t, "OTEL_EXPORTER_OTLP_ENDPOINT="+recv.URL, "OTEL_BSP_SCHEDULE_DELAY=600000")
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, base+"/slow", nil)
		req.Header.Set("Traceparent", coreTrace)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // the slow request is now in flight
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, out.String())
	}
	spans := recv.Spans()
	if len(spans) != 1 || spans[0].Service != "slow" || spans[0].Name != "GET /slow" || spans[0].TraceID != coreTraceID || spans[0].ParentSpanID != coreSpanID {
		t.Fatalf("the collector got %+v, want the span of GET /slow under Core's trace\n%s", spans, out.String())
	}
}
