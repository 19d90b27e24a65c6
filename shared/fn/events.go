package fn

import (
	"context"
	"errors"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"go.opentelemetry.io/otel/codes"
)

// EventHandler handles one CloudEvent. A nil error acknowledges it: 202, or 200 with the reply event when
// there is one (Knative sends a reply on to the Broker). An *Error with a 4xx status rejects it for good;
// anything else asks the sender (the Knative Broker) to retry.
type EventHandler func(ctx context.Context, e event.Event) (*event.Event, error)

// EventAuth says who sent an event and whether they may send it (shared/eventauth implements it with
// Knative's sender identity: a ServiceAccount token for this receiver's audience).
type EventAuth interface {
	// Sender verifies the request's Authorization header and returns the sender's identity; an error
	// means the request is not authenticated.
	Sender(ctx context.Context, authorization string) (string, error)
	// Allowed says whether sender may send events of type typ; typ "" asks whether it may send any.
	Allowed(sender, typ string) bool
}

// EventPath is where CloudEvents are received: the root of the function's URL, where a Trigger's
// subscriber delivers by default. Core's paths never take events, so an event cannot slip past the Core
// token check by arriving on a public route.
const EventPath = "/"

// EventMaxBody bounds an event's request (envelope and data): a job state event is about 0.4 KB (a
// JobUpdate with its state, a status sentence of at most a few hundred bytes, ids and the CloudEvents
// attributes), so 64 KiB is over a hundred times that and still refuses a flood early.
const EventMaxBody = 64 << 10

// dispatchEvents sends CloudEvents POSTed to EventPath, in binary or structured mode, to s.Events and
// everything else to next. The sender is authenticated and checked against the allow-list before the body
// is read; without s.EventAuth no event is accepted at all.
func (s *Server) dispatchEvents(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Events == nil || r.Method != http.MethodPost || r.URL.Path != EventPath {
			next.ServeHTTP(w, r)
			return
		}
		sender, refused := s.eventSender(r)
		if refused != nil {
			if refused.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", "Bearer") // RFC 6750: the credential this path takes
			}
			WriteError(w, r, refused)
			return
		}
		if !limitBodyTo(w, r, EventMaxBody) {
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
		if !s.EventAuth.Allowed(sender, ev.Type()) {
			WriteError(w, r, forbiddenSender(sender, ev.Type()))
			return
		}
		ctx, span := s.startEvent(r.Context(), ev)
		defer span.End()
		Log(ctx).Debug("event received", "event_id", ev.ID(), "event_type", ev.Type(), "event_source", ev.Source(), "sender", sender)
		reply, err := s.Events(ctx, *ev)
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
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

// eventSender authenticates the sender of an event request from its headers alone: 401 without a valid
// token, 403 for a sender allowed no event (or, in binary mode, not this type).
func (s *Server) eventSender(r *http.Request) (string, *Error) {
	if s.EventAuth == nil {
		return "", Errorf(http.StatusUnauthorized, "UNAUTHENTICATED", "This function accepts no events: it has no event sender policy.")
	}
	sender, err := s.EventAuth.Sender(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		return "", Wrap(err, http.StatusUnauthorized, "UNAUTHENTICATED", "The event's sender is not authenticated: send a ServiceAccount token for this function's audience.")
	}
	if !s.EventAuth.Allowed(sender, "") {
		return "", forbiddenSender(sender, "")
	}
	if typ := r.Header.Get("Ce-Type"); typ != "" && !s.EventAuth.Allowed(sender, typ) {
		return "", forbiddenSender(sender, typ)
	}
	return sender, nil
}

func forbiddenSender(sender, typ string) *Error {
	if typ == "" {
		return Errorf(http.StatusForbidden, "FORBIDDEN", "%s may not send events to this function.", sender)
	}
	return Errorf(http.StatusForbidden, "FORBIDDEN", "%s may not send events of type %q to this function.", sender, typ)
}

// DecodeErrorOf turns a failure to read an event or body into 413 (too large) or 400.
func DecodeErrorOf(err error) *Error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return tooLarge(tooBig.Limit)
	}
	return Wrap(err, http.StatusBadRequest, "INVALID_EVENT", "The CloudEvent could not be read: "+err.Error())
}
