package streams_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ucloud-im/knative-im/shared/coreauth"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/streams"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/env/localenv"
	"github.com/ucloud-im/knative-im/test/envtest"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }

const provider = "k8s"

// fixture is a job's pods in a namespace of their own, with a log file per rank, and the follow socket served
// in this process (so its goroutines can be counted).
type fixture struct {
	ns, id string
	logs   []*envtest.PodLog
	core   *fakecore.Core
	srv    *httptest.Server
}

func newFixture(t *testing.T, replicas int) *fixture {
	t.Helper()
	f := &fixture{ns: env.Namespace(t), id: strconv.FormatInt(time.Now().UnixNano()%1e9, 10), core: fakecore.Start(t)}
	for rank := range replicas {
		name := kube.PodName(f.id, rank)
		f.logs = append(f.logs, env.PodLog(t, f.ns, name))
		f.logs[rank].Append(t, fmt.Sprintf("rank %d started", rank))
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: kube.JobLabels(f.id, rank, ""),
				Annotations: map[string]string{kube.AnnotationReplicas: strconv.Itoa(replicas)}},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: kube.ContainerName, Image: "busybox", Command: []string{"sleep", "inf"}}}},
		}
		if _, err := env.Clientset.CoreV1().Pods(f.ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for rank := range replicas {
		waitPhase(t, f.ns, kube.PodName(f.id, rank), corev1.PodRunning)
	}
	key, err := coreauth.LoadPublicKey("", string(f.core.PublicKeyPEM()))
	if err != nil {
		t.Fatal(err)
	}
	follow := &streams.FollowSocket{Provider: provider, Verifier: coreauth.NewVerifier(key, time.Second), KeepAlive: 30 * time.Second,
		Follower: &streams.Follower{Kube: env.Clientset, Namespace: f.ns, TailLines: 100, EndGrace: time.Second, Retry: 200 * time.Millisecond}}
	f.srv = httptest.NewServer(streams.Routes(provider, follow, nil))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) job() ucloud.Job {
	return ucloud.Job{ID: f.id, Specification: ucloud.JobSpecification{Replicas: len(f.logs)}, Status: ucloud.JobStatus{State: ucloud.StateRunning}}
}

func waitPhase(t *testing.T, ns, name string, want corev1.PodPhase) {
	t.Helper()
	envtest.Eventually(t, 30*time.Second, func() error {
		pod, err := env.Clientset.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pod.Status.Phase != want {
			return fmt.Errorf("pod %s is %s", name, pod.Status.Phase)
		}
		return nil
	})
}

// reader collects a follow socket's frames on a channel.
func reader(fl *fakecore.Follow) <-chan fakecore.FollowFrame {
	ch := make(chan fakecore.FollowFrame, 100)
	go func() {
		defer close(ch)
		for {
			fr, err := fl.Next()
			if err != nil {
				return
			}
			ch <- fr
		}
	}()
	return ch
}

