package fn

import (
	"context"
	"errors"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// EventHandler handles one CloudEvent. A nil error acknowledges it: 202, or 200 with the reply event when
// there is one (Knative sends a reply on to the Broker). An *Error with a 4xx status rejects it for good;
// anything else asks the sender (the Knative Broker) to retry.
type EventHandler func(ctx context.Context, e event.Event) (*event.Event, error)

// EventPath is where CloudEvents are received: the root of the function's URL, where a Trigger's
// subscriber delivers by default. Core's paths never take events, so an event cannot slip past the Core
// token check by arriving on a public route.
const EventPath = "/"

// dispatchEvents sends CloudEvents POSTed to EventPath, in binary or structured mode, to s.Events and
// everything else to next.
func (s *Server) dispatchEvents(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Events == nil || r.Method != http.MethodPost || r.URL.Path != EventPath {
			next.ServeHTTP(w, r)
			return
		}
		msg := cehttp.NewMessageFromHttpRequest(r)
		switch msg.ReadEncoding() {
		case binding.EncodingBinary, binding.EncodingStructured:
		case binding.EncodingBatch:
			WriteError(w, r, Errorf(http.StatusUnsupportedMediaType, "BATCH_NOT_SUPPORTED", "Batched CloudEvents are not accepted; send one event per request."))
			return
		default:
			WriteError(w, r, Errorf(http.StatusUnsupportedMediaType, "NOT_A_CLOUDEVENT", "Only CloudEvents are accepted on this path."))
			return
		}
		ev, err := binding.ToEvent(r.Context(), msg)
		if err != nil {
			WriteError(w, r, DecodeErrorOf(err))
			return
		}
		if err := ev.Validate(); err != nil {
			WriteError(w, r, Wrap(err, http.StatusBadRequest, "INVALID_EVENT", "The CloudEvent is invalid: "+err.Error()))
			return
		}
		Log(r.Context()).Debug("event received", "event_id", ev.ID(), "event_type", ev.Type(), "event_source", ev.Source())
		reply, err := s.Events(r.Context(), *ev)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		if reply == nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		if err := cehttp.WriteResponseWriter(r.Context(), binding.ToMessage(reply), http.StatusOK, w); err != nil {
			Log(r.Context()).Error("writing the reply event failed", "err", err)
		}
	})
}

// DecodeErrorOf turns a failure to read an event or body into 413 (too large) or 400.
func DecodeErrorOf(err error) *Error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return Errorf(http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", "The request body is larger than %d bytes.", tooBig.Limit)
	}
	return Wrap(err, http.StatusBadRequest, "INVALID_EVENT", "The CloudEvent could not be read: "+err.Error())
}
