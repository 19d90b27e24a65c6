// Package tracing is the project's OpenTelemetry tracing: the provider every function installs from
// OpenTelemetry's standard environment variables (exporting only when an OTLP endpoint is set), and the
// W3C trace context carried where a request's trace must cross something that is not an HTTP call: a job's
// pods (an annotation) and a stored outbox row (a traceparent string).
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
)

// The standard variables that turn exporting on (either endpoint) or off whatever the endpoint says.
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
)

// Enabled says whether the environment (getenv, os.Getenv in a function) asks for spans to be exported: an
// OTLP endpoint is set, the SDK is not disabled and the traces exporter is not "none".
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv(EnvSDKDisabled)), "true") {
		return false
	}
	if exp := strings.TrimSpace(getenv(EnvTracesExporter)); exp != "" && exp != "otlp" {
		return false
	}
	return getenv(EnvEndpoint) != "" || getenv(EnvTracesEndpoint) != ""
}

// Setup installs the process's tracer provider as OpenTelemetry's global one and returns what flushes
// and stops it (call it after the drain; it is a no-op when tracing is off). Off (no endpoint), nothing
// is installed: the global provider stays OpenTelemetry's no-op one, which records nothing and costs
// nothing, yet a span started under an incoming trace context keeps that context, so Core's traceparent
// still reaches the pods, the event and the update sent back to Core. On, spans go in batches to the OTLP
// endpoint over HTTP/protobuf; the exporter reads the other standard variables itself (headers, timeout,
// compression, certificates; OTEL_BSP_* for the batches, OTEL_TRACES_SAMPLER for sampling,
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES for the resource).
func Setup(ctx context.Context, service string, log *slog.Logger) (shutdown func(context.Context) error, err error) {
	if !Enabled(os.Getenv) {
		return func(context.Context) error { return nil }, nil
	}
	if p := os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" && p != "http/protobuf" {
		return nil, fmt.Errorf("configuration: OTEL_EXPORTER_OTLP_PROTOCOL=%q is not supported; the functions export with http/protobuf", p)
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("configuration: the OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName(service)), resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("configuration: OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("exporting traces failed", "err", err.Error())
	}))
	return tp.Shutdown, nil
}

// Tracer is the named tracer of the global provider (the no-op one unless Setup installed an exporter).
func Tracer(name string) trace.Tracer { return otel.Tracer(name) }

// Provider is p, or the global provider when p is nil (what a component without its own uses).
func Provider(p trace.TracerProvider) trace.TracerProvider {
	if p != nil {
		return p
	}
	return otel.GetTracerProvider()
}

// The W3C trace context only: it is what Core, Knative and the CloudEvents extension carry. It is a value
// without state, so it is used directly rather than through OpenTelemetry's global propagator.
var w3c = propagation.TraceContext{}

// Extract is ctx with the remote span context of the request's traceparent (and tracestate) header. A
// missing, malformed or forged header is ignored: ctx comes back unchanged and the request starts a
// trace of its own.
func Extract(ctx context.Context, h http.Header) context.Context {
	return w3c.Extract(ctx, propagation.HeaderCarrier(h))
}

// Inject sets the traceparent (and tracestate) header of ctx's span context; nothing without one.
func Inject(ctx context.Context, h http.Header) {
	w3c.Inject(ctx, propagation.HeaderCarrier(h))
}

// TraceParent is the traceparent of ctx's span context, "" without a valid one.
func TraceParent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	w3c.Inject(ctx, c)
	return c["traceparent"]
}

// WithTraceParent is ctx with the remote span context tp names; a malformed tp leaves ctx unchanged.
func WithTraceParent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return w3c.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
}

// TraceID is the trace id of ctx's span context in hex, "" without a valid one (what the logs carry).
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}

// AnnotationTraceParent carries the trace of the request that created a job on the job's pods: the
// monitor's event comes from a pod change, not from that request, so the context travels with the pod.
// Only the IM writes it (job pods have no Kubernetes credentials); a malformed value is ignored.
const AnnotationTraceParent = "ucloud.dk/traceparent"

// Annotate writes ctx's span context into annotations (nothing without a valid one).
func Annotate(ctx context.Context, annotations map[string]string) {
	if tp := TraceParent(ctx); tp != "" && annotations != nil {
		annotations[AnnotationTraceParent] = tp
	}
}

// FromAnnotations is ctx with the span context the annotations carry as its remote parent, ctx unchanged
// without a valid one.
func FromAnnotations(ctx context.Context, annotations map[string]string) context.Context {
	return WithTraceParent(ctx, annotations[AnnotationTraceParent])
}
