package streams

import (
	"net/http"

	"github.com/ucloud-im/knative-im/shared/fn"
)

// Routes serves both sockets on their one path shape, GET /ucloud/{segment}/websocket: the segment
// "jobs.provider.<P>" is Core's follow (Core's token checked before the upgrade), the segment "<P>" the
// browser's shell (its session identifier checked on initialize). follow or shell may be nil (not served).
// Both are long-lived (fn.LongLived): the server's read and write timeouts are lifted once the route is
// reached, and the streams end when shutdown begins.
func Routes(provider string, follow, shell http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /ucloud/{segment}/websocket", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch seg := r.PathValue("segment"); {
		case seg == "jobs.provider."+provider && follow != nil:
			fn.LongLived(follow).ServeHTTP(w, r)
		case seg == provider && shell != nil:
			fn.LongLived(shell).ServeHTTP(w, r)
		default:
			fn.WriteError(w, r, fn.Errorf(http.StatusNotFound, "NOT_FOUND", "No such stream."))
		}
	}))
	return mux
}
