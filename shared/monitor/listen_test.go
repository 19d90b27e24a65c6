package monitor_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ucloud-im/knative-im/shared/monitor"
	"github.com/ucloud-im/knative-im/shared/status"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/test/envtest"
)

// While a status-report instance listens for the rows the monitor commits, the commit wakes its drainer:
// the monitor sends no event for the changes but one now and then (Knative scales status-report on them),
// and Core still gets every state once, in order.
func TestWhileStatusReportListensOnlyAKeepAliveIsSent(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.rep.Listen(ctx)
	envtest.Eventually(t, 20*time.Second, func() error {
		var b pgx.Batch
		listening := false
		status.QueueWakeUp(&b, &listening)
		if err := store.CommitLazily(ctx, r.db.Pool, &b); err != nil || !listening {
			return fmt.Errorf("no status-report instance listens (%v)", err)
		}
		return nil
	})
	stop := r.start(func(m *monitor.Monitor) { m.EventKeepAlive = time.Hour })
	defer stop()
	jobs := []string{"701", "702"}
	for _, id := range jobs {
		r.createJob(id, 1, nil)
		r.exit(id, 0, "0")
	}
	for _, id := range jobs {
		r.waitStates(id, "[IN_QUEUE RUNNING SUCCESS]")
	}
	r.quiet(jobs...)
	sent := r.sent.of(jobs)
	if n := sent["701"] + sent["702"]; n != 1 {
		t.Fatalf("the monitor sent %d events for 6 changes (%v), want 1: the first, as none was sent before", n, sent)
	}
}
