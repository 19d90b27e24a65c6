package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/store"
)

// Env is the monitor's configuration.
type Env struct {
	DatabaseURL   string        `envconfig:"DATABASE_URL" required:"true"`
	Sink          string        `envconfig:"K_SINK" required:"true"`
	JobsNamespace string        `envconfig:"JOBS_NAMESPACE" default:"ucloud-jobs"`
	Kubeconfig    string        `envconfig:"KUBECONFIG"`
	Identity      string        `envconfig:"POD_NAME"`
	Resync        time.Duration `envconfig:"MONITOR_RESYNC" default:"10s"`
	Lease         string        `envconfig:"MONITOR_LEASE" default:"ucloud-im-monitor"`
	store.RetentionEnv
}

// Main runs the monitor: one active copy at a time, chosen through a Kubernetes Lease in the jobs
// namespace; a second copy waits. A copy that loses the lease shuts down (and is restarted) rather than
// risk two monitors reporting.
func Main(name string) {
	fn.Main(name, func(ctx context.Context, cfg fn.Config, log *slog.Logger) (*fn.Server, error) {
		var env Env
		if err := fn.LoadEnv(&env); err != nil {
			return nil, err
		}
		if err := env.RetentionEnv.Validate(); err != nil {
			return nil, err
		}
		db, err := store.Open(ctx, env.DatabaseURL)
		if err != nil {
			return nil, err
		}
		cs, err := kube.NewClientset(env.Kubeconfig)
		if err != nil {
			return nil, err
		}
		sink, err := NewEventSink(env.Sink)
		if err != nil {
			return nil, err
		}
		var ienv iapps.HandlerEnv
		if err := fn.LoadEnv(&ienv); err != nil {
			return nil, err
		}
		m := &Monitor{Kube: cs, Namespace: env.JobsNamespace, Pool: db.Pool, Registry: iapps.Handlers(ienv), Sink: sink, Log: log, Resync: env.Resync, Retention: env.Retention}
		id := identity(env.Identity)
		lock := &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Name: env.Lease, Namespace: env.JobsNamespace},
			Client:     cs.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: id},
		}
		lead := func(ctx context.Context) {
			leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
				Lock: lock, ReleaseOnCancel: true,
				LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
				Callbacks: leaderelection.LeaderCallbacks{
					OnStartedLeading: func(ctx context.Context) {
						log.Info("leading: monitoring job pods", "identity", id, "namespace", env.JobsNamespace)
						if err := m.Run(ctx); err != nil {
							log.Error("monitor stopped", "err", err.Error())
						}
					},
					OnStoppedLeading: func() {
						if ctx.Err() != nil {
							log.Info("released the monitor lease", "identity", id)
							return
						}
						log.Warn("lost the monitor lease; shutting down", "identity", id)
						_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
					},
					OnNewLeader: func(leader string) {
						if leader != id {
							log.Info("another monitor leads; waiting", "leader", leader)
						}
					},
				},
			})
		}
		return &fn.Server{Checks: []fn.Check{{Name: "database", Func: db.Ping}}, Background: []func(context.Context){lead}}, nil
	})
}

// identity names this copy in the lease. In a cluster the host name is the pod's name: unique, and the
// same when the container restarts (so it takes its own lease back at once). Elsewhere (make run) it gets
// the process id too, so two copies on one machine never share an identity.
func identity(configured string) string {
	if configured != "" {
		return configured
	}
	host, _ := os.Hostname()
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		return host
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}
