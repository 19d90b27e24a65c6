package fakecore

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
)

// HeaderLog is a front door to this Core that records the headers of every request sent through it: give
// its URL as a function's UCLOUD_CORE_URL to see what the function sent besides the body (its traceparent).
type HeaderLog struct {
	URL string

	mu   sync.Mutex
	seen []SentHeaders
}

// SentHeaders are the headers of one request to Core, by method and path (without the query).
type SentHeaders struct {
	Method, Path string
	Header       http.Header
}

// RecordHeaders starts a HeaderLog in front of c on loopback, closed when the test ends.
func (c *Core) RecordHeaders(t TB) *HeaderLog {
	t.Helper()
	target, err := url.Parse(c.URL())
	if err != nil {
		t.Fatalf("fake Core URL: %v", err)
	}
	l := &HeaderLog{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	// httptest listens on 127.0.0.1.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.seen = append(l.seen, SentHeaders{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()})
		l.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	l.URL = srv.URL
	return l
}

// Sent lists the headers of the requests to path, in order.
func (l *HeaderLog) Sent(path string) []http.Header {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []http.Header
	for _, s := range l.seen {
		if s.Path == path {
			out = append(out, s.Header)
		}
	}
	return out
}
