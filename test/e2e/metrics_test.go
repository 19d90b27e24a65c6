package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/prometheus/util/teststorage"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/env/localenv"
	"github.com/ucloud-im/knative-im/test/envtest"
	"github.com/ucloud-im/knative-im/test/promrules"
	"github.com/ucloud-im/knative-im/test/scrape"
)

// A job driven through its states by job-create, KWOK and the monitor, its updates delivered by
// status-report to the strict fake Core: each process's metrics endpoint (METRICS_ADDR) moved by exactly
// what happened (the create request, each state sent, each event received, each update call Core got).
// Then Core refuses updates: a second job's updates wait, the oldest-undelivered age grows from scrape to
// scrape, and the alert rule of deploy/monitoring, evaluated by Prometheus' rule library over the scraped
// samples, fires once the oldest update is older than its threshold (the rows aged by SQL, as the
// retention tests do, rather than waiting 5 minutes); when Core is back, everything arrives, the age is 0
// and the alert resolves.
func TestMetricsCountAJobThroughItsStates(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	ns := s.vars["JOBS_NAMESPACE"]
	s.withEvents(t)
	key := gatewayKey(t, "metrics")
	endpoint := func() (addr, url string) {
		addr = fmt.Sprintf("127.0.0.1:%d", envtest.FreePort(t))
		return addr, "http://" + addr + "/metrics"
	}
	srAddr, srMetrics := endpoint()
	monAddr, monMetrics := endpoint()
	createAddr, createMetrics := endpoint()
	sr := startFunction(t, "status-report", withVar(s.vars, "METRICS_ADDR", srAddr))
	vars := withVar(withVar(withVar(withVar(s.vars, "K_SINK", sr.URL), "MONITOR_RESYNC", "1s"), "UCLOUD_GATEWAY_KEY_FILE", key), "UCLOUD_APPS_DOMAIN", "apps.example.org")
	create := startFunction(t, "job-create", withVar(vars, "METRICS_ADDR", createAddr))
	startFunction(t, "monitor", withVar(withVar(vars, "METRICS_ADDR", monAddr), "POD_NAME", "monitor-metrics"))

	get := func(url string) scrape.Samples {
		t.Helper()
		got, err := scrape.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	envtest.Eventually(t, 30*time.Second, func() error {
		if v := get(monMetrics)["ucloud_im_monitor_leader"]; v != 1 {
			return fmt.Errorf("ucloud_im_monitor_leader %v", v)
		}
		return nil
	})
	before := map[string]scrape.Samples{"sr": get(srMetrics), "mon": get(monMetrics), "create": get(createMetrics)}
	updateCalls := func() int { return s.core.Calls("/api/jobs/control/update") }
	callsBefore := updateCalls()

	atCore := func(id string, want ucloud.JobState) {
		t.Helper()
		envtest.Eventually(t, 60*time.Second, func() error {
			if got := s.core.Transitions(id); len(got) == 0 || got[len(got)-1] != want {
				return fmt.Errorf("job %s at Core: %v, want it to reach %s", id, got, want)
			}
			return nil
		})
	}

	// One job, from create to SUCCESS (KWOK ends its pod with exit code 0).
	const job = "930001"
	submitBatch(ctx, t, s, create.URL, job, 1)
	atCore(job, ucloud.StateRunning)
	pods, err := env.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelJobID + "=" + job})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods of job %s: %v %v", job, pods, err)
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"0"}}}`, localenv.ExitCodeAnnotation)
	if _, err := env.Clientset.CoreV1().Pods(ns).Patch(ctx, pods.Items[0].Name, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	atCore(job, ucloud.StateSuccess)

	// What happened, by Core's own record: each state update it got for the job, and its update calls.
	states := map[string]float64{}
	total := 0.0
	for _, u := range s.core.JobUpdates(job) {
		if u.State != nil {
			states[string(*u.State)]++
			total++
		}
	}
	want := map[string]scrape.Samples{
		"create": {
			`ucloud_im_http_requests_total{code="200",method="POST",route="POST /ucloud/{provider}/jobs"}`:      1,
			`ucloud_im_http_request_duration_seconds_count{method="POST",route="POST /ucloud/{provider}/jobs"}`: 1,
		},
		"mon": {},
		"sr": {
			`ucloud_im_outbox_delivered_total`: total,
		},
	}
	for state, n := range states {
		want["mon"][scrape.Series("ucloud_im_monitor_transitions_total", map[string]string{"state": state})] = n
	}
	envtest.Eventually(t, 20*time.Second, func() error {
		// status-report received the events the monitor counted as sent: one at least (the first change,
		// before any), the others only when status-report was not listening for their rows.
		events := 0.0
		for _, n := range scrape.Delta(before["mon"], get(monMetrics), "ucloud_im_monitor_events_sent_total") {
			events += n
		}
		if events < 1 || events > total {
			return fmt.Errorf("the monitor counted %v events sent for %v changes", events, total)
		}
		want["sr"][`ucloud_im_http_requests_total{code="202",method="POST",route="event"}`] = events
		want["sr"][`ucloud_im_http_request_duration_seconds_count{method="POST",route="event"}`] = events
		calls := float64(updateCalls() - callsBefore)
		want["sr"][`ucloud_im_core_calls_total{call="jobs.control.update",outcome="ok"}`] = calls
		want["sr"][`ucloud_im_core_call_duration_seconds_count{call="jobs.control.update"}`] = calls
		want["sr"][`ucloud_im_core_attempts_total{call="jobs.control.update",code="200"}`] = calls
		for proc, url := range map[string]string{"create": createMetrics, "mon": monMetrics, "sr": srMetrics} {
			got := scrape.Delta(before[proc], get(url), "ucloud_im_http_requests_total", "ucloud_im_http_request_duration_seconds_count",
				"ucloud_im_monitor_transitions_total", "ucloud_im_outbox_delivered_total", "ucloud_im_outbox_rejected_total",
				`ucloud_im_core_calls_total{call="jobs.control.update"`, `ucloud_im_core_call_duration_seconds_count{call="jobs.control.update"`,
				`ucloud_im_core_attempts_total{call="jobs.control.update"`)
			if diff := cmp.Diff(want[proc], got); diff != "" {
				return fmt.Errorf("%s's metrics moved by (-want +got):\n%s", proc, diff)
			}
		}
		return nil
	})
	mon := get(monMetrics)
	if mon[`workqueue_adds_total{name="jobs"}`] < 1 || mon[`ucloud_im_monitor_reconcile_duration_seconds_count{result="ok"}`] < 1 {
		t.Errorf("the monitor's queue and reconciles were not counted: adds %v, reconciles %v",
			mon[`workqueue_adds_total{name="jobs"}`], mon[`ucloud_im_monitor_reconcile_duration_seconds_count{result="ok"}`])
	}
	t.Logf("job %s: %v sent, %d update calls to Core", job, states, updateCalls()-callsBefore)

	// Core down: a second job's updates wait in the outbox.
	rgs, err := promrules.Load(filepath.Join("..", "..", "deploy", "monitoring", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rule, err := promrules.Alert(rgs, "UCloudIMJobUpdatesNotReachingCore")
	if err != nil {
		t.Fatal(err)
	}
	st := teststorage.New(t)
	var evals []time.Time
	record := func() scrape.Samples {
		t.Helper()
		now := time.Now()
		got := get(srMetrics)
		if err := promrules.Append(ctx, st, now, got); err != nil {
			t.Fatal(err)
		}
		evals = append(evals, now)
		return got
	}
	firing := func() []string {
		t.Helper()
		got, err := promrules.Eval(ctx, st, rule, evals...)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	const age = "ucloud_im_outbox_oldest_undelivered_age_seconds"
	s.core.FailFor("/api/jobs/control/update", http.StatusServiceUnavailable, 5*time.Minute)
	const stuck = "930002"
	submitBatch(ctx, t, s, create.URL, stuck, 1)
	envtest.Eventually(t, 60*time.Second, func() error {
		if got := get(srMetrics); got["ucloud_im_outbox_pending_rows"] < 1 || got[age] <= 0 {
			return fmt.Errorf("outbox pending %v, oldest %v s", got["ucloud_im_outbox_pending_rows"], got[age])
		}
		return nil
	})
	first := record()
	time.Sleep(1500 * time.Millisecond)
	second := record()
	if !(second[age] > first[age]) {
		t.Errorf("with Core down the oldest undelivered age went from %v s to %v s: it must grow", first[age], second[age])
	}
	if f := firing(); len(f) != 0 {
		t.Errorf("the alert fires at %v s: %v", second[age], f)
	}
	if second[`ucloud_im_core_calls_total{call="jobs.control.update",outcome="unavailable"}`] < 1 &&
		second[`ucloud_im_core_attempts_total{call="jobs.control.update",code="503"}`] < 1 {
		t.Errorf("Core's 503s were not counted")
	}
	// Age the waiting rows past the threshold (as if Core had been down for 6 minutes).
	conn, err := pgx.Connect(ctx, s.vars[databaseURLOf+"status-report"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "UPDATE outbox SET created_at = created_at - interval '6 minutes' WHERE delivered_at IS NULL"); err != nil {
		t.Fatal(err)
	}
	third := record()
	if third[age] < 360 {
		t.Fatalf("oldest undelivered age %v s after aging the rows by 6 minutes", third[age])
	}
	if f := firing(); fmt.Sprint(f) != `[{alertname="UCloudIMJobUpdatesNotReachingCore", severity="critical"}]` {
		t.Errorf("at %v s the alert's firing set is %v, want UCloudIMJobUpdatesNotReachingCore", third[age], f)
	}
	figure(t, "Core down: oldest undelivered age %.2f s -> %.2f s over %s; %.0f s after aging: alert fires",
		first[age], second[age], evals[1].Sub(evals[0]).Round(time.Millisecond), third[age])

	// Core back: the update arrives, nothing waits, the alert resolves.
	s.core.ClearFaults()
	atCore(stuck, ucloud.StateRunning)
	envtest.Eventually(t, 60*time.Second, func() error {
		if got := get(srMetrics); got["ucloud_im_outbox_pending_rows"] != 0 || got[age] != 0 {
			return fmt.Errorf("outbox pending %v, oldest %v s", got["ucloud_im_outbox_pending_rows"], got[age])
		}
		return nil
	})
	record()
	if f := firing(); len(f) != 0 {
		t.Errorf("with nothing waiting the alert still fires: %v", f)
	}
}
