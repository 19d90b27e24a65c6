package tracing_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ucloud-im/knative-im/shared/tracing"
	"github.com/ucloud-im/knative-im/test/otlptest"
)

func TestEnabledOnlyWithAnEndpoint(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"nothing set", nil, false},
		{"the endpoint", map[string]string{tracing.EnvEndpoint: "http://collector:4318"}, true},
		{"the traces endpoint", map[string]string{tracing.EnvTracesEndpoint: "http://collector:4318/v1/traces"}, true},
		{"an exporter but no endpoint", map[string]string{tracing.EnvTracesExporter: "otlp"}, false},
		{"exporter none", map[string]string{tracing.EnvEndpoint: "http://c:4318", tracing.EnvTracesExporter: "none"}, false},
		{"SDK disabled", map[string]string{tracing.EnvEndpoint: "http://c:4318", tracing.EnvSDKDisabled: "true"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tracing.Enabled(func(k string) string { return tc.env[k] }); got != tc.want {
				t.Fatalf("Enabled = %v, want %v", got, tc.want)
			}
		})
	}
}

// startSpan is a span of the global provider under Core's trace, as a function's handler would start it.
func startSpan(t *testing.T, traceparent string) trace.Span {
	t.Helper()
	ctx := tracing.WithTraceParent(context.Background(), traceparent)
	_, span := otel.Tracer("test").Start(ctx, "work")
	return span
}

const coreTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// Without an endpoint Setup installs nothing: the span records nothing, yet it keeps Core's trace (the
// traceparent passes on); with one, the spans reach the OTLP endpoint by the time shutdown returns,
// named for the function and under Core's trace.
func TestSetupExportsOnlyWithAnEndpoint(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	recv := otlptest.Start(t)
	t.Run("off", func(t *testing.T) {
		stop, err := tracing.Setup(context.Background(), "job-create", log)
		if err != nil {
			t.Fatal(err)
		}
		span := startSpan(t, coreTrace)
		if span.IsRecording() || span.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Fatalf("off: recording %v, trace %s", span.IsRecording(), span.SpanContext().TraceID())
		}
		span.End()
		if err := stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := recv.Spans(); len(got) != 0 {
			t.Fatalf("off, yet exported %v", got)
		}
	})
	t.Run("on", func(t *testing.T) {
		t.Setenv(tracing.EnvEndpoint, recv.URL)
		t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "600000") // nothing leaves before shutdown flushes it
		t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
		stop, err := tracing.Setup(context.Background(), "job-create", log)
		if err != nil {
			t.Fatal(err)
		}
		span := startSpan(t, coreTrace)
		span.End()
		time.Sleep(50 * time.Millisecond)
		if got := recv.Spans(); len(got) != 0 {
			t.Fatalf("exported before shutdown (the batch delay is 10 minutes): %v", got)
		}
		if err := stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := recv.Spans()
		if len(got) != 1 || got[0].Service != "job-create" || got[0].Name != "work" || got[0].TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || got[0].ParentSpanID != "00f067aa0ba902b7" {
			t.Fatalf("received %+v, want the one span of job-create under Core's trace", got)
		}
	})
	t.Run("a protocol the functions do not speak", func(t *testing.T) {
		t.Setenv(tracing.EnvEndpoint, recv.URL)
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
		if _, err := tracing.Setup(context.Background(), "job-create", log); err == nil {
			t.Fatal("grpc accepted, but the functions export only http/protobuf")
		}
	})
}

// A traceparent from a pod's annotation, an event or a header that is malformed (or forged to look like
// one) is ignored: no parent, never an error. A valid one round-trips through the annotation.
func TestTraceParentsThatAreNotValidAreIgnored(t *testing.T) {
	for _, tp := range []string{
		"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero span id
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff is invalid
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",    // no flags
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" + string(make([]byte, 4096)),
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX-Injected: 1",
	} {
		ctx := tracing.FromAnnotations(context.Background(), map[string]string{tracing.AnnotationTraceParent: tp})
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			t.Errorf("%q gave the span context %v", tp, sc)
		}
		h := http.Header{"Traceparent": {tp}}
		if sc := trace.SpanContextFromContext(tracing.Extract(context.Background(), h)); sc.IsValid() {
			t.Errorf("header %q gave the span context %v", tp, sc)
		}
	}
	annotations := map[string]string{}
	tracing.Annotate(tracing.WithTraceParent(context.Background(), coreTrace), annotations)
	if annotations[tracing.AnnotationTraceParent] != coreTrace {
		t.Fatalf("annotations %v", annotations)
	}
	none := map[string]string{}
	tracing.Annotate(context.Background(), none)
	if len(none) != 0 {
		t.Fatalf("a context without a trace wrote %v", none)
	}
}
