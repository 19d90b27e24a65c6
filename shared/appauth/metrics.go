package appauth

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/metrics"
)

// Routes of app-auth's request metrics. A client chooses hosts and paths freely, so the label is what the
// decision made of the request, never the request's own words.
const (
	routeRefused   = "refused"   // the decision refused it (400/401/403/431)
	routeAuthorize = "authorize" // the authorize-app path
	routeApp       = "app"       // passed on to the application (or no application there)
	routeWebSocket = "app-websocket"
)

// Metrics records app-auth's requests and its open application WebSockets; nil records nothing.
type Metrics struct {
	HTTP     *metrics.HTTP
	Sessions *metrics.Sessions
}

// NewMetrics registers app-auth's families on r; with r nil (METRICS_ADDR unset) it returns nil.
func NewMetrics(r *metrics.Registry) *Metrics {
	if r == nil {
		return nil
	}
	return &Metrics{HTTP: metrics.NewHTTP(r), Sessions: metrics.NewSessions(r)}
}

// observe serves one request through serve, which returns its route, and records it. A tunnel's answer
// (101) is written on the hijacked connection, so a hijack counts as 101; its session is open until the
// client's side of the tunnel closes.
func (m *Metrics) observe(w http.ResponseWriter, r *http.Request, serve func(w http.ResponseWriter) string) {
	if m == nil {
		serve(w)
		return
	}
	began := time.Now()
	sw := &fn.StatusWriter{ResponseWriter: w, WrapConn: func(c net.Conn) net.Conn {
		return &sessionConn{Conn: c, closed: m.Sessions.Open("app")}
	}}
	route := serve(sw)
	if route == "" {
		return // a probe
	}
	status := sw.Status()
	switch {
	case sw.Hijacked() && status == 0:
		status = http.StatusSwitchingProtocols
	case status == 0:
		status = http.StatusOK
	}
	m.HTTP.Observe(route, r.Method, status, time.Since(began))
}

// sessionConn ends its session when the connection is closed, once.
type sessionConn struct {
	net.Conn
	once   sync.Once
	closed func()
}

func (c *sessionConn) Close() error {
	c.once.Do(c.closed)
	return c.Conn.Close()
}
