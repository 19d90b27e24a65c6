package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/eventauth"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/metrics"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Env is the monitor's configuration.
type Env struct {
	store.DatabaseEnv
	kube.ClusterEnv
	Sink     string        `envconfig:"K_SINK" required:"true"`
	Identity string        `envconfig:"POD_NAME"`
	Resync   time.Duration `envconfig:"MONITOR_RESYNC" default:"10s"`
	// DriveRefresh is how often every tracked drive is read again from Core (ACL changes are not pushed).
	DriveRefresh time.Duration `envconfig:"DRIVE_REFRESH" default:"30s"`
	Lease        string        `envconfig:"MONITOR_LEASE" default:"ucloud-im-monitor"`
	// The token sent with every event. In a cluster a file Knative keeps fresh (the SinkBinding's OIDC
	// token, /oidc/token); in make run, tokens asked of the TokenRequest API for a ServiceAccount
	// ("namespace/name") and audience (status-report's, which is the sink there).
	TokenFile           string `envconfig:"EVENT_TOKEN_FILE"`
	TokenServiceAccount string `envconfig:"EVENT_TOKEN_SERVICE_ACCOUNT"`
	TokenAudience       string `envconfig:"EVENT_TOKEN_AUDIENCE"`
	store.RetentionEnv
	// Core is asked which jobs it knows, so jobs it gave up on (its 5 s timeout on a create) or deleted
	// are removed; without UCLOUD_CORE_URL no job is ever removed for that reason.
	ucloud.CoreEnv
	OrphanEvery time.Duration `envconfig:"ORPHAN_SWEEP" default:"1m"`
	OrphanGrace time.Duration `envconfig:"ORPHAN_GRACE" default:"2m"`
	// UsagePeriod is how often each running job's usage is reported to Core's accounting (the original:
	// 30 s); without Core nothing is reported.
	UsagePeriod time.Duration `envconfig:"USAGE_REPORT_PERIOD" default:"30s"`
}

// tokenSource is where the monitor's event tokens come from: exactly one of the two ways.
func (e Env) tokenSource(cs kubernetes.Interface) (eventauth.TokenSource, error) {
	switch {
	case e.TokenFile != "" && e.TokenServiceAccount == "":
		return eventauth.NewFileToken(e.TokenFile)
	case e.TokenFile == "" && e.TokenServiceAccount != "":
		ns, name, ok := strings.Cut(e.TokenServiceAccount, "/")
		if !ok || ns == "" || name == "" || e.TokenAudience == "" {
			return nil, fmt.Errorf("configuration: EVENT_TOKEN_SERVICE_ACCOUNT=%q must be namespace/name, with EVENT_TOKEN_AUDIENCE set", e.TokenServiceAccount)
		}
		return &eventauth.RequestedToken{Kube: cs, Namespace: ns, ServiceAccount: name, Audience: e.TokenAudience}, nil
	}
	return nil, errors.New("configuration: set EVENT_TOKEN_FILE (in a cluster, /oidc/token from the SinkBinding) or EVENT_TOKEN_SERVICE_ACCOUNT and EVENT_TOKEN_AUDIENCE (make run), not both: every event must carry the monitor's token")
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
		db, err := store.Open(ctx, env.DatabaseURL, store.MinMaxConns(poolConns))
		if err != nil {
			return nil, err
		}
		cs, err := kube.NewClientset(env.Kubeconfig)
		if err != nil {
			return nil, err
		}
		tokens, err := env.tokenSource(cs)
		if err != nil {
			return nil, err
		}
		sink, err := NewEventSink(env.Sink, tokens)
		if err != nil {
			return nil, err
		}
		var ienv iapps.AppEnv
		if err := fn.LoadEnv(&ienv); err != nil {
			return nil, err
		}
		m := &Monitor{Kube: cs, Namespace: env.JobsNamespace, Pool: db.Pool, Registry: iapps.BuiltinApps(ienv), Sink: sink, Log: log, Resync: env.Resync, Retention: env.Retention,
			Metrics: metrics.NewMonitor(cfg.Metrics)}
		if q := metrics.NewWorkQueue(cfg.Metrics); q != nil {
			m.Queue = q // never a typed nil: client-go would call it
		}
		switch {
		case env.CoreConfigured():
			core, err := env.CoreClientMeasured(metrics.NewCore(cfg.Metrics))
			if err != nil {
				return nil, err
			}
			m.Orphans = &Orphans{Core: core, Kube: cs, Namespace: env.JobsNamespace, Grace: env.OrphanGrace, Log: log}
			m.Drives = &drives.Access{Store: &drives.Store{Pool: db.Pool}, Core: core, Stream: core}
			m.DriveRefresh = env.DriveRefresh
			m.OrphanEvery = env.OrphanEvery
			if env.UsagePeriod < time.Second {
				return nil, fmt.Errorf("configuration: USAGE_REPORT_PERIOD=%s is below 1s", env.UsagePeriod)
			}
			m.Usage = &Usage{Core: core, Every: env.UsagePeriod, Log: log}
		case env.CoreURL != "" || env.RefreshTokenFile != "":
			return nil, errors.New("configuration: UCLOUD_CORE_URL and UCLOUD_REFRESH_TOKEN_FILE go together")
		default:
			log.Warn("UCLOUD_CORE_URL is not set: jobs Core does not know (a create Core gave up on) are never removed, no usage is reported, and drives are decided on what is stored only")
			m.Drives = &drives.Access{Store: &drives.Store{Pool: db.Pool}}
		}
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
						m.Metrics.SetLeader(true)
						defer m.Metrics.SetLeader(false)
						if err := m.Run(ctx); err != nil {
							log.Error("monitor stopped", "err", err.Error())
						}
					},
					OnStoppedLeading: func() {
						m.Metrics.SetLeader(false)
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
