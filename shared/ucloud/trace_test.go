package ucloud_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ucloud-im/knative-im/shared/tracing"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// A Core call is one client span under the caller's trace, and every attempt (the retry after a 503 too)
// carries that span as its traceparent, so Core's handling joins the trace. The token refresh the first
// call needs is a span of its own inside it.
func TestCoreCallsCarryTheirSpanAsTraceParent(t *testing.T) {
	core := fakecore.Start(t)
	sent := core.RecordHeaders(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	c, err := ucloud.NewClient(ucloud.ClientOptions{BaseURL: sent.URL, RefreshToken: func() (string, error) { return core.RefreshToken(), nil },
		BackoffBase: time.Millisecond, Tracing: tp})
	if err != nil {
		t.Fatal(err)
	}
	core.Fail("/api/jobs/control/update", http.StatusServiceUnavailable, 1)
	ctx := tracing.WithTraceParent(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	state := ucloud.StateRunning
	if err := c.UpdateJobs(ctx, []ucloud.ResourceUpdateAndID[ucloud.JobUpdate]{{ID: "1", Update: ucloud.JobUpdate{State: &state, Timestamp: 1}}}); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[0].Name != "auth.providers.refresh" || spans[1].Name != "jobs.control.update" {
		t.Fatalf("spans %v", spans)
	}
	call := spans[1]
	if call.SpanKind != trace.SpanKindClient || call.Parent.SpanID().String() != "00f067aa0ba902b7" || spans[0].Parent.SpanID() != call.SpanContext.SpanID() {
		t.Fatalf("call span kind %v parent %v; refresh parent %v", call.SpanKind, call.Parent, spans[0].Parent)
	}
	if len(call.Events) != 2 {
		t.Fatalf("attempt events %v, want the 503 and the 200", call.Events)
	}
	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + call.SpanContext.SpanID().String() + "-01"
	attempts := sent.Sent("/api/jobs/control/update")
	if len(attempts) != 2 {
		t.Fatalf("%d attempts reached Core", len(attempts))
	}
	for _, h := range attempts {
		if got := h.Get("Traceparent"); got != want {
			t.Fatalf("attempt with traceparent %q, want %q", got, want)
		}
	}
}
