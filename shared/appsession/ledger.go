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

// Use implements TokenLedger. Old rows are removed by Sweep, in the background.
func (l PostgresLedger) Use(ctx context.Context, nonce string, expires time.Time) (bool, error) {
	tag, err := l.Pool.Exec(ctx, `INSERT INTO app_token_used (nonce, expires_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING`, nonce, expires)
	if err != nil {
		return false, store.Classify(err)
	}
	return tag.RowsAffected() == 1, nil
}

// Sweep is app-auth's retention: it deletes used tokens whose expiry is before cutoff. A token is refused
// once expired whether or not its row exists, so any cutoff in the past is safe; the rows kept until then
// say which links were used and when.
func (l PostgresLedger) Sweep(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		tag, err := l.Pool.Exec(ctx, `DELETE FROM app_token_used WHERE nonce IN (
			SELECT nonce FROM app_token_used WHERE expires_at < $1 LIMIT $2)`, cutoff, store.SweepBatch)
		if err != nil {
			return total, store.Classify(err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < store.SweepBatch {
			return total, nil
		}
	}
}
