package metrics

import "github.com/prometheus/client_golang/prometheus"

// Sessions counts the WebSocket sessions open now, by kind (follow, shell, app).
type Sessions struct {
	open *prometheus.GaugeVec
}

// NewSessions registers the session family.
func NewSessions(r *Registry) *Sessions {
	if r == nil {
		return nil
	}
	s := &Sessions{open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "websocket", Name: "sessions_open",
		Help: "WebSocket sessions open now, by kind."}, []string{"kind"})}
	r.reg.MustRegister(s.open)
	return s
}

// Open records a session opened; call the returned func when it closes.
func (s *Sessions) Open(kind string) (closed func()) {
	if s == nil {
		return func() {}
	}
	g := s.open.WithLabelValues(kind)
	g.Inc()
	return g.Dec
}
