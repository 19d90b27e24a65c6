package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/shared/usage"
	"github.com/ucloud-im/knative-im/test/apps"
	"github.com/ucloud-im/knative-im/test/env/localenv"
	"github.com/ucloud-im/knative-im/test/envtest"
)

// usageCatalog has a large product, so seconds of running are whole units (6,000 cores: 100 core-minutes
// per second), and one no node can hold, whose job never runs.
const usageCatalog = `{"products":[
	{"id":"fat-6000","category":"fat","cpu":6000,"memoryGiB":1},
	{"id":"huge-30000","category":"fat","cpu":30000,"memoryGiB":1}],
	"categories":[{"name":"fat","unit":"Core","frequency":"PERIODIC_MINUTE"}]}`

const usagePeriod = time.Second

// Three jobs created through job-create, watched by the monitor, charged at the strict fake Core: a
// two-rank job that ends by itself, a job that runs across a monitor kill and is then stopped by deleting
// its pods, and a job that never runs. Core's usage of each job equals its product's price times its
// replicas times the time it ran by Core's own RUNNING and final updates, within one reporting period; the
// first job's final total, sent before the kill, is not sent again; the second job's totals never go down
// across the kill; nothing is charged for the third.
func TestUsageReportedAsJobsRun(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	ns := s.vars["JOBS_NAMESPACE"]
	catalogFile := filepath.Join(t.TempDir(), "catalog.json")
	if err := os.WriteFile(catalogFile, []byte(usageCatalog), 0o644); err != nil {
		t.Fatal(err)
	}
	catalog, err := jobs.LoadCatalog(catalogFile)
	if err != nil {
		t.Fatal(err)
	}
	wanted, _ := catalog.CoreProducts("k8s")
	client, err := s.core.Client(ucloud.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.CreateProducts(ctx, wanted); err != nil { // as job-control does at start-up
		t.Fatal(err)
	}
	vars := jobVars(t, s, "JOB_CATALOG_FILE", catalogFile, "USAGE_REPORT_PERIOD", usagePeriod.String())
	create := startFunction(t, "job-create", vars)
	project := "proj-usage"
	newJob := func(id string, replicas int, product, createdBy string, project *string) ucloud.Job {
		j := ucloud.Job{ID: id, CreatedAt: time.Now().UnixMilli(), Owner: ucloud.ResourceOwner{CreatedBy: createdBy, Project: project},
			Specification: ucloud.JobSpecification{Product: ucloud.ProductReference{ID: product, Category: "fat", Provider: "k8s"},
				Replicas: replicas, Resources: []ucloud.AppParameterValue{}},
			Status: ucloud.JobStatus{State: ucloud.StateInQueue}, Updates: []ucloud.JobUpdate{}}
		apps.Load("batch").Apply(&j)
		return j
	}
	ends, crosses, never := newJob("910001", 2, "fat-6000", "alice#1", nil), newJob("910002", 1, "fat-6000", "bob#2", &project),
		newJob("910003", 1, "huge-30000", "alice#1", nil)
	for _, j := range []ucloud.Job{ends, crosses, never} {
		call, err := s.core.CallProvider(ctx, create.URL, http.MethodPost, "/ucloud/k8s/jobs", j.Owner.CreatedBy, ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{j}})
		if err != nil || call.Status != 200 {
			t.Fatalf("create %s: %+v %v", j.ID, call, err)
		}
	}
	mon := startFunction(t, "monitor", vars)
	atCore := func(id string, st ucloud.JobState) time.Time {
		for _, u := range s.core.Updates() {
			if u.ID == id && u.Update.State != nil && *u.Update.State == st {
				return time.UnixMilli(u.Update.Timestamp)
			}
		}
		return time.Time{}
	}
	waitState := func(id string, st ucloud.JobState) time.Time {
		t.Helper()
		envtest.Eventually(t, 60*time.Second, func() error {
			if atCore(id, st).IsZero() {
				return fmt.Errorf("Core has no %s for job %s yet", st, id)
			}
			return nil
		})
		return atCore(id, st)
	}
	reports := func(id string) (values []int64, last time.Time) {
		for _, r := range s.core.UsageReports() {
			if *r.Description.Scope == usage.Scope(id) {
				values, last = append(values, r.Usage), r.At
			}
		}
		return values, last
	}
	waitFinal := func(id string, ended time.Time) {
		t.Helper()
		envtest.Eventually(t, 30*time.Second, func() error {
			if _, last := reports(id); !last.After(ended) {
				return fmt.Errorf("no report of job %s since it ended", id)
			}
			return nil
		})
	}
	waitState(ends.ID, ucloud.StateRunning)
	waitState(crosses.ID, ucloud.StateRunning)
	waitState(never.ID, ucloud.StateInQueue)
	time.Sleep(6 * time.Second)
	for rank := range 2 {
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"0"}}}`, localenv.ExitCodeAnnotation)
		if _, err := env.Clientset.CoreV1().Pods(ns).Patch(ctx, kube.PodName(ends.ID, rank), "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFinal(ends.ID, waitState(ends.ID, ucloud.StateSuccess))
	endsBeforeKill, _ := reports(ends.ID)

	mon.kill() // no shutdown: whatever the monitor had in memory is gone
	time.Sleep(3 * time.Second)
	mon = startFunction(t, "monitor", vars)
	time.Sleep(3 * time.Second)
	zero := int64(0)
	for _, id := range []string{crosses.ID, never.ID} {
		if err := env.Clientset.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero},
			metav1.ListOptions{LabelSelector: kube.LabelJobID + "=" + id}); err != nil {
			t.Fatal(err)
		}
	}
	waitFinal(crosses.ID, waitState(crosses.ID, ucloud.StateSuccess))
	waitState(never.ID, ucloud.StateSuccess)
	time.Sleep(3 * usagePeriod) // a few more periods: nothing more may come for the ended jobs

	perSecond := int64(6000) / 60 // core-minutes per second of one rank
	for _, tc := range []struct {
		job      ucloud.Job
		owner    string
		replicas int64
	}{{ends, "alice#1", 2}, {crosses, project, 1}} {
		ran := atCore(tc.job.ID, ucloud.StateSuccess).Sub(atCore(tc.job.ID, ucloud.StateRunning))
		want := tc.replicas * 6000 * ran.Milliseconds() / time.Minute.Milliseconds()
		got := s.core.ScopeUsage(tc.owner, usage.Scope(tc.job.ID))
		tolerance := tc.replicas * perSecond * int64(usagePeriod/time.Second)
		if diff := got - want; diff > tolerance || diff < -tolerance {
			t.Errorf("job %s ran %s by Core's updates: Core holds %d core-minutes, want %d ± %d", tc.job.ID, ran, got, want, tolerance)
		}
		values, _ := reports(tc.job.ID)
		for i := 1; i < len(values); i++ {
			if values[i] < values[i-1] {
				t.Errorf("job %s: Core's total went down from %d to %d (%v)", tc.job.ID, values[i-1], values[i], values)
			}
		}
		figure(t, "job %s (%d x %s) ran %s by Core's updates: charged %d core-minutes, the exact figure is %d (%+.2f s of running); %d reports",
			tc.job.ID, tc.replicas, tc.job.Specification.Product.ID, ran.Round(time.Millisecond), got, want,
			float64(got-want)/float64(tc.replicas*perSecond), len(values))
	}
	if after, _ := reports(ends.ID); len(after) != len(endsBeforeKill) {
		t.Errorf("job %s's final total was reported before the kill, and %d more times after: %v", ends.ID, len(after)-len(endsBeforeKill), after)
	}
	if values, _ := reports(never.ID); len(values) != 0 {
		t.Errorf("job %s never ran and was charged: %v", never.ID, values)
	}
	fat := ucloud.ProductCategoryIDV2{Name: "fat", Provider: "k8s"}
	if got, want := s.core.WalletUsage("alice#1", fat), s.core.ScopeUsage("alice#1", usage.Scope(ends.ID)); got != want {
		t.Errorf("alice's wallet holds %d, want job %s's %d alone", got, ends.ID, want)
	}
}
