package streams_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/coreauth"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/shellsession"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/shared/streams"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// shellFixture: job-control (issuing sessions as its own database role) and job-streams (taking them as
// its own) served in this process, a running job pod whose exec KWOK runs here, and the fake Core.
type shellFixture struct {
	ns, id    string
	core      *fakecore.Core
	control   *httptest.Server
	streams   *httptest.Server
	sessions  shellsession.Store
	owner     *storetest.DB
	streamsDB *store.Store
}

func newShellFixture(t *testing.T, ttl time.Duration) *shellFixture {
	t.Helper()
	f := &shellFixture{ns: env.Namespace(t), id: strconv.FormatInt(time.Now().UnixNano()%1e9, 10), core: fakecore.Start(t)}
	f.owner = storetest.New(t, env.Database(t))
	controlDB := f.owner.Open(t, store.FnJobControl)
	f.streamsDB = f.owner.Open(t, store.FnJobStreams)
	f.sessions = shellsession.Store{Pool: controlDB.Pool, TTL: ttl}
	runJobPod(t, f.ns, f.id, 0)

	key, err := coreauth.LoadPublicKey("", string(f.core.PublicKeyPEM()))
	if err != nil {
		t.Fatal(err)
	}
	shell := &streams.ShellSocket{Sessions: &shellsession.Store{Pool: f.streamsDB.Pool}, Kube: env.Clientset, Config: env.Config,
		Namespace: f.ns, InitWait: 3 * time.Second}
	f.streams = httptest.NewServer(streams.Routes(provider, nil, shell))
	t.Cleanup(f.streams.Close)
	svc := &jobs.Service{Provider: provider, Shells: &f.sessions, ShellURL: jobs.WebSocketURL(f.streams.URL)}
	f.control = httptest.NewServer((&fn.Server{Routes: svc.ControlRoutes(), Auth: coreauth.NewVerifier(key, time.Second)}).Handler())
	t.Cleanup(f.control.Close)
	return f
}

// runJobPod makes rank's pod of job id, Running, whose exec runs here with JOB_MARK=<id>-<rank>.
func runJobPod(t *testing.T, ns, id string, rank int) {
	t.Helper()
	name := kube.PodName(id, rank)
	env.PodExec(t, ns, name, map[string]string{"JOB_MARK": fmt.Sprintf("%s-%d", id, rank), "PS1": "$ "})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: kube.JobLabels(id, rank, "")},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: kube.ContainerName, Image: "ubuntu", Command: []string{"sleep", "inf"}}}},
	}
	if _, err := env.Clientset.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, ns, name, corev1.PodRunning)
}

// openSession is Core's interactiveSession SHELL for rank of job id, answered by job-control.
func (f *shellFixture) openSession(t *testing.T, id string, rank int) ucloud.OpenSession {
	t.Helper()
	job := ucloud.Job{ID: id, Specification: ucloud.JobSpecification{Replicas: 1}, Status: ucloud.JobStatus{State: ucloud.StateRunning}}
	call, err := f.core.CallProvider(context.Background(), f.control.URL, "POST", "/ucloud/"+provider+"/jobs/interactiveSession", "alice#1234",
		map[string]any{"items": []any{map[string]any{"job": job, "rank": rank, "sessionType": "SHELL", "target": nil}}})
	if err != nil || call.Status != http.StatusOK {
		t.Fatalf("interactiveSession SHELL: %d %s %v", call.Status, call.Body, err)
	}
	var resp ucloud.BulkResponse[ucloud.OpenSession]
	if err := json.Unmarshal(call.Body, &resp); err != nil || len(resp.Responses) != 1 {
		t.Fatalf("answer %s: %v", call.Body, err)
	}
	return resp.Responses[0]
}

// terminal collects a shell's data frames and the acks by streamId.
type terminal struct {
	sh   *fakecore.Shell
	mu   sync.Mutex
	out  strings.Builder
	acks map[string]bool
	init bool
	done chan error
}

func attach(sh *fakecore.Shell) *terminal {
	tm := &terminal{sh: sh, acks: map[string]bool{}, done: make(chan error, 1)}
	go func() {
		for {
			fr, err := sh.Next()
			if err != nil {
				tm.done <- err
				return
			}
			tm.mu.Lock()
			switch fr.Payload.Type {
			case "data":
				tm.out.WriteString(fr.Payload.Data)
			case "ack":
				tm.acks[fr.StreamID] = true
			case "initialize":
				tm.init = true
			}
			tm.mu.Unlock()
		}
	}()
	return tm
}

