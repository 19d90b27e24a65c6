package iapps

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ucloud-im/knative-im/shared/coreauth"
	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/isolation"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/metrics"
	"github.com/ucloud-im/knative-im/shared/shellsession"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Env is the configuration of the configuration functions (names from the design's contract).
type Env struct {
	store.DatabaseEnv
	fn.ProviderEnv
	ucloud.CoreEnv
	coreauth.PublicKeyEnv
	kube.ClusterEnv
	// RetrieveCacheBytes bounds config-retrieve's cache (least recently used out).
	RetrieveCacheBytes int64 `envconfig:"RETRIEVE_CACHE_BYTES" default:"33554432"`
	AppEnv
	// PublicEnv is where browsers open the integrated terminal's shell (config-update serves
	// openTerminalInFolder; without UCLOUD_IM_PUBLIC_URL it is refused).
	shellsession.PublicEnv
}

// AppEnv is the applications' own configuration (shared with the monitor, which rebuilds their pods).
type AppEnv struct {
	IdleEnv
	SyncthingImage string `envconfig:"SYNCTHING_IMAGE"`
	TerminalImage  string `envconfig:"TERMINAL_IMAGE"`
	// Isolation describes the cluster for the applications' NetworkPolicies.
	isolation.Env
}

// IdleEnv is the integrated terminal's idle timeout: the monitor stops a terminal idle for longer, and
// job-streams tells its shells the session has expired.
type IdleEnv struct {
	TerminalIdle time.Duration `envconfig:"TERMINAL_IDLE_TIMEOUT" default:"15m"`
}

// BuiltinApps are the integrated applications this IM serves.
func BuiltinApps(env AppEnv) *Registry {
	return NewRegistry(Syncthing{Image: env.SyncthingImage, Isolation: env.Env},
		Terminal{Image: env.TerminalImage, IdleTimeout: env.TerminalIdle, Isolation: env.Env})
}

// Main runs one configuration function serving op over HTTP, to Core only (Core never sends CloudEvents,
// so these functions take none).
func Main(name string, op Op) {
	fn.Main(name, func(ctx context.Context, cfg fn.Config, log *slog.Logger) (*fn.Server, error) {
		return NewMeasuredServer(ctx, op, log, cfg.Metrics)
	})
}

// NewServer wires the function for op from the environment: it needs Core only to register (update, reset)
// and Kubernetes only to touch pods (update, reset, restart).
func NewServer(ctx context.Context, op Op, log *slog.Logger) (*fn.Server, error) {
	return NewMeasuredServer(ctx, op, log, nil)
}

// NewMeasuredServer is Build recording the Core calls and the retrieve cache in reg (nil: nothing recorded).
func NewMeasuredServer(ctx context.Context, op Op, log *slog.Logger, reg *metrics.Registry) (*fn.Server, error) {
	var env Env
	if err := fn.LoadEnv(&env); err != nil {
		return nil, err
	}
	key, err := env.LoadCorePublicKey()
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, env.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	svc := &Service{Provider: env.ProviderID, Registry: BuiltinApps(env.AppEnv), Store: &ConfigStore{Pool: db.Pool}, Namespace: env.JobsNamespace}
	checks := []fn.Check{{Name: "database", Func: db.Ping}}
	var background []func(context.Context)
	if op == OpRetrieve {
		svc.Cache = NewCache(log, env.RetrieveCacheBytes)
		svc.Cache.Metrics = metrics.NewCache(reg)
		background = append(background, func(ctx context.Context) { svc.Cache.Run(ctx, env.DatabaseURL) })
	}
	if op == OpUpdate || op == OpReset {
		if !env.CoreConfigured() {
			return nil, fmt.Errorf("configuration: UCLOUD_CORE_URL and UCLOUD_REFRESH_TOKEN_FILE are required by %s", op)
		}
		core, err := env.CoreClientMeasured(metrics.NewCore(reg))
		if err != nil {
			return nil, err
		}
		svc.Core = core
		if op == OpUpdate {
			svc.Access = &drives.Access{Store: &drives.Store{Pool: db.Pool}, Core: core}
		}
	}
	if op != OpRetrieve {
		cs, err := kube.NewClientset(env.Kubeconfig)
		if err != nil {
			return nil, err
		}
		svc.Kube = cs
		checks = append(checks, fn.Check{Name: "kubernetes", Func: kube.NamespaceReady(cs, env.JobsNamespace)})
	}
	if op == OpUpdate && env.PublicURL != "" {
		// openTerminalInFolder: the same store, access check and registration as iapps/update, plus the
		// terminal's lease and a shell session.
		o := &TerminalOpener{Service: svc, Leases: Leases{Pool: db.Pool}, ShellURL: shellsession.WebSocketURL(env.PublicURL),
			Sessions: &shellsession.Store{Pool: db.Pool, TTL: env.ShellSessionTTL}}
		svc.Terminal = o.Handler()
	}
	return &fn.Server{
		Routes:     svc.Routes(op),
		Auth:       coreauth.NewVerifier(key, 30*time.Second),
		Checks:     checks,
		Background: background,
	}, nil
}
