package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HTTP is the server side: every request a function answers, by route (the ServeMux pattern, "event" for
// CloudEvents, "unmatched" otherwise, so a client cannot grow the label set), method and status code.
type HTTP struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTP registers the request families.
func NewHTTP(r *Registry) *HTTP {
	if r == nil {
		return nil
	}
	h := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "http", Name: "requests_total",
			Help: "Requests answered, by route, method and status code."}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help: "Time from the request's headers to the end of the handler, by route and method.", Buckets: durations}, []string{"route", "method"}),
	}
	r.reg.MustRegister(h.requests, h.duration)
	return h
}

// Observe records one answered request.
func (h *HTTP) Observe(route, method string, code int, d time.Duration) {
	if h == nil {
		return
	}
	method = knownMethod(method)
	h.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	h.duration.WithLabelValues(route, method).Observe(d.Seconds())
}

// knownMethod keeps the method label bounded: a client may send any token as a method.
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}
