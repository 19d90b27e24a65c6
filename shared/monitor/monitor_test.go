package monitor_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/eventauth"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/jobevents"
	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/monitor"
	"github.com/ucloud-im/knative-im/shared/status"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/apps"
	"github.com/ucloud-im/knative-im/test/env/localenv"
	"github.com/ucloud-im/knative-im/test/envtest"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }

// rig: monitor -> CloudEvents -> status-report -> strict fake Core, on a fresh namespace and database.
type rig struct {
	t  *testing.T
	ns string
	db *store.Store // the monitor's role
	// update is config-update's role (for integrated apps), owner the schema owner's pool (the test's own rows).
	update *store.Store
	owner  *pgxpool.Pool
	core   *fakecore.Core
	sink   string
	rep    *status.Reporter
	// monitor is the identity the monitor sends with, the only one status-report accepts.
	monitor envtest.EventSender
	// sent counts, per job, the changes the rig's monitors tried to send.
	sent *sendCounter
}

// sendCounter is a monitor's sink that counts every change it is asked to send, per job.
type sendCounter struct {
	mu  sync.Mutex
	per map[string]int
}

type countingSink struct {
	monitor.Sender
	c *sendCounter
}

func (s countingSink) Send(ctx context.Context, e event.Event) error {
	s.c.mu.Lock()
	s.c.per[e.Subject()]++
	s.c.mu.Unlock()
	return s.Sender.Send(ctx, e)
}

func (c *sendCounter) of(jobIDs []string) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for _, id := range jobIDs {
		out[id] = c.per[id]
	}
	return out
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	env.Cluster(t) // before the database: without a cluster the test is skipped before PostgreSQL starts
	// Each function on its own role, as in a cluster: the monitor, status-report, config-update.
	sdb := storetest.New(t, env.Database(t))
	db := sdb.Open(t, store.FnMonitor)
	core := fakecore.Start(t)
	client, _ := core.Client(ucloud.ClientOptions{})
	logs := fn.NewLogger(io.Discard, "test", "info")
	rep := status.NewReporter(sdb.Open(t, store.FnStatusReport).Pool, client, logs)
	go rep.Run(ctx)
	sender := env.MonitorSender(t)
	auth := env.EventVerifier(t, sender.Policy(jobevents.Type), eventauth.Options{})
	srv := httptest.NewServer((&fn.Server{Events: rep.Handle, EventAuth: auth, Config: fn.Config{MaxBodyBytes: 1 << 20}, Logger: logs}).Handler())
	t.Cleanup(srv.Close)
	ns := env.Namespace(t)
	env.FilesystemClaim(t, ns, iapps.FilesystemVolume)
	core.PersonalDrive("1", "alice#1") // the drive of the tests' integrated applications
	return &rig{t: t, ns: ns, db: db, update: sdb.Open(t, store.FnConfigUpdate), owner: sdb.OwnerPool(t), core: core, sink: srv.URL, rep: rep, monitor: sender,
		sent: &sendCounter{per: map[string]int{}}}
}

