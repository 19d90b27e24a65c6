package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Monitor is the pod monitor's own work: whether this copy holds the lease, how long a reconcile takes,
// the job state changes it sent, by state, and the events it sent for them, by reason.
type Monitor struct {
	leader      prometheus.Gauge
	reconcile   *prometheus.HistogramVec
	transitions *prometheus.CounterVec
	events      *prometheus.CounterVec
}

// NewMonitor registers the monitor's families.
func NewMonitor(r *Registry) *Monitor {
	if r == nil {
		return nil
	}
	m := &Monitor{
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "monitor", Name: "leader",
			Help: "1 while this copy of the monitor holds the lease and watches the job pods, else 0."}),
		reconcile: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "monitor", Name: "reconcile_duration_seconds",
			Help: "Time one reconcile of a job took, by result (ok, error).", Buckets: durations}, []string{"result"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "monitor", Name: "transitions_total",
			Help: "Job state changes the monitor sent (accepted by the sink), by state."}, []string{"state"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "monitor", Name: "events_sent_total",
			Help: "Job state events the sink accepted, by reason: resend (a change whose outbox row the monitor did not write), " +
				"unheard (no status-report instance listened for the row), keep_alive (one listened; sent so that Knative keeps it up)."}, []string{"reason"}),
	}
	r.reg.MustRegister(m.leader, m.reconcile, m.transitions, m.events)
	return m
}

// SetLeader records whether this copy leads.
func (m *Monitor) SetLeader(leading bool) {
	if m == nil {
		return
	}
	v := 0.0
	if leading {
		v = 1
	}
	m.leader.Set(v)
}

// ObserveReconcile records one reconcile.
func (m *Monitor) ObserveReconcile(err error, d time.Duration) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.reconcile.WithLabelValues(result).Observe(d.Seconds())
}

// Transition records one state change sent.
func (m *Monitor) Transition(state string) {
	if m == nil {
		return
	}
	m.transitions.WithLabelValues(state).Inc()
}

// Reasons for an event (EventSent).
const (
	EventResend    = "resend"
	EventUnheard   = "unheard"
	EventKeepAlive = "keep_alive"
)

// EventSent records one event the sink accepted.
func (m *Monitor) EventSent(reason string) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(reason).Inc()
}
