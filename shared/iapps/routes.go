package iapps

import (
	"context"
	"net/http"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ucloud-im/knative-im/shared/fn"
)

// Op is one of the four configuration operations.
type Op string

// The operations, as they appear at the end of Core's paths.
const (
	OpRetrieve Op = "retrieve"
	OpUpdate   Op = "update"
	OpReset    Op = "reset"
	OpRestart  Op = "restart"
)

// EventTypePrefix starts the CloudEvent types of the operations: <prefix><op>, e.g.
// com.github.ucloud-im.iapp.update. The application is the event's "iapp" extension attribute and the
// data is the same JSON body Core sends.
const EventTypePrefix = "com.github.ucloud-im.iapp."

// EventAppExtension names the application in an operation's CloudEvent.
const EventAppExtension = "iapp"

// Routes serves Core's calls for ops: POST /ucloud/{provider}/iapps/{app}/{op}.
func (s *Service) Routes(ops ...Op) http.Handler {
	mux := http.NewServeMux()
	for _, op := range ops {
		mux.Handle("POST /ucloud/{provider}/iapps/{app}/"+string(op), s.route(op))
	}
	return mux
}

type empty struct{}

func (s *Service) route(op Op) http.Handler {
	var h http.Handler
	switch op {
	case OpRetrieve:
		h = fn.Handle(func(ctx context.Context, r *http.Request, req RetrieveRequest) (Retrieved, error) {
			return s.Retrieve(ctx, r.PathValue("app"), req)
		})
	case OpUpdate:
		h = fn.Handle(func(ctx context.Context, r *http.Request, req UpdateRequest) (empty, error) {
			return empty{}, s.Update(ctx, r.PathValue("app"), req)
		})
	case OpReset:
		h = fn.Handle(func(ctx context.Context, r *http.Request, req ResetRequest) (empty, error) {
			return empty{}, s.Reset(ctx, r.PathValue("app"), req)
		})
	case OpRestart:
		h = fn.Handle(func(ctx context.Context, r *http.Request, req RestartRequest) (empty, error) {
			return empty{}, s.Restart(ctx, r.PathValue("app"), req)
		})
	default:
		panic("iapps: unknown operation " + op)
	}
	return fn.ForProvider(s.Provider, h)
}

// Events handles the operations' CloudEvents for ops. A retrieve is answered with a reply event of type
// <prefix>retrieved carrying {etag, config}.
func (s *Service) Events(ops ...Op) fn.EventHandler {
	allowed := map[Op]bool{}
	for _, op := range ops {
		allowed[op] = true
	}
	return func(ctx context.Context, e event.Event) (*event.Event, error) {
		op := Op(strings.TrimPrefix(e.Type(), EventTypePrefix))
		if !strings.HasPrefix(e.Type(), EventTypePrefix) || !allowed[op] {
			return nil, fn.Errorf(http.StatusBadRequest, "UNKNOWN_EVENT_TYPE", "This function does not handle events of type %q.", e.Type())
		}
		app, _ := e.Extensions()[EventAppExtension].(string)
		if app == "" {
			return nil, fn.Errorf(http.StatusBadRequest, "BAD_EVENT", "The event has no %q extension naming the application.", EventAppExtension)
		}
		switch op {
		case OpRetrieve:
			var req RetrieveRequest
			if err := fn.DecodeJSONBytes(e.Data(), &req); err != nil {
				return nil, err
			}
			got, err := s.Retrieve(ctx, app, req)
			if err != nil {
				return nil, err
			}
			reply := event.New()
			reply.SetID(e.ID() + "-reply")
			reply.SetSource("/ucloud-im/config-retrieve")
			reply.SetType(EventTypePrefix + "retrieved")
			reply.SetExtension(EventAppExtension, app)
			if err := reply.SetData(event.ApplicationJSON, got); err != nil {
				return nil, err
			}
			return &reply, nil
		case OpUpdate:
			var req UpdateRequest
			if err := fn.DecodeJSONBytes(e.Data(), &req); err != nil {
				return nil, err
			}
			return nil, s.Update(ctx, app, req)
		case OpReset:
			var req ResetRequest
			if err := fn.DecodeJSONBytes(e.Data(), &req); err != nil {
				return nil, err
			}
			return nil, s.Reset(ctx, app, req)
		default:
			var req RestartRequest
			if err := fn.DecodeJSONBytes(e.Data(), &req); err != nil {
				return nil, err
			}
			return nil, s.Restart(ctx, app, req)
		}
	}
}