// start runs a monitor until the returned stop is called; adjust, when given, changes its settings first.
func (r *rig) start(adjust ...func(*monitor.Monitor)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sink, err := monitor.NewEventSink(r.sink, r.monitor.Tokens)
	if err != nil {
		r.t.Fatal(err)
	}
	m := &monitor.Monitor{Kube: env.Clientset, Namespace: r.ns, Pool: r.db.Pool, Registry: iapps.BuiltinApps(iapps.AppEnv{}), Drives: r.access(r.db), DriveRefresh: driveRefresh,
		Sink: countingSink{Sender: sink, c: r.sent}, Log: fn.NewLogger(io.Discard, "monitor", "info"), Resync: 300 * time.Millisecond}
	for _, a := range adjust {
		a(m)
	}
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// settled says whether nothing is in flight for the jobs at either hop: the monitor recorded every change
// it sent as accepted (job_state's sent_seq = last_seq), and status-report delivered every outbox row.
func (r *rig) settled(jobIDs []string) error {
	var inflight, undelivered int
	ctx := context.Background()
	if err := r.owner.QueryRow(ctx, "SELECT count(*) FROM job_state WHERE job_id = ANY($1) AND sent_seq > last_seq", jobIDs).Scan(&inflight); err != nil {
		return err
	}
	if err := r.owner.QueryRow(ctx, "SELECT count(*) FROM outbox WHERE job_id = ANY($1) AND delivered_at IS NULL", jobIDs).Scan(&undelivered); err != nil {
		return err
	}
	if inflight+undelivered > 0 {
		return fmt.Errorf("in flight: %d sent by the monitor but not recorded, %d in the outbox not delivered", inflight, undelivered)
	}
	return nil
}

// quietWindow spans eight of the rig's monitor resyncs (300 ms), each of which queues every unfinished job
// and integrated application again (the monitor's informer has no resync of its own: a finished job is
// reconciled again only on a pod event).
const quietWindow = 2500 * time.Millisecond

// quiet waits for a quiet period for the jobs and proves what it can of it: nothing was in flight at either
// hop when it began and when it ended (settled), the monitor tried to send nothing for them in between,
// and Core's updates for them did not change. So a duplicate that a resync would produce, or one
// queued in the outbox, fails the test (a Sleep then an "equal" check passed as soon as the lists were
// equal, and missed both). It cannot prove that no reconcile after the window would send.
func (r *rig) quiet(jobIDs ...string) {
	r.t.Helper()
	envtest.Eventually(r.t, 20*time.Second, func() error { return r.settled(jobIDs) })
	core := func() string {
		var b strings.Builder
		for _, id := range jobIDs {
			fmt.Fprintf(&b, "%s: %v (%s); ", id, r.states(id), r.statuses(id))
		}
		return b.String()
	}
	coreBefore, sentBefore := core(), r.sent.of(jobIDs)
	time.Sleep(quietWindow)
	if err := r.settled(jobIDs); err != nil {
		r.t.Fatalf("not quiet after %s: %v", quietWindow, err)
	}
	if got := r.sent.of(jobIDs); !maps.Equal(got, sentBefore) {
		r.t.Fatalf("the monitor sent again after the jobs had settled: sends per job %v, then %v", sentBefore, got)
	}
	if got := core(); got != coreBefore {
		r.t.Fatalf("Core got more after the jobs had settled: %s, then %s", coreBefore, got)
	}
}

// waitPhase waits until the job's rank's pod has the phase (the monitor may be down meanwhile).
func (r *rig) waitPhase(jobID string, rank int, phase corev1.PodPhase) {
	r.t.Helper()
	envtest.Eventually(r.t, 20*time.Second, func() error {
		p, err := env.Clientset.CoreV1().Pods(r.ns).Get(context.Background(), kube.PodName(jobID, rank), metav1.GetOptions{})
		if err != nil || p.Status.Phase != phase {
			return fmt.Errorf("pod %s not %s yet (%v)", kube.PodName(jobID, rank), phase, err)
		}
		return nil
	})
}

func (r *rig) states(jobID string) []string {
	var out []string
	for _, u := range r.core.Updates() {
		if u.ID == jobID && u.Update.State != nil {
			if u.Update.Timestamp <= 0 {
				r.t.Fatalf("update without timestamp: %+v", u)
			}
			out = append(out, string(*u.Update.State))
		}
	}
	return out
}

// statuses are the messages of the job's updates, to tell apart the paths that reported a state.
func (r *rig) statuses(jobID string) string {
	var out []string
	for _, u := range r.core.Updates() {
		if u.ID == jobID && u.Update.Status != nil {
			out = append(out, fmt.Sprintf("%q", *u.Update.Status))
		}
	}
	return strings.Join(out, ", ")
}

func (r *rig) waitStates(jobID, want string) {
	r.t.Helper()
	envtest.Eventually(r.t, 20*time.Second, func() error {
		if got := fmt.Sprint(r.states(jobID)); got != want {
			return fmt.Errorf("Core has %s for job %s, want %s (%s)", got, jobID, want, r.statuses(jobID))
		}
		return nil
	})
}

// createJob makes a job's objects as job-create does, with KWOK told to keep the pods Pending for a
// moment (so the queued state is observable) and the given allocation.
func (r *rig) createJob(id string, replicas int, alloc *ucloud.SimpleDuration) {
	r.t.Helper()
	catalog, _ := jobs.LoadCatalog("")
	job := ucloud.Job{ID: id, Owner: ucloud.ResourceOwner{CreatedBy: "alice#1"}, Specification: ucloud.JobSpecification{
		Product:  ucloud.ProductReference{ID: "u1-standard-1", Category: "u1-standard"},
		Replicas: replicas, TimeAllocation: alloc}}
	apps.Load("batch").Apply(&job)
	p, _ := catalog.Product(job.Specification.Product)
	app, err := jobs.ResolveApplication(job, jobs.WorkFolders(job))
	if err != nil {
		r.t.Fatal(err)
	}
	objs, err := jobs.MakeObjects(job, p, app, jobs.Settings{Namespace: r.ns})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, pod := range objs.Pods {
		pod.Annotations["pod-ready.stage.kwok.x-k8s.io/delay"] = "1500ms"
		if _, err := env.Clientset.CoreV1().Pods(r.ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *rig) exit(jobID string, rank int, code string) {
	r.t.Helper()
	envtest.Eventually(r.t, 20*time.Second, func() error {
		p, err := env.Clientset.CoreV1().Pods(r.ns).Get(context.Background(), kube.PodName(jobID, rank), metav1.GetOptions{})
		if err != nil || p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("pod not running yet (%v)", err)
		}
		return nil
	})
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, localenv.ExitCodeAnnotation, code)
	if _, err := env.Clientset.CoreV1().Pods(r.ns).Patch(context.Background(), kube.PodName(jobID, rank), "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		r.t.Fatal(err)
	}
}

func TestJobStatesReachCoreInOrderOnce(t *testing.T) {
	r := newRig(t)
	stop := r.start()
	defer stop()
	r.createJob("101", 2, nil)
	r.waitStates("101", "[IN_QUEUE RUNNING]")
	r.exit("101", 0, "0")
	r.exit("101", 1, "0")
	r.waitStates("101", "[IN_QUEUE RUNNING SUCCESS]")

	r.createJob("102", 2, nil)
	r.waitStates("102", "[IN_QUEUE RUNNING]")
	r.exit("102", 1, "137")
	r.waitStates("102", "[IN_QUEUE RUNNING FAILURE]")
	r.quiet("101", "102") // nothing more is reported after a final state
	r.waitStates("101", "[IN_QUEUE RUNNING SUCCESS]")
	r.waitStates("102", "[IN_QUEUE RUNNING FAILURE]")
}

func TestExpiredJobIsStoppedAndReported(t *testing.T) {
	r := newRig(t)
	stop := r.start()
	defer stop()
	r.createJob("201", 1, &ucloud.SimpleDuration{Seconds: 2})
	r.waitStates("201", "[IN_QUEUE RUNNING EXPIRED]")
	envtest.Eventually(t, 20*time.Second, func() error {
		pods, _ := env.Clientset.CoreV1().Pods(r.ns).List(context.Background(), metav1.ListOptions{LabelSelector: kube.LabelJobID + "=201"})
		if len(pods.Items) > 0 {
			return fmt.Errorf("%d pods left", len(pods.Items))
		}
		return nil
	})
}

// A transition while the monitor is down is reported after it restarts, and a final state only once.
func TestRestartedMonitorMissesNothingAndRepeatsNothing(t *testing.T) {
	r := newRig(t)
	stop := r.start()
	r.createJob("301", 1, nil)
	r.waitStates("301", "[IN_QUEUE RUNNING]")
	stop()
	r.exit("301", 0, "0")
	r.waitPhase("301", 0, corev1.PodSucceeded) // it ends while no monitor runs
	stop = r.start()
	r.waitStates("301", "[IN_QUEUE RUNNING SUCCESS]")
	stop()
	stop = r.start()
	defer stop()
	r.quiet("301")
	r.waitStates("301", "[IN_QUEUE RUNNING SUCCESS]")
}

// Deleting an integrated application's rank-0 pod brings it back, with its configuration.
func TestIntegratedAppPodComesBack(t *testing.T) {
	r := newRig(t)
	stop := r.start()
	defer stop()
	client, _ := r.core.Client(ucloud.ClientOptions{})
	svc := &iapps.Service{Provider: "k8s", Registry: iapps.BuiltinApps(iapps.AppEnv{}), Store: &iapps.ConfigStore{Pool: r.update.Pool}, Core: client, Kube: env.Clientset, Namespace: r.ns, Access: r.access(r.update)}
	err := svc.Update(context.Background(), "terminal", iapps.UpdateRequest{Principal: ucloud.ResourceOwner{CreatedBy: "alice#1"}, Config: []byte(`{"folders":["/1/Home"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	first, err := env.Clientset.CoreV1().Pods(r.ns).Get(context.Background(), "j-5000-job-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.waitStates("5000", "[IN_QUEUE RUNNING]")
	if err := svc.Restart(context.Background(), "terminal", iapps.RestartRequest{Principal: ucloud.ResourceOwner{CreatedBy: "alice#1"}}); err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, 20*time.Second, func() error {
		p, err := env.Clientset.CoreV1().Pods(r.ns).Get(context.Background(), "j-5000-job-0", metav1.GetOptions{})
		if err != nil || p.UID == first.UID || p.Annotations[kube.AnnotationIAppETag] != first.Annotations[kube.AnnotationIAppETag] || p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("pod not back yet (%v)", err)
		}
		return nil
	})
	// Core saw the application stop running and run again.
	envtest.Eventually(t, 20*time.Second, func() error {
		got := r.states("5000")
		if len(got) < 4 || got[len(got)-1] != "RUNNING" || got[2] == "RUNNING" {
			return fmt.Errorf("Core has %v", got)
		}
		return nil
	})
}

// chosenChange is the one change (a job's change to a state) a test's sink treats apart from the others.
type chosenChange struct {
	jobID string
	state ucloud.JobState
}

// is reports whether e carries the chosen change, with its sequence number.
func (c chosenChange) is(e event.Event) (seq int64, chosen bool, err error) {
	jobID, seq, u, err := jobevents.Parse(e)
	return seq, err == nil && jobID == c.jobID && u.State != nil && *u.State == c.state, err
}

// crashingSink delivers one chosen change and then hangs, as a monitor killed between sending a change and
// recording it.
type crashingSink struct {
	monitor.Sender
	chosenChange
	sent chan struct{}
}

func (c *crashingSink) Send(ctx context.Context, e event.Event) error {
	_, chosen, err := c.is(e)
	if err != nil {
		return err
	}
	if err := c.Sender.Send(ctx, e); err != nil || !chosen {
		return err
	}
	close(c.sent)
	<-ctx.Done()
	return ctx.Err()
}

// A monitor dies after its RUNNING event was accepted but before it recorded it; the job ends while it is
// down. The next monitor must send SUCCESS under a new sequence number: under the old one status-report
// would drop it as a duplicate of RUNNING, and Core would never hear the job ended.
func TestChangeWhileDownAfterUnrecordedSendIsReported(t *testing.T) {
	r := newRig(t)
	sink, err := monitor.NewEventSink(r.sink, r.monitor.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	crash := &crashingSink{Sender: sink, chosenChange: chosenChange{jobID: "302", state: ucloud.StateRunning}, sent: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	m := &monitor.Monitor{Kube: env.Clientset, Namespace: r.ns, Pool: r.db.Pool, Registry: iapps.BuiltinApps(iapps.AppEnv{}), Drives: r.access(r.db), DriveRefresh: driveRefresh,
		Sink: crash, Log: fn.NewLogger(io.Discard, "monitor", "info"), Resync: 300 * time.Millisecond}
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	r.createJob("302", 1, nil)
	select {
	case <-crash.sent:
	case <-time.After(30 * time.Second):
		t.Fatal("the monitor never sent RUNNING")
	}
	cancel()
	<-done
	r.waitStates("302", "[IN_QUEUE RUNNING]")
	r.exit("302", 0, "0")
	r.waitPhase("302", 0, corev1.PodSucceeded) // it ends while no monitor runs
	stop := r.start()
	defer stop()
	r.waitStates("302", "[IN_QUEUE RUNNING SUCCESS]")
}
