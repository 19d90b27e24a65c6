package fn

import (
	"bufio"
	"net"
	"net/http"
)

// StatusWriter notes the status an answer starts with (0 until one is written) and keeps the writer's
// other abilities: http.ResponseController reaches deadlines and Flush through Unwrap (the reverse proxy
// flushes streamed answers), and Hijack is its own so a tunnel can be noted and its connection wrapped.
type StatusWriter struct {
	http.ResponseWriter
	// WrapConn, when set, wraps the hijacked connection (e.g. to note when the tunnel closes).
	WrapConn func(net.Conn) net.Conn
	status   int
	hijacked bool
}

// Status is the status written so far: the first WriteHeader's, 200 once a body is written, else 0.
func (w *StatusWriter) Status() int { return w.status }

// Hijacked tells whether the connection was taken over (a WebSocket tunnel), whose answer (101) is written
// on the connection and so never seen here.
func (w *StatusWriter) Hijacked() bool { return w.hijacked }

func (w *StatusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (deadlines, flushing) through the wrapper.
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *StatusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	if w.WrapConn != nil {
		c = w.WrapConn(c)
	}
	return c, rw, nil
}
