package envtest_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
)

// syncBuffer collects a stream's output for polling while the stream runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[a-zA-Z]`)

// waitOutput waits until the cleaned output has a line ending in want (the shell may print its prompt first).
func waitOutput(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		clean := ansi.ReplaceAllString(strings.ReplaceAll(out.String(), "\r", ""), "")
		for _, line := range strings.Split(clean, "\n") {
			if strings.HasSuffix(strings.TrimSpace(line), want) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no line %q in the output:\n%s", want, out.String())
}

type sizes chan *remotecommand.TerminalSize

func (s sizes) Next() *remotecommand.TerminalSize { return <-s }

func runningPod(t *testing.T, ns, name string) {
	t.Helper()
	if _, err := env.Clientset.CoreV1().Pods(ns).Create(context.Background(), testPod(name), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, ns, name, corev1.PodRunning)
}

// exec into a KWOK pod through the apiserver, as the IM does (WebSocket executor, SPDY fallback): a TTY with
// the size the client sends, resized later, in the folder and with the environment of the pod's Exec object.
func TestExecIntoAPodWithATerminalAndResize(t *testing.T) {
	ns := env.Namespace(t)
	runningPod(t, ns, "shell")
	dir := env.PodExec(t, ns, "shell", map[string]string{"UCLOUD_RANK": "0"})

	req := env.Clientset.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name("shell").SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: "main", Command: []string{"/bin/sh"}, Stdin: true, Stdout: true, TTY: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(env.Config, "GET", req.URL().String())
	if err != nil {
		t.Fatal(err)
	}
	spdyExec, err := remotecommand.NewSPDYExecutor(env.Config, "POST", req.URL())
	if err != nil {
		t.Fatal(err)
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdyExec, func(err error) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	stdinR, stdinW := io.Pipe()
	out := &syncBuffer{}
	resize := make(sizes, 2)
	resize <- &remotecommand.TerminalSize{Width: 80, Height: 24}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdinR, Stdout: out, Tty: true, TerminalSizeQueue: resize})
	}()
	t.Cleanup(func() { cancel(); stdinW.Close(); <-done })

	// KWOK may apply the first size after the shell's first command: retry until it shows.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "24 80") && time.Now().Before(deadline) {
		fmt.Fprint(stdinW, "stty size\r")
		time.Sleep(300 * time.Millisecond)
	}
	fmt.Fprint(stdinW, "pwd; echo rank=$UCLOUD_RANK; tty\r")
	waitOutput(t, out, dir)
	waitOutput(t, out, "rank=0")
	resize <- &remotecommand.TerminalSize{Width: 120, Height: 40}
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "40 120") && time.Now().Before(deadline) {
		fmt.Fprint(stdinW, "stty size\r")
		time.Sleep(300 * time.Millisecond)
	}
	waitOutput(t, out, "24 80")
	waitOutput(t, out, "40 120")
	if !regexp.MustCompile(`/dev/pts/\d+`).MatchString(out.String()) {
		t.Fatalf("no terminal: %s", out.String())
	}
}

// pods/log of a KWOK pod is its Logs object's file; following it sees lines appended later.
func TestFollowAPodLog(t *testing.T) {
	ns := env.Namespace(t)
	log := env.PodLog(t, ns, "logger")
	log.Append(t, "before the follow")
	runningPod(t, ns, "logger")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := env.Clientset.CoreV1().Pods(ns).GetLogs("logger", &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stream)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no log line within 10 s")
			return ""
		}
	}
	if got := next(); got != "before the follow" {
		t.Fatalf("first line %q", got)
	}
	log.Append(t, "one", "two")
	if a, b := next(), next(); a != "one" || b != "two" {
		t.Fatalf("appended lines %q %q", a, b)
	}

	// A pod without a Logs object has an empty log, not an error.
	runningPod(t, ns, "quiet")
	raw, err := env.Clientset.CoreV1().Pods(ns).GetLogs("quiet", &corev1.PodLogOptions{}).DoRaw(context.Background())
	if err != nil || len(raw) != 0 {
		t.Fatalf("log of a pod without Logs object: %q, %v", raw, err)
	}
}

// pods/portforward of a KWOK pod reaches the local server its PortForward object names.
func TestPortForwardToAPod(t *testing.T) {
	ns := env.Namespace(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "through the pod") }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	var target int
	fmt.Sscan(port, &target)
	runningPod(t, ns, "web")
	env.PodPortForward(t, ns, "web", 8080, target)

	transport, upgrader, err := spdy.RoundTripperFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	req := env.Clientset.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name("web").SubResource("portforward")
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", req.URL())
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, io.Discard, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	defer func() { close(stop); <-done }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatal("port-forward not ready")
	}
	ports, err := fw.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", ports[0].Local))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "through the pod" {
		t.Fatalf("answer %q", body)
	}
}
