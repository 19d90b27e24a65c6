package status_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ucloud-im/knative-im/shared/status"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/envtest"
)

// outboxRow is the monitor's row for a job's change.
func outboxRow(jobID string, seq int64, state ucloud.JobState) status.OutboxRow {
	msg := "Your job is " + string(state)
	raw, _ := json.Marshal(ucloud.JobUpdate{State: &state, Status: &msg, Timestamp: time.Now().UnixMilli()})
	return status.OutboxRow{EventID: fmt.Sprintf("%s-%d", jobID, seq), JobID: jobID, Seq: seq, Update: raw}
}

// commitAsMonitor commits rows as the monitor does (its role, lazily), with the wake-up when wake is set,
// and returns whether an instance listened.
func (r *rig) commitAsMonitor(wake bool, rows ...status.OutboxRow) bool {
	r.t.Helper()
	var b pgx.Batch
	for _, row := range rows {
		status.QueueOutboxInsert(&b, row)
	}
	listening := false
	if wake {
		status.QueueWakeUp(&b, &listening)
	}
	if err := store.CommitLazily(context.Background(), r.monitorDB.Pool, &b); err != nil {
		r.t.Fatal(err)
	}
	return listening
}

// untilListening waits until a commit finds a listener.
func (r *rig) untilListening() {
	r.t.Helper()
	envtest.Eventually(r.t, 20*time.Second, func() error {
		if !r.commitAsMonitor(true) {
			return fmt.Errorf("no status-report instance listens")
		}
		return nil
	})
}

// startListening starts an instance that drains until run ends, when woken only (its own look is an hour
// away), and listens until listen ends; stopped closes when it stopped listening.
func (r *rig) startListening(run, listen context.Context) (stopped <-chan struct{}) {
	rep, _ := r.newReporter()
	rep.Poll = time.Hour
	go rep.Run(run)
	done := make(chan struct{})
	go func() { defer close(done); rep.Listen(listen) }()
	return done
}

// untilCoreHas waits until Core has the states want for the job.
func (r *rig) untilCoreHas(jobID, want string) {
	r.t.Helper()
	envtest.Eventually(r.t, 20*time.Second, func() error {
		if got := fmt.Sprint(states(r.core, jobID)); got != want {
			return fmt.Errorf("Core has %s for job %s, want %s", got, jobID, want)
		}
		return nil
	})
}

// listening starts an instance that listens and drains for the rest of the test, and returns once it
// listens and its first drain is over.
func (r *rig) listening() {
	ctx, cancel := context.WithCancel(context.Background())
	r.t.Cleanup(cancel)
	r.startListening(ctx, ctx)
	r.untilListening()
	time.Sleep(time.Second) // the listener's first drain and the probe's are over
}

// A listening instance's drainer is woken by the monitor's commit itself: the rows reach Core with no
// event at all. A commit without the wake-up wakes nothing (the drainer's own look is an hour away here).
func TestAListeningDrainerIsWokenByTheCommit(t *testing.T) {
	r := newRig(t)
	r.listening()

	r.commitAsMonitor(false, outboxRow("601", 1, ucloud.StateInQueue))
	time.Sleep(time.Second)
	if got := states(r.core, "601"); len(got) != 0 {
		t.Fatalf("Core got %v with nothing woken", got)
	}
	if !r.commitAsMonitor(true, outboxRow("601", 2, ucloud.StateRunning)) {
		t.Fatal("the commit found no listener")
	}
	r.untilCoreHas("601", "[IN_QUEUE RUNNING]")
}

