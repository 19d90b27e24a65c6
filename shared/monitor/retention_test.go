package monitor_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/monitor"
	"github.com/ucloud-im/knative-im/test/envtest"
)

// The monitor's retention (run as the monitor's role) removes a final job state older than the setting
// only once the job has no pods left and is not an integrated application's, and a job whose row went is
// never reported again: job 501 ended but its Succeeded pod is still there (its row stays: without it the
// monitor would report SUCCESS again), job 502 ended long ago without pods (its row goes), job 503 is an
// integrated application's (its row stays for config-update).
func TestRetentionRemovesOnlyFinalStatesOfJobsWithoutPods(t *testing.T) {
	r := newRig(t)
	stop := r.start()
	r.createJob("501", 1, nil)
	r.waitStates("501", "[IN_QUEUE RUNNING]")
	r.exit("501", 0, "0")
	r.waitStates("501", "[IN_QUEUE RUNNING SUCCESS]")
	stop()
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO job_state (job_id, last_state, last_seq, sent_seq, sent_state) VALUES ('502', 'FAILURE', 2, 2, 'FAILURE'), ('503', 'SUCCESS', 3, 3, 'SUCCESS')`,
		`INSERT INTO iapp_config (app, created_by, project, config, etag, job_id, state) VALUES ('terminal', 'bob#1', '', '{"folders":[]}', 'e1', '503', 'active')`,
		`UPDATE job_state SET updated_at = now() - interval '31 days'`,
		// What status-report's own retention will have done by then: Core's earlier updates are forgotten,
		// so a repeated report would reach Core again instead of being dropped as a duplicate.
		`DELETE FROM outbox`,
	} {
		if _, err := r.owner.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	defer r.start(retaining)()
	rowsLeft := func(want string) func() error {
		return func() error {
			var got string
			if err := r.owner.QueryRow(ctx, "SELECT coalesce(string_agg(job_id, ' ' ORDER BY job_id), '') FROM job_state").Scan(&got); err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("job_state holds [%s], want [%s]", got, want)
			}
			return nil
		}
	}
	envtest.Eventually(t, 10*time.Second, rowsLeft("501 503"))
	// Several whole sweeps pass with 501's pod still there, proven rather than slept through: a sweep visits
	// the jobs in id order, so each time a sentinel row 599 (final, old, no pods, no configuration) is gone,
	// a sweep that began after it was written went past 501 and kept it.
	for range 3 {
		if _, err := r.owner.Exec(ctx, `INSERT INTO job_state (job_id, last_state, last_seq, sent_seq, sent_state, updated_at)
			VALUES ('599', 'SUCCESS', 1, 1, 'SUCCESS', now() - interval '31 days')`); err != nil {
			t.Fatal(err)
		}
		envtest.Eventually(t, 10*time.Second, rowsLeft("501 503"))
	}
	// The job is terminated (its pods deleted): now its row goes, and nothing is reported again.
	if err := env.Clientset.CoreV1().Pods(r.ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: kube.LabelJobID + "=501"}); err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, 20*time.Second, rowsLeft("503"))
	r.quiet("501", "502", "503")
	r.waitStates("501", "[IN_QUEUE RUNNING SUCCESS]")
	r.waitStates("502", "[]")
	r.waitStates("503", "[]")
}

// The monitor's retention (its role) removes the idle lease of a terminal that ended (its job is no longer
// an integrated application's) once older than the setting; a registered terminal's lease stays however old
// (the idle rule reads it), and a recent one stays.
func TestRetentionRemovesTheLeasesOfEndedTerminals(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO terminal_lease (job_id, last_activity) VALUES ('601', now() - interval '31 days'), ('602', now() - interval '31 days'), ('603', now() - interval '1 day')`,
		`INSERT INTO iapp_config (app, created_by, project, config, etag, job_id, state) VALUES ('terminal', 'carol#1', '', '{"folders":[]}', 'e1', '602', 'active')`,
	} {
		if _, err := r.owner.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	defer r.start(retaining)()
	envtest.Eventually(t, 10*time.Second, func() error {
		var got string
		if err := r.owner.QueryRow(ctx, "SELECT coalesce(string_agg(job_id, ' ' ORDER BY job_id), '') FROM terminal_lease").Scan(&got); err != nil {
			return err
		}
		if got != "602 603" {
			return fmt.Errorf("terminal_lease holds [%s], want [602 603]", got)
		}
		return nil
	})
}

// retaining is a retention of 30 days, swept every 200 ms.
func retaining(m *monitor.Monitor) {
	m.Retention, m.RetentionEvery = 30*24*time.Hour, 200*time.Millisecond
}
