package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/shared/usage"
)

// A job's running time through JobUsage under the monitor's role, read back whole after each step: a
// repeated start keeps the first, a repeated stop adds nothing, a spell in the queue does not count, an
// ended job never starts again, a job that never ran has no row; a reported period is not due again, a
// final total is never due again, and retention removes only rows whose final total Core has.
func TestJobUsageRunningTimeAndReports(t *testing.T) {
	db := storetest.New(t, env.Database(t))
	ctx := context.Background()
	u := &store.JobUsage{Pool: db.Open(t, store.FnMonitor).Pool}
	charge := usage.Charge{Owner: ucloud.WalletOwnerOf("alice#1", "proj-1"), Category: ucloud.ProductCategoryIDV2{Name: "u1-standard", Provider: "k8s"},
		Units: 8, Frequency: ucloud.FrequencyPeriodicMinute}
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	due := func(slot int64) []store.JobUsageRow {
		t.Helper()
		rows, err := u.Due(ctx, slot)
		if err != nil {
			t.Fatal(err)
		}
		for i := range rows {
			if rows[i].RunningSince != nil {
				utc := rows[i].RunningSince.UTC()
				rows[i].RunningSince = &utc
			}
		}
		return rows
	}
	ptr := func(t time.Time) *time.Time { return &t }
	steps := []struct {
		name string
		do   func() error
		slot int64
		want []store.JobUsageRow
	}{
		{"a job that never ran stops", func() error { return u.Stopped(ctx, "9", at(5), true) }, 1, nil},
		{"starts", func() error { return u.Started(ctx, "1", charge, at(0)) }, 1,
			[]store.JobUsageRow{{JobID: "1", Charge: charge, RunningSince: ptr(at(0)), ReportedSlot: -1}}},
		{"a repeated start keeps the first", func() error { return u.Started(ctx, "1", charge, at(3)) }, 1,
			[]store.JobUsageRow{{JobID: "1", Charge: charge, RunningSince: ptr(at(0)), ReportedSlot: -1}}},
		{"back in the queue after 10.5 s", func() error { return u.Stopped(ctx, "1", at(10).Add(500*time.Millisecond), false) }, 1,
			[]store.JobUsageRow{{JobID: "1", Charge: charge, Consumed: 10500 * time.Millisecond, ReportedSlot: -1}}},
		{"a repeated stop adds nothing", func() error { return u.Stopped(ctx, "1", at(20), false) }, 1,
			[]store.JobUsageRow{{JobID: "1", Charge: charge, Consumed: 10500 * time.Millisecond, ReportedSlot: -1}}},
		{"runs again", func() error { return u.Started(ctx, "1", charge, at(30)) }, 1,
			[]store.JobUsageRow{{JobID: "1", Charge: charge, RunningSince: ptr(at(30)), Consumed: 10500 * time.Millisecond, ReportedSlot: -1}}},
		{"reported in period 1", func() error { return u.RecordReported(ctx, 1, []store.UsageReported{{JobID: "1", Total: 3}}) }, 1, nil},
		{"due again in period 2", func() error { return nil }, 2,
			[]store.JobUsageRow{{JobID: "1", Charge: charge, RunningSince: ptr(at(30)), Consumed: 10500 * time.Millisecond, Reported: 3, ReportedSlot: 1}}},
		{"ends after 20 s more", func() error { return u.Stopped(ctx, "1", at(50), true) }, 2,
			[]store.JobUsageRow{{JobID: "1", Charge: charge, Consumed: 30500 * time.Millisecond, Ended: true, Reported: 3, ReportedSlot: 1}}},
		{"an ended job does not start again", func() error { return u.Started(ctx, "1", charge, at(60)) }, 2,
			[]store.JobUsageRow{{JobID: "1", Charge: charge, Consumed: 30500 * time.Millisecond, Ended: true, Reported: 3, ReportedSlot: 1}}},
		{"its final total is accepted", func() error {
			return u.RecordReported(ctx, 2, []store.UsageReported{{JobID: "1", Total: 4, Final: true}})
		}, 99, nil},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if diff := cmp.Diff(s.want, due(s.slot), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%s: due in period %d (-want +got):\n%s", s.name, s.slot, diff)
		}
	}
	// A job still running is kept by retention; the one whose final total Core has goes.
	if err := u.Started(ctx, "2", charge, at(0)); err != nil {
		t.Fatal(err)
	}
	n, err := u.DeleteReportedBefore(ctx, time.Now().Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("retention removed %d rows (%v), want 1", n, err)
	}
	if rows := due(99); len(rows) != 1 || rows[0].JobID != "2" {
		t.Fatalf("after retention: %+v", rows)
	}
}
