package jobevents_test

import (
	"context"
	"testing"

	"github.com/cloudevents/sdk-go/v2/extensions"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/jobevents"
	"github.com/ucloud-im/knative-im/shared/tracing"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

const createTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func pod(traceparent string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{}}}
	if traceparent != "" {
		p.Annotations[tracing.AnnotationTraceParent] = traceparent
	}
	return p
}

// The monitor's event continues the trace job-create wrote on the pods; a pod without one, or with a
// malformed one, gives no parent (the monitor then starts a trace of its own), never an error.
func TestWithPodTraceTakesTheCreatesTrace(t *testing.T) {
	tests := []struct {
		name  string
		pods  []*corev1.Pod
		trace string
	}{
		{"no pods", nil, ""},
		{"a pod without the annotation", []*corev1.Pod{pod("")}, ""},
		{"a malformed annotation", []*corev1.Pod{pod("00-not-a-trace-01")}, ""},
		{"the create's trace", []*corev1.Pod{pod(createTrace)}, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"a malformed one, then a valid one", []*corev1.Pod{pod("garbage"), pod(createTrace)}, "4bf92f3577b34da6a3ce929d0e0e4736"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tracing.TraceID(jobevents.WithPodTrace(context.Background(), tc.pods)); got != tc.trace {
				t.Fatalf("trace %q, want %q", got, tc.trace)
			}
		})
	}
}

// Sending an event is a producer span under the pods' trace, and the event carries that span as its
// CloudEvents distributed-tracing extension, in both HTTP modes.
func TestStartSendPutsTheSpanOnTheEvent(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })

	state := ucloud.StateRunning
	e, err := jobevents.Build("77", 1, ucloud.JobUpdate{State: &state, Timestamp: 1_700_000_000_000})
	if err != nil {
		t.Fatal(err)
	}
	ctx := jobevents.WithPodTrace(context.Background(), []*corev1.Pod{pod(createTrace)})
	_, span := jobevents.StartSend(ctx, &e)
	span.End()
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].SpanKind != trace.SpanKindProducer || spans[0].Parent.SpanID().String() != "00f067aa0ba902b7" ||
		spans[0].SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("spans %+v", spans)
	}
	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + spans[0].SpanContext.SpanID().String() + "-01"
	for _, structured := range []bool{false, true} {
		got, ok := extensions.GetDistributedTracingExtension(overHTTP(t, e, structured))
		if !ok || got.TraceParent != want {
			t.Fatalf("structured %v: extension %+v, want traceparent %s", structured, got, want)
		}
	}
}

// With tracing off and no trace on the pods, the event carries no extension.
func TestStartSendWithoutATraceAddsNothing(t *testing.T) {
	state := ucloud.StateRunning
	e, _ := jobevents.Build("77", 1, ucloud.JobUpdate{State: &state, Timestamp: 1_700_000_000_000})
	_, span := jobevents.StartSend(context.Background(), &e)
	span.End()
	if _, ok := extensions.GetDistributedTracingExtension(e); ok {
		t.Fatalf("extensions %v", e.Extensions())
	}
}
