package iapps

import (
	"context"
	"net/http"

	"github.com/ucloud-im/knative-im/shared/appdomain"
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

// MaxBody bounds a configuration call's body. core2's are 79 bytes (retrieve, restart), 99 (reset) and
// 347 (an update with one device and two folders). The largest valid configuration (Syncthing: 100
// devices and 100 folders with paths of up to 1,024 bytes) is about 130 KB as core2 encodes it, so
// 512 KiB takes it with room for escaped characters and refuses anything near the job calls' megabytes.
const MaxBody = 512 << 10

// Routes serves Core's calls for ops, each the call of the provider API's path table (appdomain.Calls)
// that the op's function serves: POST /ucloud/{provider}/iapps/{app}/{op}.
func (s *Service) Routes(ops ...Op) http.Handler {
	mux := http.NewServeMux()
	for _, op := range ops {
		hs := map[string]http.Handler{"{provider}/iapps/{app}/" + string(op): s.route(op)}
		if op == OpUpdate {
			hs[terminalCall] = s.terminal()
		}
		appdomain.Serve(mux, op.Function(), hs)
	}
	return mux
}

// terminalCall is openTerminalInFolder's entry in the path table, served by config-update.
const terminalCall = "{provider}/jobs/openTerminalInFolder"

func (s *Service) terminal() http.Handler {
	if s.Terminal != nil {
		return s.Terminal
	}
	return fn.MaxBody(TerminalCallMaxBody, fn.ForProvider(s.Provider, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fn.WriteError(w, r, fn.Errorf(http.StatusBadRequest, "TERMINAL_NOT_SUPPORTED", "Terminals in a folder are not available from this provider."))
	})))
}

// Function is the function that serves op (config-retrieve, ...).
func (op Op) Function() string { return "config-" + string(op) }

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
	return fn.MaxBody(MaxBody, fn.ForProvider(s.Provider, h))
}
