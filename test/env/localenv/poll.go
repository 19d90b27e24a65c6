package localenv

import (
	"context"
	"fmt"
	"time"
)

// pollUntil retries check every 100 ms until it succeeds or ctx ends.
func pollUntil(ctx context.Context, check func(context.Context) error) error {
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
