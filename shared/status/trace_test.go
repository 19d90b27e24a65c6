package status_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ucloud-im/knative-im/shared/eventauth"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/status"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// tracedReporter is a status-report instance whose Core calls go through a header log.
func (r *rig) tracedReporter() (*status.Reporter, string, *fakecore.HeaderLog) {
	sent := r.core.RecordHeaders(r.t)
	client, err := ucloud.NewClient(ucloud.ClientOptions{BaseURL: sent.URL, RefreshToken: func() (string, error) { return r.core.RefreshToken(), nil },
		BackoffBase: time.Millisecond, MaxAttempts: 2})
	if err != nil {
		r.t.Fatal(err)
	}
	rep := status.NewReporter(r.db.Pool, client, fn.NewLogger(io.Discard, "status-report", "info"))
	auth := env.EventVerifier(r.t, r.monitor.Policy(status.EventType), eventauth.Options{})
	host := &fn.Server{Events: rep.Handle, EventAuth: auth, Config: fn.Config{MaxBodyBytes: 1 << 20}, Logger: fn.NewLogger(io.Discard, "status-report", "info")}
	srv := httptest.NewServer(host.Handler())
	r.t.Cleanup(srv.Close)
	return rep, srv.URL, sent
}

func traceOf(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 {
		return ""
	}
	return parts[1]
}

func tp(trace string) string { return "00-" + trace + "-00f067aa0ba902b7-01" }

// The trace an event carries is stored with its outbox row and continued by the call that delivers it:
// Core's update carries a traceparent in the first row's trace (a call carries one; the others are linked
// on the delivery span). When Core refuses a batch, each update is sent alone, each in its own trace. An
// event with a malformed trace context is stored and delivered like any other.
func TestTheUpdateToCoreContinuesTheEventsTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	r := newRig(t)
	rep, url, sent := r.tracedReporter()
	ctx := context.Background()
	traces := map[string]string{"1": "11111111111111111111111111111111", "2": "22222222222222222222222222222222", "4": "44444444444444444444444444444444", "5": "55555555555555555555555555555555"}
	send := func(jobID, traceparent string) {
		t.Helper()
		ext := map[string]string{"Ce-Jobid": jobID, "Ce-Seq": "1", "Ce-Id": "ev-" + jobID, "Ce-Traceparent": traceparent}
		if code := r.sendRaw(url, ext, fmt.Sprintf(`{"state":"RUNNING","timestamp":%d}`, time.Now().UnixMilli())); code != http.StatusAccepted {
			t.Fatalf("event of job %s: %d", jobID, code)
		}
	}
	send("1", tp(traces["1"]))
	send("2", tp(traces["2"]))
	send("3", "00-forged-forged-01")
	for job, want := range map[string]string{"1": traces["1"], "2": traces["2"]} {
		var stored string
		if err := r.owner.QueryRow(ctx, "SELECT traceparent FROM outbox WHERE job_id = $1", job).Scan(&stored); err != nil || traceOf(stored) != want {
			t.Fatalf("job %s stored traceparent %q (%v), want one in trace %s", job, stored, err, want)
		}
	}
	if _, err := rep.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	calls := sent.Sent("/api/jobs/control/update")
	if len(calls) != 1 || traceOf(calls[0].Get("Traceparent")) != traces["1"] {
		t.Fatalf("Core's update calls %v, want one in job 1's trace", calls)
	}
	if got := fmt.Sprint(states(r.core, "3")); got != "[RUNNING]" {
		t.Fatalf("the event with a forged trace context: Core got %s", got)
	}
	var delivery *tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == "deliver job updates" {
			delivery = &s
		}
	}
	if delivery == nil || delivery.SpanContext.TraceID().String() != traces["1"] || len(delivery.Links) != 3 ||
		delivery.Links[1].SpanContext.TraceID().String() != traces["2"] {
		t.Fatalf("delivery span %+v", delivery)
	}

	// Core refuses the batch and job 4's update alone: each is then sent in its own trace.
	send("4", tp(traces["4"]))
	send("5", tp(traces["5"]))
	r.core.Fail("/api/jobs/control/update", http.StatusBadRequest, 2)
	if _, err := rep.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range sent.Sent("/api/jobs/control/update")[1:] {
		got = append(got, traceOf(h.Get("Traceparent")))
	}
	if want := []string{traces["4"], traces["4"], traces["5"]}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("update calls in traces %v, want %v (the batch, then each alone)", got, want)
	}
}

// With tracing off (OpenTelemetry's no-op provider, what a function runs without an OTLP endpoint) the
// trace context still passes through: Core's update carries the event's traceparent unchanged.
func TestTracingOffStillPassesTheTraceToCore(t *testing.T) {
	otel.SetTracerProvider(noop.NewTracerProvider())
	r := newRig(t)
	rep, url, sent := r.tracedReporter()
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ext := map[string]string{"Ce-Jobid": "7", "Ce-Seq": "1", "Ce-Id": "ev-7", "Ce-Traceparent": traceparent}
	if code := r.sendRaw(url, ext, fmt.Sprintf(`{"state":"RUNNING","timestamp":%d}`, time.Now().UnixMilli())); code != http.StatusAccepted {
		t.Fatalf("event: %d", code)
	}
	if _, err := rep.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	calls := sent.Sent("/api/jobs/control/update")
	if len(calls) != 1 || calls[0].Get("Traceparent") != traceparent {
		t.Fatalf("Core's update calls %v, want one with the event's traceparent", calls)
	}
}
