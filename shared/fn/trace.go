package fn

import (
	"context"
	"net/http"
	"strconv"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/extensions"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ucloud-im/knative-im/shared/tracing"
)

const tracerName = "github.com/ucloud-im/knative-im/shared/fn"

func (s *Server) tracer() trace.Tracer {
	return tracing.Provider(s.Tracing).Tracer(tracerName)
}

// startRequest starts the request's server span, a child of the caller's traceparent (Core's, or the
// Broker's for an event) when it sent a valid one; a missing or malformed one starts a new trace. Its
// name is the route (never the raw path, which the client chooses).
func (s *Server) startRequest(r *http.Request) (context.Context, trace.Span) {
	ctx := tracing.Extract(r.Context(), r.Header)
	ctx, span := s.tracer().Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() { // off, the route is not looked up at all
		span.SetName(s.routeOf(r))
		span.SetAttributes(attribute.String("http.request.method", r.Method))
	}
	return ctx, span
}

// endRequest records the answer's status on the span and ends it; a 5xx is an error of this function.
func endRequest(span trace.Span, status int) {
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, strconv.Itoa(status))
		}
	}
	span.End()
}

// startEvent starts the span that processes a CloudEvent. Its parent is the trace context the event
// carries (the CloudEvents distributed-tracing extension, set by the producer and kept by the Broker),
// with a link to the delivery's request span; an event without a valid one is processed under the
// request's span. The request's log lines take the event's trace id.
func (s *Server) startEvent(ctx context.Context, ev *event.Event) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.String("cloudevents.event_id", ev.ID()), attribute.String("cloudevents.event_type", ev.Type()),
		attribute.String("cloudevents.event_source", ev.Source()))}
	parent := ctx
	if dt, ok := extensions.GetDistributedTracingExtension(*ev); ok {
		if pctx := tracing.WithTraceParent(ctx, dt.TraceParent); trace.SpanContextFromContext(pctx).IsRemote() {
			parent = pctx
			opts = append(opts, trace.WithLinks(trace.LinkFromContext(ctx)))
		}
	}
	ctx, span := s.tracer().Start(parent, "event "+ev.Type(), opts...)
	if rl, ok := ctx.Value(logKey{}).(*requestLog); ok {
		rl.setTrace(ctx)
	}
	return ctx, span
}