// A listener that stops waits for the commits that found it (they send no event) and delivers their rows
// before it goes; the commits meanwhile and after find no listener (and wait for nothing), so the monitor
// sends their events.
func TestAStoppingListenerDeliversTheRowsOfCommitsThatFoundIt(t *testing.T) {
	r := newRig(t)
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	listenCtx, stopListening := context.WithCancel(context.Background())
	defer stopListening()
	stopped := r.startListening(runCtx, listenCtx)
	r.untilListening()

	// The monitor's commit has found the listener but not committed yet when the instance stops.
	ctx := context.Background()
	tx, err := r.monitorDB.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var b pgx.Batch
	status.QueueOutboxInsert(&b, outboxRow("602", 1, ucloud.StateSuccess))
	listening := false
	status.QueueWakeUp(&b, &listening)
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		t.Fatal(err)
	}
	if !listening {
		t.Fatal("the commit found no listener")
	}
	stopRun() // no drainer but the stopping listener's last drain
	stopListening()
	select {
	case <-stopped:
		t.Fatal("the listener stopped while a commit that found it was open")
	case <-time.After(time.Second):
	}
	// Meanwhile a commit neither waits for the stopping listener nor counts on it: its event is sent.
	if r.commitAsMonitor(true) {
		t.Fatal("a commit while the listener was stopping found it")
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("the listener did not stop after the commit")
	}
	if got := fmt.Sprint(states(r.core, "602")); got != "[SUCCESS]" {
		t.Fatalf("Core has %s after the listener stopped, want the row of the commit that found it", got)
	}
	if r.commitAsMonitor(true) {
		t.Fatal("a commit after the listener stopped found one: its event would not be sent")
	}
}

// One instance listens at a time; when its session is killed, the lock goes with it, and an instance
// listens again (the other, or the same after reconnecting) and is woken by the next commit.
func TestAKilledListenerIsReplaced(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 2 {
		r.startListening(ctx, ctx)
	}
	r.untilListening()
	admin, err := pgx.Connect(ctx, env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	db := r.monitorDB.Pool.Config().ConnConfig.Database
	// The listener's lock (an advisory lock on one bigint key: classid 0, objid the key).
	const listeners = `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = 0 AND objid = $1
		AND database = (SELECT oid FROM pg_database WHERE datname = $2)`
	var pids []int32
	rows, err := admin.Query(ctx, listeners, int64(0x75636f6c), db)
	if err == nil {
		pids, err = pgx.CollectRows(rows, pgx.RowTo[int32])
	}
	if err != nil || len(pids) != 1 {
		t.Fatalf("listeners holding the lock: %v (%v), want one", pids, err)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", pids[0]); err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, 20*time.Second, func() error {
		var now []int32
		rows, err := admin.Query(ctx, listeners, int64(0x75636f6c), db)
		if err == nil {
			now, err = pgx.CollectRows(rows, pgx.RowTo[int32])
		}
		if err != nil || len(now) != 1 || now[0] == pids[0] {
			return fmt.Errorf("listeners %v (%v), want one new one", now, err)
		}
		return nil
	})
	if !r.commitAsMonitor(true, outboxRow("603", 1, ucloud.StateRunning)) {
		t.Fatal("the commit found no listener")
	}
	r.untilCoreHas("603", "[RUNNING]")
}

// Changes that keep coming a few milliseconds apart (a busy cluster) are gathered: the drainer reads the
// outbox, calls Core and marks at most once per 20 ms meanwhile, not once per change, and each change
// still reaches Core once, in its job's order.
func TestChangesThatKeepComingAreGatheredIntoFewCoreCalls(t *testing.T) {
	r := newRig(t)
	r.listening()

	before := r.core.Calls("/api/jobs/control/update")
	start := time.Now()
	const jobs = 20
	for i := range jobs {
		id := fmt.Sprint(700 + i)
		r.commitAsMonitor(true, outboxRow(id, 1, ucloud.StateInQueue))
		r.commitAsMonitor(true, outboxRow(id, 2, ucloud.StateRunning))
		time.Sleep(2 * time.Millisecond)
	}
	span := time.Since(start)
	for i := range jobs {
		r.untilCoreHas(fmt.Sprint(700+i), "[IN_QUEUE RUNNING]")
	}
	// One call per readGap of the span, and one for the change that began it and one for the last ones.
	if calls, most := r.core.Calls("/api/jobs/control/update")-before, int(span/status.ReadGap)+2; calls > most {
		t.Fatalf("%d changes over %s reached Core in %d calls, want at most %d", 2*jobs, span.Round(time.Millisecond), calls, most)
	}
}