// Core follows a 2-rank job: each rank's log (its tail, then what is appended) arrives in order per rank,
// every line within a second of being written; when the job ends Core gets the response frame and the
// socket closes.
func TestFollowStreamsEachRankInOrderAndEndsWithTheJob(t *testing.T) {
	f := newFixture(t, 2)
	fl, resp, err := f.core.Follow(context.Background(), f.srv.URL, provider, f.job())
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	if resp.Header.Get("ucloud-no-bearer") != "true" {
		t.Errorf("upgrade answer lacks ucloud-no-bearer: %v", resp.Header)
	}
	frames := reader(fl)
	got := map[int]string{}
	session := ""
	// waitFor reads frames until every rank's text has the wanted suffix, at most within d.
	waitFor := func(d time.Duration, want map[int]string) {
		t.Helper()
		deadline := time.After(d)
		for {
			done := true
			for rank, w := range want {
				if !strings.HasSuffix(got[rank], w) {
					done = false
				}
			}
			if done {
				return
			}
			select {
			case fr, ok := <-frames:
				if !ok {
					t.Fatalf("socket closed; got %v", got)
				}
				if fr.Ping != "" {
					continue
				}
				if fr.Type != "message" || fr.Payload.Stdout == nil || fr.Payload.Stderr != nil || fr.Payload.Channel != nil {
					t.Fatalf("unexpected frame %+v", fr)
				}
				if session == "" {
					session = fr.Payload.StreamID
				} else if fr.Payload.StreamID != session {
					t.Fatalf("frames of two sessions: %q and %q", session, fr.Payload.StreamID)
				}
				got[fr.Payload.Rank] += *fr.Payload.Stdout
			case <-deadline:
				t.Fatalf("not within %s: want suffixes %v, got %v", d, want, got)
			}
		}
	}
	waitFor(10*time.Second, map[int]string{0: "rank 0 started\n", 1: "rank 1 started\n"})
	want := map[int]string{0: "rank 0 started\n", 1: "rank 1 started\n"}
	for i := range 5 {
		for rank, l := range f.logs {
			line := fmt.Sprintf("rank %d line %d", rank, i)
			l.Append(t, line)
			want[rank] += line + "\n"
		}
		waitFor(time.Second, map[int]string{0: fmt.Sprintf("rank 0 line %d\n", i), 1: fmt.Sprintf("rank 1 line %d\n", i)})
	}
	if got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("per-rank output out of order or duplicated:\ngot  %v\nwant %v", got, want)
	}
	if len(session) != 32 {
		t.Errorf("session id %q is not 16 random bytes", session)
	}

	// The job ends (both ranks exit 0): the response frame, then the socket closes.
	for rank := range f.logs {
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"0"}}}`, localenv.ExitCodeAnnotation)
		if _, err := env.Clientset.CoreV1().Pods(f.ns).Patch(context.Background(), kube.PodName(f.id, rank), types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(20 * time.Second)
	for {
		select {
		case fr, ok := <-frames:
			if !ok {
				t.Fatal("socket closed without the response frame")
			}
			if fr.Type != "response" {
				continue
			}
			if fr.Status != 200 || fr.Payload.StreamID != session || fr.Payload.Stdout != nil {
				t.Fatalf("response frame %+v", fr)
			}
			select {
			case fr, ok := <-frames:
				if ok {
					t.Fatalf("frame after the response: %+v", fr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("socket still open after the response")
			}
			return
		case <-deadline:
			t.Fatal("no response frame after the job ended")
		}
	}
}

// settledGoroutines waits until the goroutine count stops falling to at most want, and returns it.
func settledGoroutines(want int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(10 * time.Second); n > want && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(50 * time.Millisecond)
	}
	return n
}

// A follow Core leaves (its browser went) or cancels leaves no goroutine behind: counted before and after.
func TestCancelledFollowLeavesNoGoroutine(t *testing.T) {
	f := newFixture(t, 2)
	open := func() (*fakecore.Follow, <-chan fakecore.FollowFrame, string) {
		t.Helper()
		fl, _, err := f.core.Follow(context.Background(), f.srv.URL, provider, f.job())
		if err != nil {
			t.Fatal(err)
		}
		frames := reader(fl)
		select {
		case fr := <-frames:
			return fl, frames, fr.Payload.StreamID
		case <-time.After(10 * time.Second):
			t.Fatal("no first line")
		}
		return nil, nil, ""
	}
	// A first follow warms up what stays (the clients' connections to the apiserver).
	fl, frames, _ := open()
	fl.Close()
	for range frames {
	}
	baseline := settledGoroutines(0)

	var follows []*fakecore.Follow
	var all []<-chan fakecore.FollowFrame
	for range 5 {
		fl, frames, _ := open()
		follows, all = append(follows, fl), append(all, frames)
	}
	during := runtime.NumGoroutine()
	if during <= baseline {
		t.Fatalf("goroutines during 5 follows %d, before %d: the count sees nothing", during, baseline)
	}
	for _, fl := range follows {
		fl.Close()
	}
	for _, frames := range all {
		for range frames {
		}
	}
	if after := settledGoroutines(baseline); after > baseline {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d with 5 follows, %d after they left\n%s", baseline, during, after, buf[:runtime.Stack(buf, true)])
	}

	// Core's cancel of the session ends the follow with the response frame, and leaves nothing either.
	fl, frames, session := open()
	if err := fl.Cancel(provider, session); err != nil {
		t.Fatal(err)
	}
	for fr := range frames {
		if fr.Type == "response" {
			if fr.Payload.StreamID != session {
				t.Fatalf("response for %q, want %q", fr.Payload.StreamID, session)
			}
			break
		}
	}
	fl.Close()
	for range frames {
	}
	if after := settledGoroutines(baseline); after > baseline {
		t.Fatalf("goroutines after a cancelled follow: %d, before %d", after, baseline)
	}
}

// What a job pod or anyone but Core could send to the follow socket is refused: no token, a token not
// Core's, another provider's call, a job id that is no id. Nothing is streamed.
func TestFollowRefusesWhatIsNotCoresFollow(t *testing.T) {
	f := newFixture(t, 1)
	wrongRole := f.core.Token(func(c jwt.MapClaims) { c["role"] = "USER" })
	for _, tc := range []struct {
		name   string
		header http.Header
	}{
		{"no token", http.Header{}},
		{"user token", http.Header{"Authorization": {"Bearer " + wrongRole}}},
		{"garbage", http.Header{"Authorization": {"Bearer x.y.z"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := f.core.FollowWith(context.Background(), f.srv.URL, provider, "jobs.provider.k8s.follow", f.job(), tc.header)
			if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("want 401 without upgrade, got %v %v", resp, err)
			}
			body, _ := io.ReadAll(resp.Body)
			var e struct {
				Why        string `json:"why"`
				StatusCode int    `json:"statusCode"`
			}
			if json.Unmarshal(body, &e) != nil || e.StatusCode != 401 || e.Why == "" {
				t.Fatalf("body %s", body)
			}
		})
	}
	bad := f.job()
	bad.ID = "../" + f.id
	for _, tc := range []struct {
		name, call string
		job        ucloud.Job
	}{
		{"another provider's call", "jobs.provider.other.follow", f.job()},
		{"the shell's call", "jobs.compute.k8s.shell.open", f.job()},
		{"a job id that is a path", "jobs.provider.k8s.follow", bad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fl, _, err := f.core.FollowWith(context.Background(), f.srv.URL, provider, tc.call, tc.job, http.Header{"Authorization": {"Bearer " + f.core.Token()}})
			if err != nil {
				t.Fatal(err)
			}
			defer fl.Close()
			fr, err := fl.Next()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
				t.Fatalf("want the socket closed (policy violation), got frame %+v, %v", fr, err)
			}
		})
	}
	// A plain GET with Core's token is refused in UCloud's shape, not upgraded.
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/ucloud/jobs.provider.k8s/websocket", nil)
	req.Header.Set("Authorization", "Bearer "+f.core.Token())
	plain, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(plain.Body)
	plain.Body.Close()
	if plain.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"NOT_A_WEBSOCKET"`) {
		t.Fatalf("plain GET: %d %s", plain.StatusCode, body)
	}
	// Another provider's path is not served at all.
	resp, err := http.Get(f.srv.URL + "/ucloud/jobs.provider.other/websocket")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("other provider's socket: %d", resp.StatusCode)
	}
}
