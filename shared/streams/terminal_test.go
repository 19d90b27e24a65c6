package streams_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/coreauth"
	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/eventauth"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/jobevents"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/monitor"
	"github.com/ucloud-im/knative-im/shared/shellsession"
	"github.com/ucloud-im/knative-im/shared/status"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/shared/streams"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/envtest"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// terminalIdle is the rig's TERMINAL_IDLE_TIMEOUT, for the monitor and job-streams alike.
const terminalIdle = 4 * time.Second

// slowTerminal is the integrated terminal whose pod KWOK keeps Pending for a moment, as an image pull
// would: the browser then sees the waiting text before the shell.
type slowTerminal struct{ iapps.Terminal }

func (s slowTerminal) Build(job iapps.Job, cfg json.RawMessage) (iapps.Objects, error) {
	objs, err := s.Terminal.MakeObjects(job, cfg)
	if err == nil {
		objs.Pod.Annotations["pod-ready.stage.kwok.x-k8s.io/delay"] = "2s"
	}
	return objs, err
}

// terminalRig: config-update's openTerminalInFolder (its own database role), job-streams' shell socket
// (its own), the monitor -> status-report -> strict fake Core (theirs), on the real apiserver with KWOK's
// exec and a fresh database.
type terminalRig struct {
	t        *testing.T
	ns       string
	core     *fakecore.Core
	owner    *storetest.DB
	open     *httptest.Server // config-update's routes, behind Core's token check
	streams  *httptest.Server
	registry *iapps.Registry
	monDB    *store.Store
	sink     string
	sender   envtest.EventSender
}

func newTerminalRig(t *testing.T) *terminalRig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	env.Cluster(t)
	r := &terminalRig{t: t, ns: env.Namespace(t), core: fakecore.Start(t)}
	env.FilesystemClaim(t, r.ns, iapps.FilesystemVolume)
	r.core.PersonalDrive("1", "alice#1234")
	r.core.PersonalDrive("2", "bob#1")
	r.core.PersonalDrive("60", "carol#1") // a drive alice may not edit
	r.owner = storetest.New(t, env.Database(t))
	update := r.owner.Open(t, store.FnConfigUpdate)
	streamsDB := r.owner.Open(t, store.FnJobStreams)
	r.monDB = r.owner.Open(t, store.FnMonitor)
	client, err := r.core.Client(ucloud.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.registry = iapps.NewRegistry(slowTerminal{iapps.Terminal{IdleTimeout: terminalIdle}})

	shell := &streams.ShellSocket{Sessions: &shellsession.Store{Pool: streamsDB.Pool}, Kube: env.Clientset, Config: env.Config, Namespace: r.ns,
		InitWait: 3 * time.Second, Leases: iapps.Leases{Pool: streamsDB.Pool}, TerminalIdle: terminalIdle,
		RenewEvery: 200 * time.Millisecond, SpinnerEvery: 100 * time.Millisecond, PodCheckEvery: 200 * time.Millisecond}
	r.streams = httptest.NewServer(streams.Routes(provider, nil, shell))
	t.Cleanup(r.streams.Close)

	svc := &iapps.Service{Provider: provider, Registry: r.registry, Store: &iapps.ConfigStore{Pool: update.Pool}, Core: client,
		Kube: env.Clientset, Namespace: r.ns, Access: &drives.Access{Store: &drives.Store{Pool: update.Pool}, Core: client}}
	opener := &iapps.TerminalOpener{Service: svc, Leases: iapps.Leases{Pool: update.Pool}, Sessions: &shellsession.Store{Pool: update.Pool},
		ShellURL: shellsession.WebSocketURL(r.streams.URL)}
	key, err := coreauth.LoadPublicKey("", string(r.core.PublicKeyPEM()))
	if err != nil {
		t.Fatal(err)
	}
	r.open = httptest.NewServer((&fn.Server{Routes: opener.Routes(), Auth: coreauth.NewVerifier(key, time.Second)}).Handler())
	t.Cleanup(r.open.Close)

	// The monitor's states reach the fake Core through status-report, as in a cluster.
	logs := fn.NewLogger(io.Discard, "test", "info")
	rep := status.NewReporter(r.owner.Open(t, store.FnStatusReport).Pool, client, logs)
	go rep.Run(ctx)
	r.sender = env.MonitorSender(t)
	auth := env.EventVerifier(t, r.sender.Policy(jobevents.Type), eventauth.Options{})
	srv := httptest.NewServer((&fn.Server{Events: rep.Handle, EventAuth: auth, Config: fn.Config{MaxBodyBytes: 1 << 20}, Logger: logs}).Handler())
	t.Cleanup(srv.Close)
	r.sink = srv.URL
	return r
}

