package metrics

import "github.com/prometheus/client_golang/prometheus"

// Cache is the retrieve cache of the configuration functions: hits, misses and invalidations (by reason:
// "change", a notification for one key; "lost", the LISTEN connection dropped and the whole cache with it).
type Cache struct {
	hits, misses  prometheus.Counter
	invalidations *prometheus.CounterVec
}

// NewCache registers the cache families.
func NewCache(r *Registry) *Cache {
	if r == nil {
		return nil
	}
	c := &Cache{
		hits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "retrieve_cache", Name: "hits_total",
			Help: "Retrieves answered from the cache."}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "retrieve_cache", Name: "misses_total",
			Help: "Retrieves the cache could not answer (absent, or the cache not trusted)."}),
		invalidations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "retrieve_cache", Name: "invalidations_total",
			Help: "Cache invalidations, by reason (change: one key changed; all: every key, as a notification asked; lost: the whole cache, its LISTEN connection lost)."}, []string{"reason"}),
	}
	r.reg.MustRegister(c.hits, c.misses, c.invalidations)
	return c
}

// Hit, Miss and Invalidated record one event each; a nil Cache records nothing.
func (c *Cache) Hit() {
	if c != nil {
		c.hits.Inc()
	}
}

// Miss records a retrieve the cache could not answer.
func (c *Cache) Miss() {
	if c != nil {
		c.misses.Inc()
	}
}

// Invalidated records an invalidation for reason.
func (c *Cache) Invalidated(reason string) {
	if c != nil {
		c.invalidations.WithLabelValues(reason).Inc()
	}
}
