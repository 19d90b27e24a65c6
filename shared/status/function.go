package status

import (
	"context"
	"log/slog"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Env is the status-report function's configuration.
type Env struct {
	DatabaseURL      string `envconfig:"DATABASE_URL" required:"true"`
	CoreURL          string `envconfig:"UCLOUD_CORE_URL" required:"true"`
	RefreshTokenFile string `envconfig:"UCLOUD_REFRESH_TOKEN_FILE" required:"true"`
	store.RetentionEnv
}

// Main runs the status-report function: CloudEvents in, Core updates out, a background drain for what
// earlier instances left.
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
		core, err := ucloud.NewClient(ucloud.ClientOptions{BaseURL: env.CoreURL, RefreshToken: ucloud.RefreshTokenFile(env.RefreshTokenFile)})
		if err != nil {
			return nil, err
		}
		r := NewReporter(db.Pool, core, log)
		r.Wake() // drain what an earlier instance left
		return &fn.Server{Events: r.Handle, Checks: []fn.Check{{Name: "database", Func: db.Ping}}, Background: []func(context.Context){r.Run, store.Retention{
			Table: "outbox", Keep: env.Retention, Sweep: r.Sweep, Log: log}.Run}}, nil
	})
}
