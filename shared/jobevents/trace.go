package jobevents

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/extensions"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	corev1 "k8s.io/api/core/v1"

	"github.com/ucloud-im/knative-im/shared/tracing"
)

const tracerName = "github.com/ucloud-im/knative-im/shared/jobevents"

// WithPodTrace is ctx with the trace of the request that created the job as its remote parent: the first
// of pods whose tracing.AnnotationTraceParent is valid (job-create writes the same one on every rank). A
// job without one (made before tracing, or whose pods are gone) keeps ctx; so does a malformed value.
func WithPodTrace(ctx context.Context, pods []*corev1.Pod) context.Context {
	for _, p := range pods {
		if pctx := tracing.FromAnnotations(ctx, p.Annotations); trace.SpanContextFromContext(pctx).IsRemote() {
			return pctx
		}
	}
	return ctx
}

// StartSend starts the producer span of sending e (a child of ctx's span context) and sets e's
// CloudEvents distributed-tracing extension (traceparent, tracestate) to it, so status-report processes
// the event in the same trace. The caller ends the span once the event was accepted or given up on.
// Without a valid span context (tracing off and no trace on the pods) e gets no extension.
func StartSend(ctx context.Context, e *event.Event) (context.Context, trace.Span) {
	ctx, span := tracing.Tracer(tracerName).Start(ctx, "send "+e.Type(), trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("cloudevents.event_id", e.ID()), attribute.String("cloudevents.event_type", e.Type())))
	if tp := tracing.TraceParent(ctx); tp != "" {
		extensions.DistributedTracingExtension{TraceParent: tp, TraceState: span.SpanContext().TraceState().String()}.AddTracingAttributes(e)
	}
	return ctx, span
}
