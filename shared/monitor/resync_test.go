package monitor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"
)

// A resync pass queues every candidate: the first all at once (a monitor starting), each later one spread
// evenly over the period in resyncSlices slices, so pod events do not queue behind thousands of jobs and
// the process is not woken once per job.
func TestResyncSpreadsEachPassInSlices(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ids := make([]string, 250)
		for i := range ids {
			ids[i] = fmt.Sprint(i)
		}
		start := time.Now()
		adds := map[time.Duration][]string{} // offset from start -> jobs queued then
		q := queueFunc(func(id string) { d := time.Since(start); adds[d] = append(adds[d], id) })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			resync(ctx, q, 10*time.Second, func(context.Context) ([]string, error) { return ids, nil }, slog.New(slog.NewTextHandler(io.Discard, nil)))
		}()
		time.Sleep(20*time.Second - time.Nanosecond) // the first pass and the whole second one
		synctest.Wait()
		cancel()
		<-done

		if got := len(adds[0]); got != 250 {
			t.Fatalf("first pass queued %d jobs at once, want all 250", got)
		}
		per := map[string]int{}
		instants := 0
		for d, jobs := range adds {
			if d == 0 {
				continue
			}
			if d < 10*time.Second || d >= 20*time.Second {
				t.Fatalf("second pass queued at %s, want within its period [10s, 20s)", d)
			}
			instants++
			if len(jobs) > 3 {
				t.Fatalf("%d jobs queued at once at %s, want at most 3 (250 over 100 slices)", len(jobs), d)
			}
			for _, id := range jobs {
				per[id]++
			}
		}
		if instants != resyncSlices || len(per) != 250 {
			t.Fatalf("second pass: %d jobs in %d slices, want 250 in %d", len(per), instants, resyncSlices)
		}
	})
}

type queueFunc func(string)

func (f queueFunc) Add(id string) { f(id) }
