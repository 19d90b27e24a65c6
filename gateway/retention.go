package gateway

import (
	"context"
	"time"

	"github.com/ucloud-im/knative-im/shared/store"
)

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
