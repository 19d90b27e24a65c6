package status_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ucloud-im/knative-im/shared/eventauth"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/status"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/envtest"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }

type rig struct {
	t    *testing.T
	core *fakecore.Core
	db   *store.Store
	url  string
	// owner is the schema owner's pool, for what the test itself does to rows.
	owner *pgxpool.Pool
	// monitor is the one sender status-report accepts job state events from; monitorDB the monitor's role,
	// which commits outbox rows itself.
	monitor   envtest.EventSender
	monitorDB *store.Store
}

// newReporter is one status-report instance on the rig's database.
func (r *rig) newReporter() (*status.Reporter, string) {
	client, err := r.core.Client(ucloud.ClientOptions{BackoffBase: time.Millisecond, MaxAttempts: 2})
	if err != nil {
		r.t.Fatal(err)
	}
	rep := status.NewReporter(r.db.Pool, client, fn.NewLogger(io.Discard, "status-report", "info"))
	rep.MaxBackoff = 200 * time.Millisecond
	// As status.Main: verified tokens remembered (every refusal below is still decided by the verifier).
	auth := status.RememberVerified(env.EventVerifier(r.t, r.monitor.Policy(status.EventType), eventauth.Options{}))
	host := &fn.Server{Events: rep.Handle, EventAuth: auth, Config: fn.Config{MaxBodyBytes: 1 << 20}, Logger: fn.NewLogger(io.Discard, "status-report", "info")}
	srv := httptest.NewServer(host.Handler())
	r.t.Cleanup(srv.Close)
	return rep, srv.URL
}

func newRig(t *testing.T) *rig {
	env.Cluster(t) // before the database: without a cluster the test is skipped before PostgreSQL starts
	core := fakecore.Start(t)
	// status-report's own role: it reads, writes and deletes the outbox and nothing else.
	sdb := storetest.New(t, env.Database(t))
	return &rig{t: t, core: core, db: sdb.Open(t, store.FnStatusReport), owner: sdb.OwnerPool(t), monitor: env.MonitorSender(t),
		monitorDB: sdb.Open(t, store.FnMonitor)}
}

// send posts a job state event in binary mode, as the monitor, and returns the status.
func (r *rig) send(url, id, jobID string, seq int, state ucloud.JobState) int {
	t := r.t
	t.Helper()
	msg := "Your job is " + string(state)
	raw, _ := json.Marshal(ucloud.JobUpdate{State: &state, Status: &msg, Timestamp: time.Now().UnixMilli()})
	req, _ := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.monitor.Token(t))
	for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": id, "Ce-Source": status.EventSource,
		"Ce-Type": status.EventType, "Ce-Jobid": jobID, "Ce-Seq": strconv.Itoa(seq), "Ce-Time": time.Now().UTC().Format(time.RFC3339Nano)} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func states(core *fakecore.Core, jobID string) []string {
	var out []string
	for _, u := range core.Updates() {
		if u.ID == jobID && u.Update.State != nil {
			out = append(out, string(*u.Update.State))
		}
	}
	return out
}

func TestEventsReachCoreOnceInOrderWithTimestamps(t *testing.T) {
	r := newRig(t)
	rep, url := r.newReporter()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rep.Run(ctx)
	for i, s := range []ucloud.JobState{ucloud.StateInQueue, ucloud.StateRunning, ucloud.StateSuccess} {
		if code := r.send(url, fmt.Sprintf("ev-%d", i), "4242", i+1, s); code != http.StatusAccepted {
			t.Fatalf("event %d: %d", i, code)
		}
	}
	// The Broker redelivers: same event id, and another id for an already stored (job, seq).
	r.send(url, "ev-2", "4242", 3, ucloud.StateSuccess)
	r.send(url, "ev-other", "4242", 3, ucloud.StateSuccess)
	envtest.Eventually(t, 10*time.Second, func() error {
		if n, _ := rep.Pending(ctx); n != 0 {
			return fmt.Errorf("%d pending", n)
		}
		return nil
	})
	if got := fmt.Sprint(states(r.core, "4242")); got != "[IN_QUEUE RUNNING SUCCESS]" {
		t.Fatalf("Core got %s", got)
	}
	for _, u := range r.core.Updates() {
		if u.Update.Timestamp <= 0 {
			t.Fatalf("update without a real timestamp: %+v", u)
		}
	}
}

func TestBadEventsAreRefused(t *testing.T) {
	r := newRig(t)
	_, url := r.newReporter()
	for name, code := range map[string]int{
		"no seq":      r.sendRaw(url, map[string]string{"Ce-Jobid": "1"}, `{"state":"RUNNING","timestamp":1}`),
		"bad state":   r.sendRaw(url, map[string]string{"Ce-Jobid": "1", "Ce-Seq": "1"}, `{"state":"DONE","timestamp":1}`),
		"not JSON":    r.sendRaw(url, map[string]string{"Ce-Jobid": "1", "Ce-Seq": "1"}, `{"state":`),
		"no job id":   r.sendRaw(url, map[string]string{"Ce-Seq": "1"}, `{"state":"RUNNING","timestamp":1}`),
		"zero seq":    r.sendRaw(url, map[string]string{"Ce-Jobid": "1", "Ce-Seq": "0"}, `{"state":"RUNNING","timestamp":1}`),
		"wrong types": r.sendRaw(url, map[string]string{"Ce-Jobid": "1", "Ce-Seq": "1"}, `{"state":1}`),
	} {
		if code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, code)
		}
	}
	var n int
	if err := r.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM outbox").Scan(&n); err != nil || n != 0 {
		t.Fatalf("refused events stored %d rows (%v)", n, err)
	}
}

