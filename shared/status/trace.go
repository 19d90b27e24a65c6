package status

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ucloud-im/knative-im/shared/tracing"
)

const tracerName = "github.com/ucloud-im/knative-im/shared/status"

// startDelivery starts the span of one call to Core with rows of the outbox, whose stored traceparents
// are tps. One call carries one traceparent, so the span is the child of the first row's trace (a batch
// of one job's update, the common case, continues that job's trace to Core) and links to every row's
// trace, so each job's trace still finds the call that delivered it. A row without a trace adds nothing.
func startDelivery(ctx context.Context, tps []string) (context.Context, trace.Span) {
	var links []trace.Link
	parent := ctx
	for _, tp := range tps {
		rctx := tracing.WithTraceParent(ctx, tp)
		sc := trace.SpanContextFromContext(rctx)
		if !sc.IsRemote() {
			continue
		}
		if parent == ctx {
			parent = rctx
		}
		links = append(links, trace.Link{SpanContext: sc})
	}
	return tracing.Tracer(tracerName).Start(parent, "deliver job updates", trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int("ucloud.outbox.rows", len(tps))))
}
