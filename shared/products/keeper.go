package products

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Keeper registers the products when its function starts and keeps trying until Core has them.
type Keeper struct {
	Core     Core
	Provider string
	Wanted   []ucloud.ProductV2
	Log      *slog.Logger
	// MaxBackoff caps the wait between attempts while Core cannot be reached (default 30 s).
	MaxBackoff time.Duration

	mu        sync.Mutex
	permanent error
}

// Run registers, retrying with backoff while Core is unavailable, until it succeeds, meets an error
// only the operator can fix (a category whose accounting changed: kept for Ready), or ctx ends.
func (k *Keeper) Run(ctx context.Context) {
	wait, limit := time.Second, k.MaxBackoff
	if limit <= 0 {
		limit = 30 * time.Second
	}
	for {
		sent, err := Register(ctx, k.Core, k.Provider, k.Wanted)
		switch {
		case err == nil:
			k.Log.Info("products registered with Core", "categories_sent", sent, "products", len(k.Wanted))
			return
		case errors.Is(err, ErrCategoryChanged):
			k.Log.Error("products cannot be registered: the catalogue must be fixed", "err", err.Error())
			k.mu.Lock()
			k.permanent = err
			k.mu.Unlock()
			return
		case ctx.Err() != nil:
			return
		}
		k.Log.Warn("registering products with Core failed; retrying", "err", err.Error(), "retry_in", wait.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, limit)
	}
}

// Ready fails when the products can never be registered as configured. While Core is merely unreachable
// it does not: nobody calls the function then, and a cold start must not wait on Core (its calls give up
// after 5 s).
func (k *Keeper) Ready(context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.permanent
}
