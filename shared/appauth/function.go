package appauth

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
	"syscall"
	"time"

	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/appsession"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/metrics"
	"github.com/ucloud-im/knative-im/shared/store"
)

// Env is the configuration of the app-auth function.
type Env struct {
	store.DatabaseEnv
	fn.ProviderEnv
	appdomain.DomainEnv
	kube.ClusterEnv
	// Upstreams is how a rank's Service is reached: "cluster" (its cluster IP) or "local" (make run: its
	// EndpointSlices, addresses on this machine only).
	Upstreams string `envconfig:"APP_UPSTREAMS" default:"cluster"`
	appsession.KeyEnv
	store.RetentionEnv
}

// Main runs the app-auth function. It has its own server rather than fn's host: on an app host every path
// (/healthz included) is the application's, bodies are the application's to limit, and WebSockets must not
// meet a write timeout. Browsers call it, not Core: there is no Core token check.
func Main(name string) {
	var cfg fn.Config
	if err := fn.LoadEnv(&cfg); err != nil {
		fn.NewLogger(os.Stderr, name, "info").Error("cannot start", "err", err.Error())
		os.Exit(1)
	}
	log := fn.NewLogger(os.Stdout, name, cfg.LogLevel)
	slog.SetDefault(log)
	if cfg.MetricsAddr != "" {
		cfg.Metrics = metrics.New(name)
	}
	if err := run(cfg, log); err != nil {
		log.Error("stopped", "err", err.Error())
		os.Exit(1)
	}
}

func run(cfg fn.Config, log *slog.Logger) error {
	var env Env
	if err := fn.LoadEnv(&env); err != nil {
		return err
	}
	if env.Upstreams != "cluster" && env.Upstreams != "local" {
		return fmt.Errorf("configuration: APP_UPSTREAMS=%q is neither cluster nor local", env.Upstreams)
	}
	if err := env.RetentionEnv.Validate(); err != nil {
		return err
	}
	key, err := appsession.LoadKey(env.KeyFile, env.Key)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	db, err := store.Open(ctx, env.DatabaseURL)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer db.Pool.Close()
	ledger := appsession.PostgresLedger{Pool: db.Pool}
	go store.Retention{Table: "app_token_used", Keep: env.Retention, Sweep: ledger.Sweep, Log: log}.Run(ctx)
	cs, err := kube.NewClientset(env.Kubeconfig)
	if err != nil {
		return err
	}
	ups := &Upstreams{Kube: cs, Namespace: env.JobsNamespace, Local: env.Upstreams == "local"}
	if err := ups.Start(ctx); err != nil {
		return err
	}
	h := NewHandler(Decider{Provider: env.ProviderID, AppsDomain: env.AppsDomain, Sessions: appsession.Sessions{Key: key}},
		ledger, ups, log)
	h.Metrics = NewMetrics(cfg.Metrics)
	h.Ready = func(ctx context.Context) error {
		if err := ups.Ready(ctx); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return db.Ping(cctx)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.ListenHost, strconv.Itoa(cfg.Port)))
	if err != nil {
		return err
	}
	if cfg.Metrics != nil && cfg.MetricsAddr != "" {
		// Its own listener, as every function's (fn's host is not used here).
		mln, err := metrics.Listen(cfg.MetricsAddr)
		if err != nil {
			return err
		}
		go func() {
			if err := cfg.Metrics.Serve(ctx, mln, log); err != nil {
				log.Error("metrics listener stopped", "err", err.Error())
			}
		}()
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	log.Info("listening", "addr", ln.Addr().String(), "jobs_namespace", env.JobsNamespace, "upstreams", env.Upstreams)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Finish in-flight requests; open WebSockets end with the process (browsers' apps reconnect).
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
