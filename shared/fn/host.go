// Package fn hosts one function the way a Knative container is expected to run: it listens on $PORT,
// answers /healthz and /readyz, logs JSON, limits request bodies, checks Core's token on Core's calls,
// receives CloudEvents on the same port from the senders its EventAuth allows, answers every error in
// UCloud's shape, and drains in-flight requests on SIGTERM.
package fn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ucloud-im/knative-im/shared/coreauth"
	"go.opentelemetry.io/otel/trace"

	"github.com/ucloud-im/knative-im/shared/metrics"
	"github.com/ucloud-im/knative-im/shared/tracing"
)

// Check is a readiness check of one dependency (database, apiserver, Core key...).
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// Server is one function. Routes serve Core's calls (each must carry a valid Core token when Auth is set);
// Events, when set, receives CloudEvents POSTed to "/" (where a Knative Trigger delivers them) from the
// senders EventAuth allows (none when it is nil).
type Server struct {
	Name      string
	Config    Config
	Logger    *slog.Logger
	Routes    http.Handler
	Events    EventHandler
	EventAuth EventAuth
	Auth      *coreauth.Verifier
	Checks    []Check
	// Background work of the function (a drainer, a cache listener, the monitor's leader loop): each runs
	// with a context that ends when shutdown begins, and Run waits for it (within the shutdown timeout)
	// after the in-flight requests, so it can finish cleanly (release a lease, say).
	Background []func(ctx context.Context)
	// Metrics, when set, records every request (by route, method and status) and is served on
	// Config.Metrics.Addr (METRICS_ADDR), a listener apart from the function's port. Main sets it.
	Metrics *metrics.Registry
	// Tracing is the tracer provider of the request and event spans (nil: the global one, which Main
	// installs from the OTEL_* variables; see shared/tracing).
	Tracing trace.TracerProvider

	draining atomic.Bool
	httpOnce sync.Once
	http     *metrics.HTTP
}

// Handler is the complete HTTP handler: health endpoints, then body limit, logging and recovery around
// events and routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	var app http.Handler = http.NotFoundHandler()
	if s.Routes != nil {
		app = s.Routes
	}
	if s.Auth != nil {
		app = requireCore(s.Auth, app)
	}
	app = s.dispatchEvents(app)
	mux.Handle("/", s.limitBody(app))
	s.httpOnce.Do(func() {
		if s.Metrics != nil {
			s.http = metrics.NewHTTP(s.Metrics)
		}
	})
	return s.observe(mux)
}

