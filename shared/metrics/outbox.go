package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// OutboxStats is what the outbox holds now, read at each scrape (so every instance of status-report, and
// one that just started, reports the table's truth rather than what it alone did).
type OutboxStats struct {
	Pending int64
	// OldestPending is how long the oldest undelivered row has waited; 0 when none waits.
	OldestPending time.Duration
}

// Outbox is status-report's outbox: rows waiting for Core and the age of the oldest (read from the table
// at each scrape), and the updates delivered and rejected by this process.
type Outbox struct {
	read      func(ctx context.Context) (OutboxStats, error)
	delivered prometheus.Counter
	rejected  prometheus.Counter
	pending   *prometheus.Desc
	oldest    *prometheus.Desc
	up        *prometheus.Desc
}

// NewOutbox registers the outbox families; read is called (with a short timeout) at each scrape.
func NewOutbox(r *Registry, read func(ctx context.Context) (OutboxStats, error)) *Outbox {
	if r == nil {
		return nil
	}
	o := &Outbox{
		read: read,
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "outbox", Name: "delivered_total",
			Help: "Job updates Core accepted from this process."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "outbox", Name: "rejected_total",
			Help: "Job updates Core refused (4xx) on their own, recorded as rejected by this process."}),
		pending: prometheus.NewDesc(Namespace+"_outbox_pending_rows", "Job updates in the outbox not yet delivered to Core.", nil, nil),
		oldest: prometheus.NewDesc(Namespace+"_outbox_oldest_undelivered_age_seconds",
			"Seconds the oldest undelivered job update has waited (0 when none waits).", nil, nil),
		up: prometheus.NewDesc(Namespace+"_outbox_read_up", "1 when the outbox could be read at this scrape, else 0.", nil, nil),
	}
	r.reg.MustRegister(o.delivered, o.rejected, o)
	return o
}

// Delivered records n updates Core accepted.
func (o *Outbox) Delivered(n int) {
	if o != nil {
		o.delivered.Add(float64(n))
	}
}

// Rejected records one update Core refused.
func (o *Outbox) Rejected() {
	if o != nil {
		o.rejected.Inc()
	}
}

// Describe is part of prometheus.Collector.
func (o *Outbox) Describe(ch chan<- *prometheus.Desc) {
	ch <- o.pending
	ch <- o.oldest
	ch <- o.up
}

// Collect reads the table; when it cannot, only outbox_read_up (0) is reported, so an alert on the age
// does not see a false 0.
func (o *Outbox) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := o.read(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(o.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(o.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(o.pending, prometheus.GaugeValue, float64(s.Pending))
	ch <- prometheus.MustNewConstMetric(o.oldest, prometheus.GaugeValue, s.OldestPending.Seconds())
}
