package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/apps"
	"github.com/ucloud-im/knative-im/test/env/localenv"
	"github.com/ucloud-im/knative-im/test/envtest"
)

// monitorVars adds what the monitor needs: a status-report process as its sink, which accepts the
// monitor's ServiceAccount only, and that ServiceAccount's tokens for the monitor (as make run does).
func monitorVars(t *testing.T, s *stack) map[string]string {
	s.withEvents(t)
	sr := startFunction(t, "status-report", s.vars)
	vars := map[string]string{"K_SINK": sr.URL, "MONITOR_RESYNC": "1s"}
	for k, v := range s.vars {
		vars[k] = v
	}
	return vars
}

func waitLog(t *testing.T, p *fnProc, text string, within time.Duration) {
	t.Helper()
	envtest.Eventually(t, within, func() error {
		if !strings.Contains(p.logs.String(), text) {
			return fmt.Errorf("no %q in the log yet", text)
		}
		return nil
	})
}

// Two monitors: one leads, the other waits, and takes over when the first stops.
func TestOneMonitorLeadsTheOtherWaits(t *testing.T) {
	s := newStack(t)
	vars := monitorVars(t, s)
	vars["LOG_LEVEL"] = "info"
	a := startFunction(t, "monitor", withVar(vars, "POD_NAME", "monitor-a"))
	waitLog(t, a, "leading: monitoring job pods", 20*time.Second)
	b := startFunction(t, "monitor", withVar(vars, "POD_NAME", "monitor-b"))
	waitLog(t, b, "another monitor leads; waiting", 20*time.Second)
	if strings.Contains(b.logs.String(), "leading: monitoring") {
		t.Fatal("two monitors lead at once")
	}
	_ = a.cmd.Process.Signal(interrupt)
	_ = a.cmd.Wait()
	waitLog(t, b, "leading: monitoring job pods", 30*time.Second)
}

func withVar(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for key, val := range m {
		if key != k {
			out[key] = val
		}
	}
	return out
}

// The monitor is killed 10 times while 1,000 jobs end: afterwards Core has every job's final state
// exactly once, and no job's states go backwards.
func TestKilledMonitorLosesNoFinalState(t *testing.T) {
	if testing.Short() {
		t.Skip("long fault test")
	}
	s := newStack(t)
	ns := s.vars["JOBS_NAMESPACE"]
	vars := withVar(monitorVars(t, s), "POD_NAME", "monitor-0")
	const n = 1000
	createJobs(t, ns, n)
	mon := startFunction(t, "monitor", vars)
	envtest.Eventually(t, 120*time.Second, func() error {
		pods, err := env.Clientset.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: kube.LabelJobID})
		if err != nil {
			return err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		if running < n {
			return fmt.Errorf("%d of %d pods running", running, n)
		}
		return nil
	})
	// End the jobs in 10 waves, killing the monitor (no clean shutdown) in each and starting it again.
	for wave := range 10 {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := wave*100 + w; i < wave*100+100; i += 4 {
					code := strconv.Itoa(i % 2)
					patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, localenv.ExitCodeAnnotation, code)
					if _, err := env.Clientset.CoreV1().Pods(ns).Patch(context.Background(), kube.PodName(jobID(i), 0), "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		time.Sleep(300 * time.Millisecond)
		mon.kill()
		wg.Wait()
		mon = startFunction(t, "monitor", vars)
	}
	envtest.Eventually(t, 180*time.Second, func() error {
		finals := 0
		for _, u := range s.core.Updates() {
			if u.Update.State != nil && u.Update.State.Final() {
				finals++
			}
		}
		if finals < n {
			return fmt.Errorf("%d of %d final states at Core", finals, n)
		}
		return nil
	})
	time.Sleep(3 * time.Second) // a few resyncs: nothing more may arrive
	byJob := map[string][]ucloud.JobState{}
	for _, u := range s.core.Updates() {
		if u.Update.State != nil {
			byJob[u.ID] = append(byJob[u.ID], *u.Update.State)
		}
	}
	rank := map[ucloud.JobState]int{ucloud.StateInQueue: 0, ucloud.StateRunning: 1, ucloud.StateSuccess: 2, ucloud.StateFailure: 2}
	for i := range n {
		states := byJob[jobID(i)]
		want := ucloud.StateSuccess
		if i%2 == 1 {
			want = ucloud.StateFailure
		}
		finals := 0
		for k, st := range states {
			if st.Final() {
				finals++
				if st != want {
					t.Fatalf("job %d ended %s, want %s (%v)", i, st, want, states)
				}
			}
			if k > 0 && rank[st] <= rank[states[k-1]] {
				t.Fatalf("job %d states go backwards or repeat: %v", i, states)
			}
		}
		if finals != 1 {
			t.Fatalf("job %d: %d final states at Core: %v", i, finals, states)
		}
	}
	figure(t, "1,000 jobs ended while the monitor was killed 10 times: every final state reported exactly once")
}

func jobID(i int) string { return strconv.Itoa(700000 + i) }

// createJobs makes n single-rank jobs' objects as job-create does, 8 at a time.
func createJobs(t *testing.T, ns string, n int) {
	t.Helper()
	catalog, _ := jobs.LoadCatalog("")
	p, _ := catalog.Product(ucloud.ProductReference{ID: "u1-standard-1", Category: "u1-standard"})
	var batch ucloud.Job
	apps.Load("batch").Apply(&batch)
	app, err := jobs.ResolveApplication(batch, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				job := ucloud.Job{ID: jobID(i), Owner: ucloud.ResourceOwner{CreatedBy: "alice#1"}, Specification: ucloud.JobSpecification{Replicas: 1}}
				objs, err := jobs.MakeObjects(job, p, app, jobs.Settings{Namespace: ns})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := env.Clientset.CoreV1().Pods(ns).Create(context.Background(), objs.Pods[0], metav1.CreateOptions{}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
