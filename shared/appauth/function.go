package appauth

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ucloud-im/knative-im/shared/appsession"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/store"
)

// AuthEnv is the configuration of the app-auth function.
type AuthEnv struct {
	DatabaseURL string `envconfig:"DATABASE_URL" required:"true"`
	ProviderID  string `envconfig:"UCLOUD_PROVIDER_ID" required:"true"`
	AppsDomain  string `envconfig:"UCLOUD_APPS_DOMAIN" required:"true"`
	appsession.KeyEnv
}

// NewAuth builds the app-auth handler from the environment.
func NewAuth(ctx context.Context) (*Auth, *store.Store, error) {
	var env AuthEnv
	if err := fn.LoadEnv(&env); err != nil {
		return nil, nil, err
	}
	key, err := appsession.LoadKey(env.KeyFile, env.Key)
	if err != nil {
		return nil, nil, err
	}
	db, err := store.Open(ctx, env.DatabaseURL)
	if err != nil {
		return nil, nil, fmt.Errorf("database: %w", err)
	}
	return &Auth{Provider: env.ProviderID, AppsDomain: env.AppsDomain, Sessions: appsession.Sessions{Key: key},
		Ledger: appsession.PostgresLedger{Pool: db.Pool}}, db, nil
}

// AuthMain runs the app-auth function. Browsers call it, not Core: it has no Core token check.
func AuthMain(name string) {
	fn.Main(name, func(ctx context.Context, cfg fn.Config, log *slog.Logger) (*fn.Server, error) {
		a, db, err := NewAuth(ctx)
		if err != nil {
			return nil, err
		}
		return &fn.Server{Routes: a.Routes(), Checks: []fn.Check{{Name: "database", Func: db.Ping}}}, nil
	})
}
