package fn

import (
	"context"
	"net/http"
	"time"
)

// streamsKey holds, in a request's context, the context that ends when the server begins to shut down.
type streamsKey struct{}

// LongLived declares next a long-lived route (a stream, a WebSocket, a proxy to one): its requests are
// exempt from the server's read and write timeouts. The exemption is taken when next is reached, after
// whatever the route is wrapped in (the Core token check, say), so an unauthenticated client never gets it,
// and the header timeout still applies to every request. Idle connections between requests keep
// IdleTimeout. Its requests' context ends when the server begins to shut down (other requests' contexts do
// not: they are let finish), so a stream that follows its context lets the drain complete.
func LongLived(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if streams, ok := r.Context().Value(streamsKey{}).(context.Context); ok {
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			defer context.AfterFunc(streams, cancel)()
			r = r.WithContext(ctx)
		}
		rc := http.NewResponseController(w)
		// A zero time means no deadline. Both calls fail only for a ResponseWriter that hides its
		// connection; then the server's timeouts stay, which is the safe side.
		if err := rc.SetReadDeadline(time.Time{}); err != nil {
			Log(r.Context()).Warn("long-lived route keeps the read timeout", "err", err.Error())
		}
		if err := rc.SetWriteDeadline(time.Time{}); err != nil {
			Log(r.Context()).Warn("long-lived route keeps the write timeout", "err", err.Error())
		}
		next.ServeHTTP(w, r)
	})
}