func (r *rig) sendRaw(url string, ext map[string]string, body string) int {
	t := r.t
	req, _ := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.monitor.Token(t))
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", "x")
	req.Header.Set("Ce-Source", status.EventSource)
	req.Header.Set("Ce-Type", status.EventType)
	for k, v := range ext {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Core answers 503 for a while: events are still accepted, nothing is lost, and afterwards every update
// arrives in per-job order.
func TestCoreOutageLosesNothing(t *testing.T) {
	r := newRig(t)
	rep, url := r.newReporter()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rep.Run(ctx)
	r.core.Fail("/api/jobs/control/update", http.StatusServiceUnavailable, 1000)
	order := []ucloud.JobState{ucloud.StateInQueue, ucloud.StateRunning, ucloud.StateFailure}
	for job := range 20 {
		for i, s := range order {
			if code := r.send(url, fmt.Sprintf("j%d-%d", job, i), fmt.Sprint(job), i+1, s); code != http.StatusAccepted {
				t.Fatalf("event accepted with Core down: %d", code)
			}
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n, _ := rep.Pending(ctx); n != 60 {
		t.Fatalf("%d pending while Core is down, want 60", n)
	}
	r.core.ClearFaults()
	envtest.Eventually(t, 15*time.Second, func() error {
		if n, _ := rep.Pending(ctx); n != 0 {
			return fmt.Errorf("%d pending after Core came back", n)
		}
		return nil
	})
	for job := range 20 {
		if got := fmt.Sprint(states(r.core, fmt.Sprint(job))); got != "[IN_QUEUE RUNNING FAILURE]" {
			t.Fatalf("job %d: Core got %s", job, got)
		}
	}
}

// Two instances draining at once deliver each row once.
func TestTwoDrainersDeliverEachRowOnce(t *testing.T) {
	r := newRig(t)
	a, url := r.newReporter()
	b, _ := r.newReporter()
	for job := range 150 {
		for i, s := range []ucloud.JobState{ucloud.StateInQueue, ucloud.StateRunning} {
			r.send(url, fmt.Sprintf("j%d-%d", job, i), fmt.Sprint(job), i+1, s)
		}
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, rep := range []*status.Reporter{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if n, _ := rep.Pending(ctx); n == 0 {
					return
				}
				if _, err := rep.Drain(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := len(r.core.Updates()); n != 300 {
		t.Fatalf("Core received %d updates for 300 rows", n)
	}
}

// An update Core refuses on its own is recorded, not retried forever, and does not hold back the others.
func TestRefusedUpdateDoesNotBlockTheRest(t *testing.T) {
	r := newRig(t)
	rep, url := r.newReporter()
	r.send(url, "a", "1", 1, ucloud.StateRunning)
	r.send(url, "b", "2", 1, ucloud.StateRunning)
	r.core.Fail("/api/jobs/control/update", http.StatusBadRequest, 2) // the batch, then job 1 alone
	if _, err := rep.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(states(r.core, "2")); got != "[RUNNING]" {
		t.Fatalf("job 2 held back: %s", got)
	}
	var rejected string
	if err := r.db.Pool.QueryRow(context.Background(), "SELECT coalesce(rejected, '') FROM outbox WHERE job_id = '1'").Scan(&rejected); err != nil || rejected == "" {
		t.Fatalf("refused row not recorded: %q %v", rejected, err)
	}
}

// Events arriving together share a transaction: 100 jobs' events sent at once, each twice (the Broker
// redelivers), from 2 status-report instances, are each acknowledged, stored once and reach Core once,
// in order per job.
func TestConcurrentEventsAreStoredOnceAndDeliveredInOrder(t *testing.T) {
	r := newRig(t)
	a, urlA := r.newReporter()
	_, urlB := r.newReporter()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Run(ctx)
	var wg sync.WaitGroup
	codes := make(chan int, 400)
	for job := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, s := range []ucloud.JobState{ucloud.StateRunning, ucloud.StateSuccess} {
				var inner sync.WaitGroup
				for _, url := range []string{urlA, urlB} { // the same event at both instances at once
					inner.Add(1)
					go func() {
						defer inner.Done()
						codes <- r.send(url, fmt.Sprintf("c%d-%d", job, i), fmt.Sprint(5000+job), i+1, s)
					}()
				}
				inner.Wait() // the monitor sends a job's next change only once the previous one was accepted
			}
		}()
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusAccepted {
			t.Fatalf("an event was answered %d", code)
		}
	}
	envtest.Eventually(t, 20*time.Second, func() error {
		if n, _ := a.Pending(ctx); n != 0 {
			return fmt.Errorf("%d pending", n)
		}
		return nil
	})
	var rows int
	if err := r.owner.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 200 {
		t.Fatalf("outbox holds %d rows for 200 events", rows)
	}
	for job := range 100 {
		if got := fmt.Sprint(states(r.core, fmt.Sprint(5000+job))); got != "[RUNNING SUCCESS]" {
			t.Fatalf("job %d: Core got %s", 5000+job, got)
		}
	}
}