// startMonitor runs a monitor (a fresh process's worth of state) until the returned stop is called.
func (r *terminalRig) startMonitor() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sink, err := monitor.NewEventSink(r.sink, r.sender.Tokens)
	if err != nil {
		r.t.Fatal(err)
	}
	client, _ := r.core.Client(ucloud.ClientOptions{})
	m := &monitor.Monitor{Kube: env.Clientset, Namespace: r.ns, Pool: r.monDB.Pool, Registry: r.registry,
		Drives: &drives.Access{Store: &drives.Store{Pool: r.monDB.Pool}, Core: client}, DriveRefresh: time.Hour,
		Sink: sink, Log: fn.NewLogger(io.Discard, "monitor", "info"), Resync: 300 * time.Millisecond}
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// openTerminal is core2's openTerminalInFolder for username, as Core sends it (its token, ucloud-username).
func (r *terminalRig) openTerminal(username string, folders ...string) (int, []byte) {
	r.t.Helper()
	items := make([]any, len(folders))
	for i, f := range folders {
		items[i] = map[string]string{"folder": f}
	}
	call, err := r.core.CallProvider(context.Background(), r.open.URL, "POST", iapps.TerminalOpenPath(provider), username, map[string]any{"items": items})
	if err != nil {
		r.t.Fatal(err)
	}
	return call.Status, call.Body
}

func (r *terminalRig) session(username, folder string) ucloud.OpenSession {
	r.t.Helper()
	status, body := r.openTerminal(username, folder)
	var resp ucloud.BulkResponse[ucloud.OpenSession]
	if status != http.StatusOK || json.Unmarshal(body, &resp) != nil || len(resp.Responses) != 1 {
		r.t.Fatalf("openTerminalInFolder %s: %d %s", folder, status, body)
	}
	return resp.Responses[0]
}

func (r *terminalRig) pod(jobID string) (*corev1.Pod, error) {
	return env.Clientset.CoreV1().Pods(r.ns).Get(context.Background(), kube.PodName(jobID, 0), metav1.GetOptions{})
}

func (r *terminalRig) states(jobID string) []string {
	var out []string
	for _, u := range r.core.Updates() {
		if u.ID == jobID && u.Update.State != nil {
			out = append(out, string(*u.Update.State))
		}
	}
	return out
}

func (tm *terminal) text() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.out.String()
}

