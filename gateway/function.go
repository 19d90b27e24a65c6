package gateway

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/store"
)

// KeyEnv is the gateway's signing key, needed by whoever issues tokens (job-control) or checks them.
type KeyEnv struct {
	KeyFile string `envconfig:"UCLOUD_GATEWAY_KEY_FILE"`
	Key     string `envconfig:"UCLOUD_GATEWAY_KEY"`
}

// AuthEnv is the configuration of the app-auth function.
type AuthEnv struct {
	DatabaseURL string `envconfig:"DATABASE_URL" required:"true"`
	ProviderID  string `envconfig:"UCLOUD_PROVIDER_ID" required:"true"`
	AppsDomain  string `envconfig:"UCLOUD_APPS_DOMAIN" required:"true"`
	KeyEnv
}

// NewAuth builds the app-auth handler from the environment.
func NewAuth(ctx context.Context) (*Auth, *store.Store, error) {
	var env AuthEnv
	if err := fn.LoadEnv(&env); err != nil {
		return nil, nil, err
	}
	key, err := LoadKey(env.KeyFile, env.Key)
	if err != nil {
		return nil, nil, err
	}
	db, err := store.Open(ctx, env.DatabaseURL)
	if err != nil {
		return nil, nil, fmt.Errorf("database: %w", err)
	}
	return &Auth{Provider: env.ProviderID, AppsDomain: env.AppsDomain, Sessions: Sessions{Key: key},
		Ledger: PostgresLedger{Pool: db.Pool}}, db, nil
}

// AuthMain runs the app-auth function. Browsers call it, not Core: it has no Core token check.
func AuthMain(name string) {
	fn.Main(name, func(ctx context.Context, cfg fn.Config, log *slog.Logger) (*fn.Server, error) {
		a, db, err := NewAuth(ctx)
		if err != nil {
			return nil, err
		}
		var ret store.RetentionEnv
		if err := fn.LoadEnv(&ret); err != nil {
			return nil, err
		}
		if err := ret.Validate(); err != nil {
			return nil, err
		}
		sweep := store.Retention{Table: "app_token_used", Keep: ret.Retention, Sweep: PostgresLedger{Pool: db.Pool}.Sweep, Log: log}
		return &fn.Server{Routes: a.Routes(), Checks: []fn.Check{{Name: "database", Func: db.Ping}}, Background: []func(context.Context){sweep.Run}}, nil
	})
}
