package fn

import (
	"io"
	"net/http"
)

// bodyLimitKey holds, in a request's context, the *bodyLimit the host put on its body.
type bodyLimitKey struct{}

// bodyLimit is the limit of one request's body: the host's default until the route declares its own
// (MaxBody). The body is read through it only from the first Read, so the route's limit, set before the
// handler reads, is the one that applies.
type bodyLimit struct {
	w      http.ResponseWriter
	r      *http.Request
	orig   io.ReadCloser
	limit  int64
	reader io.Reader
}

func (b *bodyLimit) Read(p []byte) (int, error) {
	if b.reader == nil {
		// A declared length over the limit is refused before a byte of it is read.
		if b.r.ContentLength > b.limit {
			return 0, &http.MaxBytesError{Limit: b.limit}
		}
		b.reader = http.MaxBytesReader(b.w, b.orig, b.limit)
	}
	return b.reader.Read(p)
}

func (b *bodyLimit) Close() error { return b.orig.Close() }

// MaxBody declares next a route whose request bodies may be up to limit bytes, whatever the host's
// default (Config.MaxBodyBytes) is: a declared Content-Length over it is answered 413 in UCloud's shape
// before the body is read, and the handler cannot read more than limit bytes of a body without one
// (DecodeJSON then answers 413). Like LongLived it takes effect where next is reached, after whatever the
// route is wrapped in (the Core token check), so only an authenticated caller gets a larger limit. Each
// route states its limit from the payloads it really gets; see the README's "Body limits".
func MaxBody(limit int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if limitBodyTo(w, r, limit) {
			next.ServeHTTP(w, r)
		}
	})
}

// limitBodyTo puts limit on r's body; false when it answered 413 instead (a declared length over it).
func limitBodyTo(w http.ResponseWriter, r *http.Request, limit int64) bool {
	if r.ContentLength > limit {
		WriteError(w, r, tooLarge(limit))
		return false
	}
	if b, ok := r.Context().Value(bodyLimitKey{}).(*bodyLimit); ok && b.reader == nil {
		b.limit = limit
	} else {
		// Outside the host (or the body already being read): cap it here.
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	return true
}

func tooLarge(limit int64) *Error {
	return Errorf(http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", "The request body is larger than %d bytes.", limit)
}
