// Command local-gateway stands in for Knative's ingress on one machine (make run, tests, benchmarks): the
// provider API host by the path table, app hosts by the KIngress objects on the apiserver (which send every
// request to app-auth, FN_APP_AUTH).
// It takes the functions' addresses from FN_<NAME> variables (FN_JOB_CREATE=http://127.0.0.1:port ...),
// as make run writes them to .run/env.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kelseyhightower/envconfig"
	netclient "knative.dev/networking/pkg/client/clientset/versioned"

	"github.com/ucloud-im/knative-im/gateway/local"
	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/kube"
)

type env struct {
	fn.ListenEnv
	fn.ProviderEnv
	appdomain.DomainEnv
	kube.ClusterEnv
	// FunctionTimeout: how long a function may take to begin its answer before the gateway answers 503.
	FunctionTimeout time.Duration `envconfig:"GATEWAY_FUNCTION_TIMEOUT" default:"1m"`
}

func main() {
	log := fn.NewLogger(os.Stderr, "local-gateway", os.Getenv("LOG_LEVEL"))
	slog.SetDefault(log)
	if err := run(log); err != nil {
		log.Error("local gateway stopped", "error", err.Error())
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	var e env
	if err := envconfig.Process("", &e); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	rc, err := kube.ClientConfig(e.Kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kube.NewClientset(e.Kubeconfig)
	if err != nil {
		return err
	}
	nc, err := netclient.NewForConfig(rc)
	if err != nil {
		return err
	}
	routes := appdomain.APIRoutes(e.ProviderID, iapps.BuiltinApps(iapps.AppEnv{}).Names())
	fns := map[string]*url.URL{}
	for _, name := range append(functionsOf(routes), appdomain.FnAppAuth) {
		v := os.Getenv("FN_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil {
			return fmt.Errorf("FN_%s: %w", name, err)
		}
		fns[name] = u
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	g := &local.Gateway{Kube: cs, Net: nc, Namespace: e.JobsNamespace, API: routes, Functions: fns, Log: log,
		FunctionTimeout: e.FunctionTimeout}
	if err := g.Start(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(e.ListenHost, fmt.Sprint(e.Port)))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
	log.Info("listening", "address", ln.Addr().String(), "apps_domain", e.AppsDomain)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func functionsOf(routes []appdomain.Route) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range routes {
		if !seen[r.Function] {
			seen[r.Function] = true
			out = append(out, r.Function)
		}
	}
	return out
}
