package fn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/tracing"
)

// tracedServer is a function with one Core route and an event handler, tracing into an in-memory
// exporter; handled records the trace id each handler saw in its context.
func tracedServer(t *testing.T) (*httptest.Server, *tracetest.InMemoryExporter, *bytes.Buffer, *[]string) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	var logs bytes.Buffer
	var handled []string
	routes := http.NewServeMux()
	routes.Handle("POST /ucloud/k8s/echo", fn.Handle(func(ctx context.Context, r *http.Request, req echoReq) (echoReq, error) {
		handled = append(handled, tracing.TraceID(ctx))
		fn.Log(ctx).Info("echoing")
		return req, nil
	}))
	s := &fn.Server{Name: "test", Routes: routes, EventAuth: testSenders{}, Tracing: tp,
		Logger: fn.NewLogger(&logs, "test-fn", "info"),
		Events: func(ctx context.Context, e event.Event) (*event.Event, error) {
			handled = append(handled, tracing.TraceID(ctx))
			fn.Log(ctx).Info("handling")
			return nil, nil
		}}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv, exp, &logs, &handled
}

const (
	coreTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	coreSpanID  = "00f067aa0ba902b7"
	coreTrace   = "00-" + coreTraceID + "-" + coreSpanID + "-01"
	eventTrace  = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
)

// logTraceIDs is the trace_id of every log line, checking each line has it once.
func logTraceIDs(t *testing.T, logs *bytes.Buffer) []string {
	t.Helper()
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if n := strings.Count(line, `"trace_id"`); n != 1 {
			t.Fatalf("log line with %d trace_id keys: %s", n, line)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m["trace_id"].(string))
	}
	return ids
}

// A Core call is served in a server span that continues Core's traceparent; the handler and every log line
// of the request carry that trace id. A missing, malformed or forged traceparent never fails the request:
// it starts a new trace, which the logs then carry.
func TestEachRequestIsASpanUnderCoresTraceParent(t *testing.T) {
	tests := []struct {
		name, traceparent string
		continues         bool
	}{
		{"Core's traceparent", coreTrace, true},
		{"none", "", false},
		{"garbage", "hello", false},
		{"all-zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"unknown version ff", "ff-" + coreTraceID + "-" + coreSpanID + "-01", false},
		{"over-long", coreTrace + strings.Repeat("-aa", 3000), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, exp, logs, handled := tracedServer(t)
			h := map[string]string{}
			if tc.traceparent != "" {
				h["Traceparent"] = tc.traceparent
			}
			resp, raw := post(t, srv.URL+"/ucloud/k8s/echo", "application/json", strings.NewReader(`{"items":[]}`), h)
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, raw)
			}
			spans := exp.GetSpans()
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1", len(spans))
			}
			s := spans[0]
			tid := s.SpanContext.TraceID().String()
			if s.Name != "POST /ucloud/k8s/echo" || s.SpanKind != trace.SpanKindServer {
				t.Fatalf("span %q kind %v", s.Name, s.SpanKind)
			}
			if tc.continues != (tid == coreTraceID && s.Parent.SpanID().String() == coreSpanID && s.Parent.IsRemote()) {
				t.Fatalf("trace %s parent %v; continues Core's trace: want %v", tid, s.Parent, tc.continues)
			}
			if !tc.continues && s.Parent.IsValid() {
				t.Fatalf("a new trace has the parent %v", s.Parent)
			}
			if len(*handled) != 1 || (*handled)[0] != tid {
				t.Fatalf("the handler saw trace %v, the span is %s", *handled, tid)
			}
			for _, id := range logTraceIDs(t, logs) {
				if id != tid {
					t.Fatalf("log line with trace_id %s, the span is %s:\n%s", id, tid, logs)
				}
			}
		})
	}
}

