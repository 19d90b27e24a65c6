package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a call to Core.
const (
	OutcomeOK          = "ok"          // 2xx
	OutcomeRefused     = "refused"     // 4xx: Core said no; not retried
	OutcomeUnavailable = "unavailable" // 5xx or unreachable after every attempt
)

// Core is the client side: every call to UCloud/Core, by call (jobs.control.update...) and outcome, with
// its latency including retries. Attempts counts each HTTP attempt, so retries show.
type Core struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	attempts *prometheus.CounterVec
}

// NewCore registers the Core call families.
func NewCore(r *Registry) *Core {
	if r == nil {
		return nil
	}
	c := &Core{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "core", Name: "calls_total",
			Help: "Calls to UCloud/Core, by call and outcome (ok, refused, unavailable)."}, []string{"call", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "core", Name: "call_duration_seconds",
			Help: "Time a call to UCloud/Core took, retries included, by call.", Buckets: durations}, []string{"call"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "core", Name: "attempts_total",
			Help: "HTTP attempts at calls to UCloud/Core, by call and status code (0: no answer)."}, []string{"call", "code"}),
	}
	r.reg.MustRegister(c.calls, c.duration, c.attempts)
	return c
}

// ObserveCall records one finished call.
func (c *Core) ObserveCall(call, outcome string, d time.Duration) {
	if c == nil {
		return
	}
	c.calls.WithLabelValues(call, outcome).Inc()
	c.duration.WithLabelValues(call).Observe(d.Seconds())
}

// ObserveAttempt records one HTTP attempt and the status Core answered (0 when none).
func (c *Core) ObserveAttempt(call string, code int) {
	if c == nil {
		return
	}
	c.attempts.WithLabelValues(call, codeLabel(code)).Inc()
}

func codeLabel(code int) string {
	if code <= 0 {
		return "0"
	}
	return strconv.Itoa(code)
}
