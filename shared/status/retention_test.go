package status_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/envtest"
)

// Retention, run by status-report as its own role, removes delivered rows older than the setting and
// nothing else: not a recent delivered row, not an old row still waiting for Core.
func TestRetentionRemovesOnlyOldDeliveredRows(t *testing.T) {
	r := newRig(t)
	rep, url := r.newReporter()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rep.Run(ctx); close(done) }()
	for _, ev := range []struct {
		job   string
		seq   int
		state ucloud.JobState
	}{{"10", 1, ucloud.StateRunning}, {"10", 2, ucloud.StateSuccess}, {"11", 1, ucloud.StateRunning}} {
		if code := r.send(url, fmt.Sprintf("ev-%s-%d", ev.job, ev.seq), ev.job, ev.seq, ev.state); code != http.StatusAccepted {
			t.Fatalf("event %s/%d: %d", ev.job, ev.seq, code)
		}
	}
	envtest.Eventually(t, 10*time.Second, func() error {
		if n, _ := rep.Pending(ctx); n != 0 {
			return fmt.Errorf("%d pending", n)
		}
		return nil
	})
	cancel()
	<-done
	// Age job 10's rows past 30 days, and leave an even older row of job 12 undelivered (Core was down).
	for _, q := range []string{
		"UPDATE outbox SET created_at = now() - interval '40 days', delivered_at = now() - interval '31 days' WHERE job_id = '10'",
		`INSERT INTO outbox (event_id, job_id, seq, update, created_at) VALUES ('ev-12-1', '12', 1, '{"timestamp":1}', now() - interval '60 days')`,
	} {
		if _, err := r.owner.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	defer stopSweep()
	go store.Retention{Table: "outbox", Keep: 30 * 24 * time.Hour, Sweep: rep.Sweep, Log: fn.NewLogger(io.Discard, "status-report", "info")}.Run(sweepCtx)
	envtest.Eventually(t, 10*time.Second, func() error {
		var left string
		err := r.owner.QueryRow(context.Background(), "SELECT string_agg(job_id || '/' || seq, ' ' ORDER BY job_id, seq) FROM outbox").Scan(&left)
		if err != nil {
			return err
		}
		if left != "11/1 12/1" {
			return fmt.Errorf("outbox holds %s, want 11/1 12/1", left)
		}
		return nil
	})
}
