package status

import (
	"context"
	"log/slog"

	"github.com/ucloud-im/knative-im/shared/eventauth"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/metrics"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Env is the status-report function's configuration.
type Env struct {
	store.DatabaseEnv
	// CoreEnv is required here (checked in Main): every event ends in a call to Core.
	ucloud.CoreEnv
	// EventAudience is the audience the senders' tokens are issued for: in a cluster the job-state
	// Trigger's subscriber.audience; in make run what the monitor asks the TokenRequest API for.
	EventAudience string `envconfig:"EVENT_AUDIENCE" required:"true"`
	// EventSenders are the token subjects allowed to send job state events: in a cluster the job-state
	// Trigger's OIDC identity (the Broker delivers), in make run the monitor's ServiceAccount.
	EventSenders []string `envconfig:"EVENT_SENDERS" required:"true"`
	// ClusterEnv reaches the apiserver whose service-account issuer signs the tokens (in-cluster config
	// without KUBECONFIG); its JOBS_NAMESPACE is not used here.
	kube.ClusterEnv
	store.RetentionEnv
}

// EventPolicy is who may send what to status-report: job state events, from the configured senders only.
func (e Env) EventPolicy() eventauth.Policy {
	return eventauth.Policy{Audience: e.EventAudience, Senders: map[string][]string{EventType: e.EventSenders}}
}

// Main runs the status-report function: CloudEvents in, Core updates out, a background drain for what
// earlier instances left.
func Main(name string) {
	fn.Main(name, func(ctx context.Context, cfg fn.Config, log *slog.Logger) (*fn.Server, error) {
		var env Env
		if err := fn.LoadEnv(&env); err != nil {
			return nil, err
		}
		if err := env.RequireCore(); err != nil {
			return nil, err
		}
		if err := env.RetentionEnv.Validate(); err != nil {
			return nil, err
		}
		db, err := store.Open(ctx, env.DatabaseURL)
		if err != nil {
			return nil, err
		}
		core, err := env.CoreClientMeasured(metrics.NewCore(cfg.Metrics))
		if err != nil {
			return nil, err
		}
		kcfg, err := kube.ClientConfig(env.Kubeconfig)
		if err != nil {
			return nil, err
		}
		senders, err := eventauth.NewFromCluster(ctx, kcfg, env.EventPolicy(), eventauth.Options{})
		if err != nil {
			return nil, err
		}
		log.Info("accepting job state events", "audience", env.EventAudience, "senders", env.EventSenders)
		r := NewReporter(db.Pool, core, log)
		r.Metrics = metrics.NewOutbox(cfg.Metrics, r.Stats)
		r.Wake() // drain what an earlier instance left
		return &fn.Server{Events: r.Handle, EventAuth: RememberVerified(senders), Checks: []fn.Check{{Name: "database", Func: db.Ping}}, Background: []func(context.Context){r.Run, r.Listen, store.Retention{
			Table: "outbox", Keep: env.Retention, Sweep: r.Sweep, Log: log}.Run}}, nil
	})
}
