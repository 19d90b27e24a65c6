package store_test

import (
	"context"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// The monitor's report cycle through JobStates, under the monitor's role, read back whole; config-update's
// role reads whether the job ended and cannot write; the retention steps take only final rows of jobs
// without an integrated-app configuration, older than the cutoff.
func TestJobStatesUnderTheirRoles(t *testing.T) {
	db := storetest.New(t, env.Database(t))
	ctx := context.Background()
	mon := &store.JobStates{Pool: db.Open(t, store.FnMonitor).Pool}
	cfg := &store.JobStates{Pool: db.Open(t, store.FnConfigUpdate).Pool}
	last := func(id string) store.JobStateRow {
		t.Helper()
		r, err := mon.Last(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	final := func(j *store.JobStates, id string) bool {
		t.Helper()
		f, err := j.Final(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if got := last("1"); got != (store.JobStateRow{}) || final(cfg, "1") {
		t.Fatalf("a job never reported: %+v, final %v", got, final(cfg, "1"))
	}
	steps := []struct {
		name  string
		do    func() error
		want  store.JobStateRow
		final bool
	}{
		{"intent to send IN_QUEUE", func() error { return mon.RecordIntent(ctx, "1", store.JobStateRow{}, 1, ucloud.StateInQueue) },
			store.JobStateRow{SentSeq: 1, SentState: ucloud.StateInQueue}, false},
		{"IN_QUEUE accepted", func() error { return mon.RecordAccepted(ctx, "1", 1, ucloud.StateInQueue) },
			store.JobStateRow{State: ucloud.StateInQueue, Seq: 1, SentSeq: 1, SentState: ucloud.StateInQueue}, false},
		{"intent to send SUCCESS", func() error {
			return mon.RecordIntent(ctx, "1", store.JobStateRow{State: ucloud.StateInQueue, Seq: 1}, 2, ucloud.StateSuccess)
		}, store.JobStateRow{State: ucloud.StateInQueue, Seq: 1, SentSeq: 2, SentState: ucloud.StateSuccess}, false},
		{"SUCCESS accepted", func() error { return mon.RecordAccepted(ctx, "1", 2, ucloud.StateSuccess) },
			store.JobStateRow{State: ucloud.StateSuccess, Seq: 2, SentSeq: 2, SentState: ucloud.StateSuccess}, true},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := last("1"); got != s.want || final(cfg, "1") != s.final {
			t.Fatalf("after %s: %+v final %v, want %+v final %v", s.name, got, final(cfg, "1"), s.want, s.final)
		}
	}
	// config-update's role may read but not write job_state: a forged "the job ended" is refused.
	if err := cfg.RecordIntent(ctx, "2", store.JobStateRow{}, 1, ucloud.StateFailure); err == nil {
		t.Fatal("config-update's role wrote job_state")
	}
	if err := cfg.RecordAccepted(ctx, "1", 3, ucloud.StateRunning); err == nil {
		t.Fatal("config-update's role updated job_state")
	}
	if got := last("2"); got != (store.JobStateRow{}) {
		t.Fatalf("job 2 after the refused write: %+v", got)
	}

	// Retention: 1 final and old; 3 final and old but an integrated application's; 4 final but recent;
	// 5 old but running.
	for _, id := range []string{"3", "4", "5"} {
		state := ucloud.StateFailure
		if id == "5" {
			state = ucloud.StateRunning
		}
		if err := mon.RecordIntent(ctx, id, store.JobStateRow{}, 1, state); err != nil {
			t.Fatal(err)
		}
		if err := mon.RecordAccepted(ctx, id, 1, state); err != nil {
			t.Fatal(err)
		}
	}
	owner := db.OwnerPool(t)
	if _, err := owner.Exec(ctx, `UPDATE job_state SET updated_at = now() - interval '2 hours' WHERE job_id IN ('1', '3', '5')`); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Exec(ctx, `INSERT INTO iapp_config (app, created_by, config, etag, job_id) VALUES ('terminal', 'u', '{}', 'e', '3')`); err != nil {
		t.Fatal(err)
	}
	unfinished, err := mon.Unfinished(ctx)
	if err != nil || !reflect.DeepEqual(unfinished, []string{"5"}) {
		t.Fatalf("unfinished: %v %v, want [5]", unfinished, err)
	}
	cutoff := time.Now().Add(-time.Hour)
	ids, err := mon.FinalBefore(ctx, cutoff, "", store.SweepBatch)
	if sort.Strings(ids); err != nil || !reflect.DeepEqual(ids, []string{"1"}) {
		t.Fatalf("final before the cutoff: %v %v, want [1]", ids, err)
	}
	if ids, err := mon.FinalBefore(ctx, cutoff, "1", store.SweepBatch); err != nil || len(ids) != 0 {
		t.Fatalf("after job 1: %v %v, want none", ids, err)
	}
	for id, want := range map[string]int64{"1": 1, "3": 0, "4": 0, "5": 0} {
		if n, err := mon.DeleteFinal(ctx, id, cutoff); err != nil || n != want {
			t.Fatalf("delete %s: %d %v, want %d", id, n, err, want)
		}
	}
	if got := last("1"); got != (store.JobStateRow{}) {
		t.Fatalf("job 1 after the sweep: %+v", got)
	}
	if got := last("3"); got.State != ucloud.StateFailure {
		t.Fatalf("the integrated application's job lost its row: %+v", got)
	}
}
