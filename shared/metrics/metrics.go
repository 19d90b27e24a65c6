// Package metrics is the project's one way to expose Prometheus metrics: a registry per process, served on
// a listener of its own (METRICS_ADDR) that neither Core's routes nor the ingress reach, and the metric
// families each part of the IM records (requests, Core calls, the monitor, the outbox, the retrieve cache,
// open WebSocket sessions). Each family set is made by the function that has that work, so a function
// exports only what it does.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric of the IM (client-go's work-queue metrics keep their usual names).
const Namespace = "ucloud_im"

// Path is where the metrics listener answers.
const Path = "/metrics"

// Env is where a process serves its metrics: host:port of a listener apart from the function's own port,
// so Knative's route (which forwards only the serving port) and the ingress never expose it. Empty: no
// listener and nothing recorded (fn.Main makes no registry). The Knative Services set 0.0.0.0:9464.
type Env struct {
	MetricsAddr string `envconfig:"METRICS_ADDR"`
}

// Registry holds one process's metrics.
type Registry struct {
	reg *prometheus.Registry
}

// New makes a registry with the Go runtime and process collectors, tagged with the function's name
// through ucloud_im_function_info.
func New(function string) *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	info := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "function_info",
		Help: "Always 1; names the function this process runs.", ConstLabels: prometheus.Labels{"function": function}})
	info.Set(1)
	reg.MustRegister(info)
	return &Registry{reg: reg}
}

// Prometheus is the underlying registry (to register a collector of one's own, or gather in a test).
func (r *Registry) Prometheus() *prometheus.Registry { return r.reg }

// Handler serves the registry in Prometheus' text (or OpenMetrics) format.
func (r *Registry) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError}))
	return mux
}

// Listen opens the metrics listener at addr.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s (METRICS_ADDR): %w", addr, err)
	}
	return ln, nil
}

// Serve answers scrapes on ln until ctx ends; it closes ln.
func (r *Registry) Serve(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving metrics", "addr", ln.Addr().String(), "path", Path)
	select {
	case err := <-errc:
		return fmt.Errorf("metrics: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: shutdown: %w", err)
	}
	return nil
}

// durations are the histogram buckets of request and call latencies: 1 ms to 30 s.
var durations = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
