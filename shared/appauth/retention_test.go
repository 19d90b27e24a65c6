package appauth_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/appsession"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/test/envtest"
)

// app-auth's retention, on its own role, removes used tokens that expired longer ago than the setting and
// keeps the rest; a token used again after its row went is still refused (it has expired).
func TestRetentionRemovesOnlyLongExpiredTokens(t *testing.T) {
	db := storetest.New(t, env.Database(t))
	ledger := appsession.PostgresLedger{Pool: db.Open(t, store.FnAppAuth).Pool}
	owner := db.OwnerPool(t)
	ctx := context.Background()
	now := time.Now()
	for nonce, expires := range map[string]time.Time{"fresh": now.Add(5 * time.Minute), "recent": now.Add(-time.Hour), "old": now.Add(-5 * time.Minute)} {
		if first, err := ledger.Use(ctx, nonce, expires); err != nil || !first {
			t.Fatalf("use %s: first=%v, %v", nonce, first, err)
		}
	}
	// Aged by SQL: "old" expired 31 days ago.
	if _, err := owner.Exec(ctx, "UPDATE app_token_used SET expires_at = now() - interval '31 days' WHERE nonce = 'old'"); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go store.Retention{Table: "app_token_used", Keep: 30 * 24 * time.Hour, Sweep: ledger.Sweep, Log: fn.NewLogger(io.Discard, "app-auth", "info")}.Run(sctx)
	envtest.Eventually(t, 10*time.Second, func() error {
		var left string
		if err := owner.QueryRow(ctx, "SELECT string_agg(nonce, ' ' ORDER BY nonce) FROM app_token_used").Scan(&left); err != nil {
			return err
		}
		if left != "fresh recent" {
			return fmt.Errorf("app_token_used holds %q, want \"fresh recent\"", left)
		}
		return nil
	})
	if first, err := ledger.Use(ctx, "fresh", now.Add(5*time.Minute)); err != nil || first {
		t.Fatalf("a kept token used again: first=%v, %v", first, err)
	}
}