// The "done when": openTerminalInFolder on a fresh user registers the terminal job once, shows
// the waiting text, then a working shell; keystrokes keep it alive past the idle time (across a restart of
// the monitor, which finds the lease in PostgreSQL); without them the pod stops and Core has the job
// SUSPENDED, and the browser is told the session expired; opening again wakes it.
func TestIntegratedTerminalOpensWaitsStaysAliveWhileTypedAndSuspendsWhenIdle(t *testing.T) {
	r := newTerminalRig(t)
	stop := r.startMonitor()
	defer func() { stop() }()

	opened := time.Now()
	s := r.session("alice#1234", "/1/Home/thesis")
	if s.Type != "shell" || s.JobID == "" || s.Rank != 0 || s.DomainOverride != "ws"+strings.TrimPrefix(r.streams.URL, "http") || len(s.SessionIdentifier) != 64 {
		t.Fatalf("session %+v", s)
	}
	env.PodExec(t, r.ns, kube.PodName(s.JobID, 0), map[string]string{"PS1": "$ ", "JOB_MARK": "terminal-" + s.JobID})
	reg := r.core.Registered()
	if len(reg) != 1 || *reg[0].CreatedBy != "alice#1234" || reg[0].Spec.Product.ID != "terminal" {
		t.Fatalf("Core registered %+v", reg)
	}

	sh, tm := dialShell(t, s, "alice#1234")
	defer sh.Close()
	envtest.Eventually(t, 15*time.Second, func() error {
		if !strings.Contains(tm.text(), streams.WaitingText) {
			return fmt.Errorf("no waiting text yet: %q", tm.text())
		}
		return nil
	})
	tm.waitLine(t, "terminal-"+s.JobID, "echo $JOB_MARK\r")
	t.Logf("openTerminalInFolder -> a command answered in the shell, the waiting screen shown meanwhile: %s", time.Since(opened).Round(time.Millisecond))
	if out := tm.text(); !strings.HasPrefix(out, "\x1b[2J\x1b[H"+streams.WaitingText+".") {
		t.Fatalf("the waiting screen: %q", out[:min(len(out), 80)])
	}
	first, err := r.pod(s.JobID)
	if err != nil {
		t.Fatal(err)
	}

	// Opening again, in the same drive and with the terminal running: the same job, nothing registered
	// again, the running pod (and so the open shell) untouched.
	again := r.session("alice#1234", "/1/Other")
	if again.JobID != s.JobID || len(r.core.Registered()) != 1 {
		t.Fatalf("second open: job %s (first %s), %d registered", again.JobID, s.JobID, len(r.core.Registered()))
	}

	// Keystrokes for twice the idle time, the monitor restarted half-way: the pod stays, the same one.
	deadline := time.Now().Add(2 * terminalIdle)
	restarted := false
	for i := 0; time.Now().Before(deadline); i++ {
		if _, err := sh.Input("echo tick\r"); err != nil {
			t.Fatal(err)
		}
		if !restarted && time.Until(deadline) < terminalIdle {
			stop()
			stop = r.startMonitor()
			restarted = true
		}
		time.Sleep(300 * time.Millisecond)
	}
	if p, err := r.pod(s.JobID); err != nil || p.UID != first.UID || p.DeletionTimestamp != nil {
		t.Fatalf("after %s of typing the terminal's pod is %v (%v)", 2*terminalIdle, p, err)
	}
	if slices.Contains(r.states(s.JobID), string(ucloud.StateSuspended)) {
		t.Fatalf("suspended while typed in: %v", r.states(s.JobID))
	}
	tm.waitLine(t, "terminal-"+s.JobID, "echo $JOB_MARK\r") // still the working shell

	// No keystrokes: past the idle time the monitor stops the pod and Core has the job SUSPENDED; the
	// browser is told and the socket closes.
	idleFrom := time.Now()
	envtest.Eventually(t, 3*terminalIdle, func() error {
		if _, err := r.pod(s.JobID); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the terminal's pod is still there (%v)", err)
		}
		if st := r.states(s.JobID); len(st) == 0 || st[len(st)-1] != string(ucloud.StateSuspended) {
			return fmt.Errorf("Core has %v", st)
		}
		return nil
	})
	t.Logf("last keystroke -> pod gone and SUSPENDED at Core: %s (idle time %s, monitor resync 300 ms)", time.Since(idleFrom).Round(time.Millisecond), terminalIdle)
	if gone := time.Since(idleFrom); gone < terminalIdle-time.Second {
		t.Fatalf("stopped %s after the last keystroke, before the idle time %s", gone, terminalIdle)
	}
	select {
	case <-tm.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the socket stayed open after the terminal stopped")
	}
	if !strings.Contains(tm.text(), streams.ExpiredText) {
		t.Fatalf("no expiry message: %q", tm.text())
	}

	// Opening it again wakes it: the same job, a new pod, a shell.
	woken := r.session("alice#1234", "/1/Home")
	if woken.JobID != s.JobID || len(r.core.Registered()) != 1 {
		t.Fatalf("woken: job %s, %d registered", woken.JobID, len(r.core.Registered()))
	}
	sh2, tm2 := dialShell(t, woken, "alice#1234")
	defer sh2.Close()
	tm2.waitLine(t, "terminal-"+s.JobID, "echo $JOB_MARK\r")
}

// A shell that ends (the user types exit) is reattached while the terminal lives: a new shell, same socket.
func TestIntegratedTerminalReattachesAfterTheShellExits(t *testing.T) {
	r := newTerminalRig(t)
	stop := r.startMonitor()
	defer stop()
	s := r.session("alice#1234", "/1")
	env.PodExec(t, r.ns, kube.PodName(s.JobID, 0), map[string]string{"PS1": "$ ", "JOB_MARK": "terminal-" + s.JobID})
	sh, tm := dialShell(t, s, "alice#1234")
	defer sh.Close()
	tm.waitLine(t, "terminal-"+s.JobID, "echo $JOB_MARK\r")
	if _, err := sh.Input("export GONE=first-shell; exit\r"); err != nil {
		t.Fatal(err)
	}
	tm.waitLine(t, "new-shell:"+s.JobID, "echo new-shell${GONE}:$JOB_MARK | sed s/terminal-//\r")
	select {
	case err := <-tm.done:
		t.Fatalf("the socket closed: %v", err)
	default:
	}
}
