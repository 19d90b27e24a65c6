package monitor_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/monitor"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// crashedDatabaseSink plays a crash of PostgreSQL that loses the monitor's lazily committed writes of one
// change after status-report acknowledged its event and before its drainer delivered the row: the intent
// and the outbox row are undone, the event is acknowledged and never reaches status-report. Every other
// event goes through.
type crashedDatabaseSink struct {
	monitor.Sender
	chosenChange
	owner *pgxpool.Pool
	lost  chan struct{}
}

func (c *crashedDatabaseSink) Send(ctx context.Context, e event.Event) error {
	seq, chosen, err := c.is(e)
	if err != nil {
		return err
	}
	select {
	case <-c.lost:
	default:
		if chosen {
			// The table as before the change's transaction: its intent and its outbox row gone.
			if _, err := c.owner.Exec(ctx, `WITH gone AS (DELETE FROM outbox WHERE job_id = $1 AND seq = $2)
				UPDATE job_state SET sent_seq = last_seq, sent_state = last_state WHERE job_id = $1`, c.jobID, seq); err != nil {
				return err
			}
			close(c.lost)
			return nil
		}
	}
	return c.Sender.Send(ctx, e)
}

// The monitor's intent and outbox row are committed without waiting for the disk; a crash of PostgreSQL
// can undo them after status-report took the event. The change's acceptance, committed durably after the
// send, must then find its intent gone and have the change sent again: recorded as accepted instead, the
// job's final state would never reach Core.
func TestAChangeTheDatabaseLostIsSentAgain(t *testing.T) {
	r := newRig(t)
	sink, err := monitor.NewEventSink(r.sink, r.monitor.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	crash := &crashedDatabaseSink{Sender: sink, chosenChange: chosenChange{jobID: "401", state: ucloud.StateSuccess}, owner: r.owner, lost: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := &monitor.Monitor{Kube: env.Clientset, Namespace: r.ns, Pool: r.db.Pool, Registry: iapps.BuiltinApps(iapps.AppEnv{}), Drives: r.access(r.db), DriveRefresh: driveRefresh,
		Sink: countingSink{Sender: crash, c: r.sent}, Log: fn.NewLogger(io.Discard, "monitor", "info"), Resync: 300 * time.Millisecond}
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	r.createJob("401", 1, nil)
	r.waitStates("401", "[IN_QUEUE RUNNING]")
	r.exit("401", 0, "0")
	select {
	case <-crash.lost:
	case <-time.After(30 * time.Second):
		t.Fatal("the monitor never sent SUCCESS")
	}
	r.waitStates("401", "[IN_QUEUE RUNNING SUCCESS]")
	r.quiet("401")
	if n := r.sent.of([]string{"401"})["401"]; n != 4 {
		t.Fatalf("the monitor sent %d changes of job 401, want 4 (IN_QUEUE, RUNNING, SUCCESS lost, SUCCESS again)", n)
	}
}