// dialShell opens the browser's socket of session s as user, attaches a terminal to it and initializes it
// at 80x24 with the session's identifier. The caller closes the shell.
func dialShell(t *testing.T, s ucloud.OpenSession, user string) (*fakecore.Shell, *terminal) {
	t.Helper()
	sh, err := fakecore.OpenShell(context.Background(), s, provider, user)
	if err != nil {
		t.Fatal(err)
	}
	tm := attach(sh)
	if _, err := sh.Initialize(s.SessionIdentifier, 80, 24); err != nil {
		sh.Close()
		t.Fatal(err)
	}
	return sh, tm
}

var escapes = regexp.MustCompile(`\x1b(\[[0-9;?]*[a-zA-Z]|\][^\x07]*\x07)`)

// lines is the terminal's output without escapes, line by line.
func (tm *terminal) lines() []string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return strings.Split(strings.ReplaceAll(escapes.ReplaceAllString(tm.out.String(), ""), "\r", ""), "\n")
}

// waitLine waits for an output line that is want, or ends with it after a prompt. KWOK may apply the first
// size only after the shell's first command, so a command is typed again while it is not seen.
func (tm *terminal) waitLine(t *testing.T, want, retype string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range tm.lines() {
			if l = strings.TrimSpace(l); l == want || strings.HasSuffix(l, "$ "+want) || strings.HasSuffix(l, "# "+want) {
				return
			}
		}
		if retype != "" {
			if _, err := tm.sh.Input(retype); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(400 * time.Millisecond)
	}
	t.Fatalf("no line %q in:\n%s", want, strings.Join(tm.lines(), "\n"))
}

// The browser opens a shell as UCloud's web client does: the session from interactiveSession SHELL, the
// socket at domainOverride, initialize 80x24, `stty size; echo hello`, a resize to 120x40 seen by stty.
func TestShellSessionRunsCommandsWithTheBrowsersSize(t *testing.T) {
	f := newShellFixture(t, 0)
	s := f.openSession(t, f.id, 0)
	if s.Type != "shell" || s.JobID != f.id || s.Rank != 0 || s.DomainOverride != "ws"+strings.TrimPrefix(f.streams.URL, "http") || len(s.SessionIdentifier) != 64 {
		t.Fatalf("session %+v", s)
	}
	sh, tm := dialShell(t, s, "alice#1234")
	defer sh.Close()
	in, err := sh.Input("stty size; echo hello\r")
	if err != nil {
		t.Fatal(err)
	}
	tm.waitLine(t, "24 80", "stty size; echo hello\r")
	tm.waitLine(t, "hello", "")
	tm.waitLine(t, f.id+"-0", "echo $JOB_MARK\r") // it is this job's rank's exec
	rs, err := sh.Resize(120, 40)
	if err != nil {
		t.Fatal(err)
	}
	tm.waitLine(t, "40 120", "stty size\r")
	tm.mu.Lock()
	if !tm.init || !tm.acks[in] || !tm.acks[rs] {
		t.Errorf("initialize answered %v, input acked %v, resize acked %v", tm.init, tm.acks[in], tm.acks[rs])
	}
	tm.mu.Unlock()

	// The shell ending closes the socket.
	if _, err := sh.Input("exit\r"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tm.done:
	case <-time.After(15 * time.Second):
		t.Fatal("socket open after the shell exited")
	}
}

// refused reports whether the socket was closed without a shell for this initialize.
func refused(t *testing.T, s ucloud.OpenSession, session string) (string, error) {
	t.Helper()
	sh, err := fakecore.OpenShell(context.Background(), s, provider, "mallory#1")
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	if _, err := sh.Initialize(session, 80, 24); err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for {
		fr, err := sh.Next()
		if err != nil {
			return text.String(), err
		}
		if fr.Payload.Type == "initialize" {
			t.Fatalf("session %q opened a shell", session)
		}
		text.WriteString(fr.Payload.Data)
	}
}

