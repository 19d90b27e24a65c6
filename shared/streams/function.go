package streams

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ucloud-im/knative-im/shared/coreauth"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/metrics"
	"github.com/ucloud-im/knative-im/shared/shellsession"
	"github.com/ucloud-im/knative-im/shared/store"
)

// Env is the configuration of the streams function.
type Env struct {
	fn.ProviderEnv
	coreauth.PublicKeyEnv
	kube.ClusterEnv
	store.DatabaseEnv
	store.RetentionEnv
	// LogTailLines is how much of each rank's log a follow starts with.
	LogTailLines int64 `envconfig:"LOG_TAIL_LINES" default:"1000"`
	// KeepAlive is how often an idle follow socket gets the original's {"ping":"pong"}.
	KeepAlive time.Duration `envconfig:"STREAM_KEEP_ALIVE" default:"30s"`
	// IdleEnv is the integrated terminal's idle timeout, as the monitor applies it.
	iapps.IdleEnv
}

// Main runs the streams function.
func Main(name string) {
	fn.Main(name, func(ctx context.Context, cfg fn.Config, log *slog.Logger) (*fn.Server, error) {
		var env Env
		if err := fn.LoadEnv(&env); err != nil {
			return nil, err
		}
		key, err := env.LoadCorePublicKey()
		if err != nil {
			return nil, err
		}
		if err := env.RetentionEnv.Validate(); err != nil {
			return nil, err
		}
		cs, err := kube.NewClientset(env.Kubeconfig)
		if err != nil {
			return nil, err
		}
		rc, err := kube.ClientConfig(env.Kubeconfig)
		if err != nil {
			return nil, err
		}
		db, err := store.Open(ctx, env.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
		sessions := &shellsession.Store{Pool: db.Pool}
		open := metrics.NewSessions(cfg.Metrics)
		shell := &ShellSocket{Sessions: sessions, Kube: cs, Config: rc, Namespace: env.JobsNamespace, Metrics: open,
			Leases: iapps.Leases{Pool: db.Pool}, TerminalIdle: env.TerminalIdle}
		follow := &FollowSocket{Provider: env.ProviderID, Verifier: coreauth.NewVerifier(key, 30*time.Second), KeepAlive: env.KeepAlive, Metrics: open,
			Follower: &Follower{Kube: cs, Namespace: env.JobsNamespace, TailLines: env.LogTailLines, EndGrace: 2 * time.Second, Retry: time.Second}}
		// No server-wide Core check (Server.Auth): the follow checks Core's token itself before the
		// upgrade, and the browser's shell socket carries no Core token at all.
		return &fn.Server{
			Routes: Routes(env.ProviderID, follow, shell),
			Checks: []fn.Check{{Name: "kubernetes", Func: kube.NamespaceReady(cs, env.JobsNamespace)}, {Name: "database", Func: db.Ping}},
			// Sessions are kept a RETENTION past their expiry (used or not), then removed.
			Background: []func(ctx context.Context){store.Retention{Table: "shell_session", Keep: env.Retention, Sweep: sessions.Sweep, Log: log}.Run},
		}, nil
	})
}
