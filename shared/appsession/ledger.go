package appsession

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ucloud-im/knative-im/shared/store"
)

// TokenLedger remembers which tokens have been used.
type TokenLedger interface {
	// Use records nonce and says whether this was its first use.
	Use(ctx context.Context, nonce string, expires time.Time) (bool, error)
}

// PostgresLedger keeps used tokens in PostgreSQL, shared by every instance of the app-auth function.
type PostgresLedger struct{ Pool *pgxpool.Pool }

// Use implements TokenLedger; it also drops rows an hour past their token's expiry.
func (l PostgresLedger) Use(ctx context.Context, nonce string, expires time.Time) (bool, error) {
	tag, err := l.Pool.Exec(ctx, `WITH gone AS (DELETE FROM app_token_used WHERE expires_at < now() - interval '1 hour')
		INSERT INTO app_token_used (nonce, expires_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING`, nonce, expires)
	if err != nil {
		return false, store.Classify(err)
	}
	return tag.RowsAffected() == 1, nil
}