// What an attacker can send instead of a fresh identifier of its own job: a reused one, an expired one, a
// forged one, none in time, one of another job (whose pod is gone, or a pod made to look like it): each
// closes the socket and opens no shell.
func TestShellRefusesUsedExpiredForgedAndOtherJobsSessions(t *testing.T) {
	f := newShellFixture(t, 0)

	used := f.openSession(t, f.id, 0)
	sh, tm := dialShell(t, used, "alice#1234")
	envtestWait(t, func() bool { tm.mu.Lock(); defer tm.mu.Unlock(); return tm.init })
	sh.Close()

	policy := func(t *testing.T, err error) {
		t.Helper()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
			t.Fatalf("want close 1008, got %v", err)
		}
	}
	t.Run("reused", func(t *testing.T) {
		_, err := refused(t, used, used.SessionIdentifier)
		policy(t, err)
	})
	t.Run("forged", func(t *testing.T) {
		_, err := refused(t, used, strings.Repeat("ab", 32))
		policy(t, err)
	})
	t.Run("another session's identifier, changed by one character", func(t *testing.T) {
		fresh := f.openSession(t, f.id, 0)
		id := []byte(fresh.SessionIdentifier)
		id[0] ^= 1
		_, err := refused(t, fresh, string(id))
		policy(t, err)
	})
	t.Run("expired", func(t *testing.T) {
		short := newShellFixture(t, 500*time.Millisecond)
		s := short.openSession(t, short.id, 0)
		time.Sleep(1500 * time.Millisecond)
		_, err := refused(t, s, s.SessionIdentifier)
		policy(t, err)
	})
	t.Run("no initialize in time", func(t *testing.T) {
		s := f.openSession(t, f.id, 0)
		sh, err := fakecore.OpenShell(context.Background(), s, provider, "alice#1234")
		if err != nil {
			t.Fatal(err)
		}
		defer sh.Close()
		start := time.Now()
		if _, err := sh.Input("echo too early\r"); err != nil {
			t.Fatal(err)
		}
		if _, err := sh.Next(); err == nil {
			t.Fatal("a frame before initialize was answered")
		}
		if time.Since(start) < 2*time.Second {
			t.Fatalf("closed after %s, before the initialize wait", time.Since(start))
		}
	})
	t.Run("another job whose pod is gone", func(t *testing.T) {
		other := f.openSession(t, "999"+f.id, 0)
		text, err := refused(t, other, other.SessionIdentifier)
		if err == nil || !strings.Contains(text, "not running") {
			t.Fatalf("got %q, %v", text, err)
		}
	})
	t.Run("a pod named as the job's but labelled for another", func(t *testing.T) {
		id := "777" + f.id
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: kube.PodName(id, 0), Labels: kube.JobLabels(f.id, 0, "")},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: kube.ContainerName, Image: "x"}}},
		}
		if _, err := env.Clientset.CoreV1().Pods(f.ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPhase(t, f.ns, pod.Name, corev1.PodRunning)
		s := f.openSession(t, id, 0)
		text, err := refused(t, s, s.SessionIdentifier)
		if err == nil || !strings.Contains(text, "not running") {
			t.Fatalf("got %q, %v", text, err)
		}
	})
	// Nothing in the table can open a shell: it holds only hashes.
	var raw []byte
	if err := f.owner.OwnerPool(t).QueryRow(context.Background(), "SELECT id_hash FROM shell_session LIMIT 1").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), used.SessionIdentifier) || len(raw) != 32 {
		t.Fatalf("stored %x", raw)
	}
}

func envtestWait(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 15 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// interactiveSession SHELL is refused for what cannot have a shell: a rank the job lacks, an ended job.
func TestShellSessionRefusedForNoSuchRankOrEndedJob(t *testing.T) {
	f := newShellFixture(t, 0)
	for _, tc := range []struct {
		name  string
		rank  int
		state ucloud.JobState
	}{{"rank out of range", 3, ucloud.StateRunning}, {"ended job", 0, ucloud.StateSuccess}} {
		t.Run(tc.name, func(t *testing.T) {
			job := ucloud.Job{ID: f.id, Specification: ucloud.JobSpecification{Replicas: 1}, Status: ucloud.JobStatus{State: tc.state}}
			call, err := f.core.CallProvider(context.Background(), f.control.URL, "POST", "/ucloud/"+provider+"/jobs/interactiveSession", "alice#1234",
				map[string]any{"items": []any{map[string]any{"job": job, "rank": tc.rank, "sessionType": "SHELL"}}})
			if err != nil || call.Status != http.StatusBadRequest || !strings.Contains(string(call.Body), `"statusCode":400`) {
				t.Fatalf("%d %s %v", call.Status, call.Body, err)
			}
		})
	}
	var n int
	if err := f.owner.OwnerPool(t).QueryRow(context.Background(), "SELECT count(*) FROM shell_session").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d sessions stored (%v)", n, err)
	}
}
