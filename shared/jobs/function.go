package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	netclient "knative.dev/networking/pkg/client/clientset/versioned"

	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/appsession"
	"github.com/ucloud-im/knative-im/shared/coreauth"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/isolation"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/metrics"
	"github.com/ucloud-im/knative-im/shared/products"
	"github.com/ucloud-im/knative-im/shared/shellsession"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Env is the configuration of the job functions.
type Env struct {
	fn.ProviderEnv
	coreauth.PublicKeyEnv
	appdomain.DomainEnv
	kube.ClusterEnv
	CatalogFile string `envconfig:"JOB_CATALOG_FILE"`
	appdomain.IngressEnv
	// CoreEnv is job-control's calls to Core: the new allocation after extend, the end of a job terminate
	// finds without pods, and the products registered at start-up.
	ucloud.CoreEnv
	appsession.KeyEnv
	// Isolation is read by job-create, which builds the pods and their NetworkPolicy.
	isolation.Env
	// OptionalDatabaseEnv is job-control's, for the shell sessions it issues (INSERT on shell_session
	// only); without it, or without the public URL, SHELL sessions are refused.
	store.OptionalDatabaseEnv
	// PublicEnv (shellsession) is where browsers open shell sockets and how long an identifier works unused.
	shellsession.PublicEnv
}

// CreateMain runs job-create, which serves job creation.
func CreateMain() { run(appdomain.FnJobCreate, false) }

// ControlMain runs job-control, which serves every other job call and the provider-level calls.
func ControlMain() { run(appdomain.FnJobControl, true) }

// run runs a job function: job-create (control false) or job-control.
func run(name string, control bool) {
	fn.Main(name, func(ctx context.Context, cfg fn.Config, log *slog.Logger) (*fn.Server, error) {
		var env Env
		if err := fn.LoadEnv(&env); err != nil {
			return nil, err
		}
		key, err := env.LoadCorePublicKey()
		if err != nil {
			return nil, err
		}
		catalog, err := LoadCatalog(env.CatalogFile)
		if err != nil {
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
		nc, err := netclient.NewForConfig(rc)
		if err != nil {
			return nil, err
		}
		svc := &Service{Provider: env.ProviderID, Catalog: catalog, Kube: cs, AppsDomain: env.AppsDomain,
			Settings: Settings{Namespace: env.JobsNamespace, Isolation: env.Env},
			Apps:     &appdomain.Apps{Kube: cs, Net: nc, Settings: env.IngressEnv.Settings(env.ProviderID, env.DomainEnv, env.JobsNamespace)}}
		srv := &fn.Server{
			Routes: svc.CreateRoutes(),
			Auth:   coreauth.NewVerifier(key, 30*time.Second),
			Checks: []fn.Check{{Name: "kubernetes", Func: kube.NamespaceReady(cs, env.JobsNamespace)}},
		}
		if !control {
			return srv, nil
		}
		// Only job-control talks to Core and signs session tokens; job-create needs neither.
		sessionKey, err := appsession.LoadKey(env.KeyFile, env.Key)
		if err != nil {
			return nil, err
		}
		svc.Sessions = &appsession.Sessions{Key: sessionKey}
		if !env.CoreConfigured() {
			return nil, errors.New("configuration: UCLOUD_CORE_URL and UCLOUD_REFRESH_TOKEN_FILE are required by job-control")
		}
		core, err := env.CoreClientMeasured(metrics.NewCore(cfg.Metrics))
		if err != nil {
			return nil, err
		}
		svc.Core = core
		if env.DatabaseURL != "" && env.PublicURL != "" {
			db, err := store.Open(ctx, env.DatabaseURL)
			if err != nil {
				return nil, fmt.Errorf("database: %w", err)
			}
			svc.Shells = &shellsession.Store{Pool: db.Pool, TTL: env.ShellSessionTTL}
			svc.ShellURL = WebSocketURL(env.PublicURL)
			srv.Checks = append(srv.Checks, fn.Check{Name: "database", Func: db.Ping})
		}
		wanted, err := catalog.CoreProducts(env.ProviderID)
		if err != nil {
			return nil, err
		}
		for _, app := range iapps.BuiltinApps(iapps.AppEnv{}).Names() {
			wanted = append(wanted, products.IntegratedApp(env.ProviderID, app))
		}
		keeper := &products.Keeper{Core: core, Provider: env.ProviderID, Wanted: wanted, Log: log}
		srv.Routes = svc.ControlRoutes()
		srv.Checks = append(srv.Checks, fn.Check{Name: "products", Func: keeper.Ready})
		srv.Background = append(srv.Background, keeper.Run)
		return srv, nil
	})
}