// An event is processed in a consumer span whose parent is the trace context the event carries (the
// CloudEvents distributed-tracing extension), linked to the delivery's request span; the handler and the
// logs carry the event's trace. A malformed extension is ignored: the event is still accepted and
// processed under the request's trace.
func TestEventsContinueTheTraceTheyCarry(t *testing.T) {
	binary := func(traceparent string) (string, string, map[string]string) {
		h := withMonitor(map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "ev-1", "Ce-Source": "/test", "Ce-Type": "job.state.changed",
			"Traceparent": coreTrace})
		if traceparent != "" {
			h["Ce-Traceparent"] = traceparent
		}
		return "application/json", `{"state":"RUNNING"}`, h
	}
	structured := func(traceparent string) (string, string, map[string]string) {
		ev := cloudevents.NewEvent()
		ev.SetID("ev-2")
		ev.SetSource("/test")
		ev.SetType("job.state.changed")
		ev.SetExtension("traceparent", traceparent)
		_ = ev.SetData(cloudevents.ApplicationJSON, map[string]string{"state": "RUNNING"})
		raw, _ := json.Marshal(ev)
		return "application/cloudevents+json", string(raw), withMonitor(map[string]string{"Traceparent": coreTrace})
	}
	tests := []struct {
		name      string
		req       func(string) (string, string, map[string]string)
		extension string
		wantTrace string // the consumer span's trace
	}{
		{"binary, with the extension", binary, eventTrace, "0af7651916cd43dd8448eb211c80319c"},
		{"structured, with the extension", structured, eventTrace, "0af7651916cd43dd8448eb211c80319c"},
		{"binary, without", binary, "", coreTraceID},
		{"binary, forged", binary, "00-zzzz-yyyy-01", coreTraceID},
		{"structured, forged", structured, "not a traceparent", coreTraceID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, exp, logs, handled := tracedServer(t)
			ct, body, h := tc.req(tc.extension)
			resp, raw := post(t, srv.URL+"/", ct, strings.NewReader(body), h)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("%d %s", resp.StatusCode, raw)
			}
			spans := exp.GetSpans()
			if len(spans) != 2 {
				t.Fatalf("%d spans, want the event's and the request's", len(spans))
			}
			consumer, request := spans[0], spans[1]
			if consumer.SpanKind != trace.SpanKindConsumer || consumer.Name != "event job.state.changed" || request.SpanKind != trace.SpanKindServer || request.Name != "event" {
				t.Fatalf("spans %q (%v), %q (%v)", consumer.Name, consumer.SpanKind, request.Name, request.SpanKind)
			}
			if request.SpanContext.TraceID().String() != coreTraceID {
				t.Fatalf("the request span left the delivery's traceparent: %s", request.SpanContext.TraceID())
			}
			if got := consumer.SpanContext.TraceID().String(); got != tc.wantTrace {
				t.Fatalf("the event is processed in trace %s, want %s", got, tc.wantTrace)
			}
			if tc.wantTrace == coreTraceID {
				if consumer.Parent.SpanID() != request.SpanContext.SpanID() || len(consumer.Links) != 0 {
					t.Fatalf("without a valid extension the event is a child of the request: parent %v links %v", consumer.Parent, consumer.Links)
				}
			} else if len(consumer.Links) != 1 || consumer.Links[0].SpanContext.SpanID() != request.SpanContext.SpanID() {
				t.Fatalf("the event span is not linked to the delivery: %v", consumer.Links)
			}
			if len(*handled) != 1 || (*handled)[0] != tc.wantTrace {
				t.Fatalf("the handler saw %v", *handled)
			}
			for _, id := range logTraceIDs(t, logs) {
				if id != tc.wantTrace {
					t.Fatalf("log line with trace_id %s, want %s:\n%s", id, tc.wantTrace, logs)
				}
			}
		})
	}
}

// Probes are not traced: the kubelet's health checks every few seconds would drown the traces.
func TestHealthChecksMakeNoSpans(t *testing.T) {
	srv, exp, _, _ := tracedServer(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans for health checks", n)
	}
}
