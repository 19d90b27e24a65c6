package monitor_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/monitor"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/shared/usage"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// The usage reports of a few periods against the strict fake Core, with the clock in the test's hands:
// each job's total is its units times its running time, sent once per period (a second look in the same
// period sends nothing, as after a monitor restart), the final total once and never again, a job Core
// refuses does not hold the others back, and while Core is down nothing is recorded, so the next look
// sends it.
func TestUsageIsReportedOncePerPeriod(t *testing.T) {
	ctx := context.Background()
	db := storetest.New(t, env.Database(t))
	rows := &store.JobUsage{Pool: db.Open(t, store.FnMonitor).Pool}
	core := fakecore.Start(t)
	client, err := core.Client(ucloud.ClientOptions{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	catalog, _ := jobs.LoadCatalog("")
	products, _ := catalog.CoreProducts("k8s")
	if err := client.CreateProducts(ctx, products); err != nil {
		t.Fatal(err)
	}
	project := "proj-1"
	core.PutJob(ucloud.Job{ID: "1", Owner: ucloud.ResourceOwner{CreatedBy: "alice#1"}})
	core.PutJob(ucloud.Job{ID: "2", Owner: ucloud.ResourceOwner{CreatedBy: "bob#2", Project: &project}})
	standard := ucloud.ProductCategoryIDV2{Name: "u1-standard", Provider: "k8s"}
	charge := func(owner ucloud.WalletOwner, units int64) usage.Charge {
		return usage.Charge{Owner: owner, Category: standard, Units: units, Frequency: ucloud.FrequencyPeriodicMinute}
	}
	t0 := time.Unix(1_800_000_000, 0) // the start of a 30 s period
	for id, c := range map[string]usage.Charge{
		"1": charge(ucloud.WalletOwnerOf("alice#1", ""), 8),
		"2": charge(ucloud.WalletOwnerOf("bob#2", project), 4),
		"3": charge(ucloud.WalletOwnerOf("mallory#3", ""), 100), // a user Core does not know
	} {
		if err := rows.Started(ctx, id, c, t0); err != nil {
			t.Fatal(err)
		}
	}
	now := t0
	u := &monitor.Usage{Core: client, Every: 30 * time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }}
	look := func(at time.Duration) {
		t.Helper()
		now = t0.Add(at)
		if _, err := u.Report(ctx, rows); err != nil {
			t.Fatalf("at %s: %v", at, err)
		}
	}
	reportsOf := func(scope string) int {
		n := 0
		for _, r := range core.UsageReports() {
			if *r.Description.Scope == scope {
				n++
			}
		}
		return n
	}
	type want struct{ job1, job2, reports1, reports2 int }
	check := func(step string, w want) {
		t.Helper()
		got := want{int(core.ScopeUsage("alice#1", "job-1")), int(core.ScopeUsage(project, "job-2")), reportsOf("job-1"), reportsOf("job-2")}
		if got != w {
			t.Fatalf("%s: Core holds %+v, want %+v", step, got, w)
		}
		for _, r := range core.UsageReports() {
			if r.IsDeltaCharge {
				t.Fatalf("%s: a delta charge was sent", step)
			}
		}
	}
	// 8 cores x 1.5 min, 4 cores x 1.5 min. Core applied jobs 1 and 2 of the batch, then refused job 3
	// (a user it does not know), so they were sent again alone, to the same totals.
	look(90 * time.Second)
	check("first look", want{12, 6, 2, 2})
	look(100 * time.Second) // the same period: nothing more
	check("a second look in the period", want{12, 6, 2, 2})
	if err := rows.Stopped(ctx, "1", t0.Add(100*time.Second), true); err != nil {
		t.Fatal(err)
	}
	look(125 * time.Second) // job 1 ran 100 s in all: 13.33 core-minutes; job 3 now goes alone
	check("job 1 ended", want{13, 8, 3, 3})
	look(155 * time.Second)
	check("the period after", want{13, 10, 3, 4})
	core.Fail("/api/accounting/v2/reportUsage", http.StatusServiceUnavailable, 1)
	now = t0.Add(185 * time.Second)
	if _, err := u.Report(ctx, rows); err == nil {
		t.Fatal("Core answered 503 and Report said nothing")
	}
	look(190 * time.Second) // the same period, Core back: sent now
	check("after Core's outage", want{13, 12, 3, 5})
	if n := reportsOf("job-3"); n != 0 {
		t.Fatalf("Core applied %d reports of a user it does not know", n)
	}
}