// routeOf names a request's route for the metrics: the Routes' ServeMux pattern that serves it, "event"
// for a CloudEvent to "/", or "unmatched"; never the raw path, which a client chooses.
func (s *Server) routeOf(r *http.Request) string {
	if s.Events != nil && r.URL.Path == EventPath && r.Method == http.MethodPost {
		return "event"
	}
	if m, ok := s.Routes.(interface {
		Handler(*http.Request) (http.Handler, string)
	}); ok {
		if _, pattern := m.Handler(r); pattern != "" {
			return pattern
		}
	}
	return "unmatched"
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		WriteError(w, r, Errorf(http.StatusServiceUnavailable, "SHUTTING_DOWN", "The function is shutting down."))
		return
	}
	failed := map[string]string{}
	for _, c := range s.Checks {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		if err := c.Func(ctx); err != nil {
			failed[c.Name] = err.Error()
		}
		cancel()
	}
	if len(failed) > 0 {
		Log(r.Context()).Warn("not ready", "failed", failed)
		WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"why": "A dependency of the function is not available.", "errorCode": "NOT_READY", "statusCode": 503, "detailedCode": 0, "failed": failed})
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// requireCore refuses Core's calls that do not carry a valid Core token.
func requireCore(v *coreauth.Verifier, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := v.VerifyHeader(r.Header.Get("Authorization")); err != nil {
			WriteError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody caps what a handler can read of a body at Config.MaxBodyBytes, the limit of a route that
// declares none; a route declares its own with MaxBody, and the event path has EventMaxBody. The cap
// takes hold at the first Read, so a declared Content-Length over the limit is refused (413, through
// DecodeJSON) before any of it is read.
func (s *Server) limitBody(next http.Handler) http.Handler {
	max := s.Config.MaxBodyBytes
	if max <= 0 {
		max = 1 << 20
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := &bodyLimit{w: w, r: r, orig: r.Body, limit: max}
		r = r.WithContext(context.WithValue(r.Context(), bodyLimitKey{}, b))
		b.r = r
		r.Body = b
		next.ServeHTTP(w, r)
	})
}

// observe gives each request an id and a logger, recovers panics into a 500, and logs one line per request.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		probe := r.URL.Path == "/healthz" || r.URL.Path == "/readyz"
		ctx := r.Context()
		span := trace.SpanFromContext(ctx)
		if !probe {
			ctx, span = s.startRequest(r)
		}
		ctx, rl := withRequestLog(ctx, s.logger().With("request_id", id))
		rl.setTrace(ctx)
		r = r.WithContext(ctx)
		sw := &StatusWriter{ResponseWriter: w}
		began := time.Now()
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				rl.get().Error("handler panicked", "panic", fmt.Sprint(p))
				if sw.Status() == 0 {
					WriteError(sw, r, errors.New("panic"))
				}
			}
			if probe {
				return
			}
			status := sw.Status()
			if status == 0 {
				status = http.StatusOK
			}
			endRequest(span, status)
			if s.http != nil {
				s.http.Observe(s.routeOf(r), r.Method, status, time.Since(began))
			}
			rl.get().Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.Status(), "duration_ms", time.Since(began).Milliseconds())
		}()
		next.ServeHTTP(sw, r)
	})
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Run serves until ctx ends or the process gets SIGTERM/SIGINT, then stops taking new requests, lets
// in-flight ones finish within Config.ShutdownTimeout and returns nil (or the reason it could not).
func (s *Server) Run(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	addr := net.JoinHostPort(s.Config.ListenHost, strconv.Itoa(s.Config.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return s.serve(ctx, ln)
}

// Serve is Run on a listener the caller opened (tests); it closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	return s.serve(ctx, ln)
}

// orDefault is d when v is unset: a Server built without LoadEnv still gets timeouts.
func orDefault(v, d time.Duration) time.Duration {
	if v <= 0 {
		return d
	}
	return v
}

func (s *Server) serve(ctx context.Context, ln net.Listener) error {
	// Long-lived requests (LongLived) end when shutdown begins, so the drain does not wait out a stream.
	streams, endStreams := context.WithCancel(context.Background())
	defer endStreams()
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: orDefault(s.Config.ReadHeaderTimeout, 10*time.Second),
		ReadTimeout:       orDefault(s.Config.ReadTimeout, 30*time.Second),
		WriteTimeout:      orDefault(s.Config.WriteTimeout, 2*time.Minute),
		IdleTimeout:       orDefault(s.Config.IdleTimeout, 2*time.Minute),
		BaseContext: func(net.Listener) context.Context {
			return context.WithValue(context.WithoutCancel(ctx), streamsKey{}, streams)
		},
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	var background sync.WaitGroup
	if s.Metrics != nil && s.Config.MetricsAddr != "" {
		mln, err := metrics.Listen(s.Config.MetricsAddr)
		if err != nil {
			_ = srv.Close()
			return err
		}
		// The metrics stay up through the drain (a scrape then sees it) and stop with the background work.
		background.Add(1)
		go func() {
			defer background.Done()
			if err := s.Metrics.Serve(bgCtx, mln, s.logger()); err != nil {
				s.logger().Error("metrics listener stopped", "err", err.Error())
			}
		}()
	}
	for _, f := range s.Background {
		background.Add(1)
		go func() { defer background.Done(); f(bgCtx) }()
	}
	s.logger().Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.logger().Info("shutting down: draining in-flight requests", "timeout", s.Config.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.Config.ShutdownTimeout)
	defer cancel()
	endStreams()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: in-flight requests did not finish within %s: %w", s.Config.ShutdownTimeout, err)
	}
	stopBackground()
	done := make(chan struct{})
	go func() { background.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		return fmt.Errorf("shutdown: background work did not stop within %s", s.Config.ShutdownTimeout)
	}
	s.logger().Info("stopped")
	return nil
}

// Main runs a function's main: it reads Config, builds the server with build, runs it, and exits 0 after
// a clean shutdown or 1 with a logged reason.
func Main(name string, build func(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error)) {
	var cfg Config
	if err := LoadEnv(&cfg); err != nil {
		NewLogger(os.Stderr, name, "info").Error("cannot start", "err", err.Error())
		os.Exit(1)
	}
	log := NewLogger(os.Stdout, name, cfg.LogLevel)
	slog.SetDefault(log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if cfg.MetricsAddr != "" {
		// Without a listener nothing is recorded either: every recorder is nil and records nothing.
		cfg.Metrics = metrics.New(name)
	}
	// Off without an OTLP endpoint (see shared/tracing); installed before build, so what build makes
	// (the Core client, the event sink) traces with it.
	stopTracing, err := tracing.Setup(ctx, name, log)
	if err != nil {
		log.Error("cannot start", "err", err.Error())
		os.Exit(1)
	}
	srv, err := build(ctx, cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err.Error())
		os.Exit(1)
	}
	srv.Name, srv.Config, srv.Logger, srv.Metrics = name, cfg, log, cfg.Metrics
	runErr := srv.Run(ctx)
	// After the drain: the spans of the last requests are flushed, within a bound of their own.
	fctx, cancelFlush := context.WithTimeout(context.Background(), 5*time.Second)
	if err := stopTracing(fctx); err != nil {
		log.Warn("flushing the last spans failed", "err", err.Error())
	}
	cancelFlush()
	if runErr != nil {
		log.Error("stopped with an error", "err", runErr.Error())
		os.Exit(1)
	}
}
