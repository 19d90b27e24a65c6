package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// RetentionEnv is the operator's retention setting, read by every function that owns a table with rows
// that stop being needed: status-report (delivered outbox rows), the monitor (final job states whose job
// has no pods left) and app-auth (used one-time tokens, counted from their expiry).
type RetentionEnv struct {
	Retention time.Duration `envconfig:"RETENTION" default:"720h"`
}

// MinRetention keeps a typo (RETENTION=30s) from deleting what was delivered a moment ago.
const MinRetention = time.Hour

// Validate refuses a retention below MinRetention.
func (e RetentionEnv) Validate() error {
	if e.Retention < MinRetention {
		return fmt.Errorf("configuration: RETENTION=%s is below the minimum of %s", e.Retention, MinRetention)
	}
	return nil
}

// Retention removes, in the background, rows older than Keep: Sweep deletes what is older than the cutoff
// it is given (in batches, so no long lock is held) and says how many rows went.
type Retention struct {
	Table string
	Keep  time.Duration
	// Every is the pause between sweeps (default 1 h); the first sweep runs at once.
	Every time.Duration
	Sweep func(ctx context.Context, cutoff time.Time) (int64, error)
	Log   *slog.Logger
}

// Run sweeps until ctx ends. A failed sweep is logged and tried again at the next tick: retention is
// housekeeping, never a reason to stop serving.
func (r Retention) Run(ctx context.Context) {
	every := r.Every
	if every <= 0 {
		every = time.Hour
	}
	for {
		n, err := r.Sweep(ctx, time.Now().Add(-r.Keep))
		switch {
		case err != nil && ctx.Err() == nil:
			r.Log.Warn("retention sweep failed; retrying later", "table", r.Table, "err", err.Error(), "retry_in", every.String())
		case n > 0:
			r.Log.Info("retention: removed old rows", "table", r.Table, "rows", n, "older_than", r.Keep.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// SweepBatch is the most rows one retention statement deletes; a sweep repeats it until fewer go.
const SweepBatch = 5000
