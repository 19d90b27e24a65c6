// Command streamsbench measures the job page's streams through the job-streams process (loopback, KWOK pod,
// real apiserver and PostgreSQL) next to client-go talking to the apiserver directly in the same run:
// keystroke -> echo round trips of a shell (p50/p99), and log lines per second of a follow.
//
//	streamsbench -bin DIR [-keys 300] [-lines 20000]
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/shellsession"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/streams"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/bench/benchenv"
	"github.com/ucloud-im/knative-im/test/env/localenv"
	"github.com/ucloud-im/knative-im/test/fakecore"

	"github.com/jackc/pgx/v5/pgxpool"
)

func main() {
	bin := flag.String("bin", ".run/bench", "folder with the built functions")
	keys := flag.Int("keys", 300, "keystrokes per path")
	lines := flag.Int("lines", 20000, "log lines per path")
	flag.Parse()
	if err := run(*bin, *keys, *lines); err != nil {
		fmt.Fprintln(os.Stderr, "streamsbench:", err)
		os.Exit(1)
	}
}

func run(bin string, keys, lines int) error {
	ctx := context.Background()
	b, err := benchenv.Start(ctx, "streams", false)
	if err != nil {
		return err
	}
	defer b.Close()
	cfg, err := b.Env.RESTConfig()
	if err != nil {
		return err
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	ns := b.Namespace("bench-streams")
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	defer cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	id := strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	pod := kube.PodName(id, 0)
	logFile := filepath.Join(b.Dir, "rank0.log")
	var buf strings.Builder
	now := time.Now()
	for i := range lines {
		buf.WriteString(localenv.CRILogLine(now, "stdout", fmt.Sprintf("line %d of the benchmark's log, about sixty bytes long", i)))
	}
	if err := os.WriteFile(logFile, []byte(buf.String()), 0o644); err != nil {
		return err
	}
	if err := localenv.ApplyPodLog(ctx, dyn, ns, pod, logFile); err != nil {
		return err
	}
	if err := localenv.ApplyPodExec(ctx, dyn, ns, pod, b.Dir, map[string]string{"PS1": "$ "}); err != nil {
		return err
	}
	if err := waitServiceAccount(ctx, cs, ns); err != nil {
		return err
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: pod, Labels: kube.JobLabels(id, 0, ""), Annotations: map[string]string{kube.AnnotationReplicas: "1"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: kube.ContainerName, Image: "ubuntu", Command: []string{"sleep", "inf"}}}},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := waitRunning(ctx, cs, ns, pod); err != nil {
		return err
	}
	proc, err := benchenv.Run(filepath.Join(bin, "job-streams"), append(b.Vars(), b.DatabaseVar(store.FnJobStreams),
		"JOBS_NAMESPACE="+ns, "LOG_TAIL_LINES="+strconv.Itoa(lines)))
	if err != nil {
		return err
	}
	defer proc.Stop()

	// Log lines per second: a follow from the first line, through job-streams and directly.
	job := ucloud.Job{ID: id, Specification: ucloud.JobSpecification{Replicas: 1}}
	t0 := time.Now()
	fl, _, err := b.Core.Follow(ctx, proc.URL, "k8s", job)
	if err != nil {
		return err
	}
	got := 0
	for got < lines {
		fr, err := fl.Next()
		if err != nil {
			return fmt.Errorf("follow after %d lines: %w", got, err)
		}
		if fr.Payload.Stdout != nil {
			got += strings.Count(*fr.Payload.Stdout, "\n")
		}
	}
	viaFollow := time.Since(t0)
	fl.Close()
	t0 = time.Now()
	tail := int64(lines)
	sctx, cancel := context.WithCancel(ctx)
	rc, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: kube.ContainerName, Follow: true, TailLines: &tail}).Stream(sctx)
	if err != nil {
		cancel()
		return err
	}
	sc := bufio.NewScanner(rc)
	for n := 0; n < lines && sc.Scan(); n++ {
	}
	direct := time.Since(t0)
	cancel()
	rc.Close()
	fmt.Printf("log follow, %d lines of 60 B: job-streams %.0f lines/s, direct pods/log %.0f lines/s (ratio %.2f)\n",
		lines, float64(lines)/viaFollow.Seconds(), float64(lines)/direct.Seconds(), direct.Seconds()/viaFollow.Seconds())

	// Keystroke -> echo: a shell through job-streams (session issued as job-control does), and a direct exec.
	pool, err := pgxpool.New(ctx, strings.TrimPrefix(b.DatabaseVar(store.FnJobControl), "DATABASE_URL="))
	if err != nil {
		return err
	}
	defer pool.Close()
	sid, err := (shellsession.Store{Pool: pool}).Issue(ctx, shellsession.Session{JobID: id, Rank: 0})
	if err != nil {
		return err
	}
	viaShell, err := shellRoundTrips(ctx, ucloud.OpenSession{DomainOverride: jobs.WebSocketURL(proc.URL), SessionIdentifier: sid}, keys)
	if err != nil {
		return err
	}
	viaExec, err := execRoundTrips(ctx, cs, cfg, ns, pod, keys)
	if err != nil {
		return err
	}
	p := func(d []time.Duration, q float64) time.Duration { return d[int(q*float64(len(d)-1))] }
	fmt.Printf("keystroke -> echo, %d keys: job-streams p50 %s p99 %s; direct client-go exec p50 %s p99 %s (p50 ratio %.2f)\n",
		keys, p(viaShell, .5), p(viaShell, .99), p(viaExec, .5), p(viaExec, .99), float64(p(viaShell, .5))/float64(p(viaExec, .5)))
	return nil
}

// echoes measures, for each key, the time from typing it to seeing it echoed in out.
type echoes struct {
	mu   sync.Mutex
	seen strings.Builder
	wake chan struct{}
}

func (e *echoes) add(s string) {
	e.mu.Lock()
	e.seen.WriteString(s)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *echoes) measure(keys int, typeKey func(string) error) ([]time.Duration, error) {
	var out []time.Duration
	for i := range keys {
		// A marker the shell has not printed before: a letter, then Ctrl-U clears the line every 20.
		key := string(rune('a' + i%26))
		e.mu.Lock()
		before := e.seen.Len()
		e.mu.Unlock()
		t0 := time.Now()
		if err := typeKey(key); err != nil {
			return nil, err
		}
		deadline := time.After(10 * time.Second)
		for {
			e.mu.Lock()
			hit := strings.Contains(e.seen.String()[before:], key)
			e.mu.Unlock()
			if hit {
				break
			}
			select {
			case <-e.wake:
			case <-deadline:
				return nil, fmt.Errorf("key %q not echoed", key)
			}
		}
		out = append(out, time.Since(t0))
		if i%20 == 19 {
			_ = typeKey("\x15")
			time.Sleep(20 * time.Millisecond)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

func shellRoundTrips(ctx context.Context, s ucloud.OpenSession, keys int) ([]time.Duration, error) {
	sh, err := fakecore.OpenShell(ctx, s, "k8s", "bench#1")
	if err != nil {
		return nil, err
	}
	defer sh.Close()
	e := &echoes{wake: make(chan struct{}, 1)}
	go func() {
		for {
			fr, err := sh.Next()
			if err != nil {
				return
			}
			if fr.Payload.Type == "data" {
				e.add(fr.Payload.Data)
			}
		}
	}()
	if _, err := sh.Initialize(s.SessionIdentifier, 80, 24); err != nil {
		return nil, err
	}
	time.Sleep(time.Second) // the prompt
	return e.measure(keys, func(k string) error { _, err := sh.Input(k); return err })
}

func execRoundTrips(ctx context.Context, cs kubernetes.Interface, cfg *rest.Config, ns, pod string, keys int) ([]time.Duration, error) {
	req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: kube.ContainerName, Command: streams.ShellCommand, Stdin: true, Stdout: true, TTY: true}, scheme.ParameterCodec)
	exec, err := remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
	if err != nil {
		return nil, err
	}
	stdinR, stdinW := io.Pipe()
	e := &echoes{wake: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdinR, Stdout: writerFunc(func(p []byte) (int, error) { e.add(string(p)); return len(p), nil }), Tty: true})
	}()
	defer func() { cancel(); stdinW.Close(); <-done }()
	time.Sleep(time.Second)
	return e.measure(keys, func(k string) error { _, err := io.WriteString(stdinW, k); return err })
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func waitServiceAccount(ctx context.Context, cs kubernetes.Interface, ns string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return nil
		}
	}
	return fmt.Errorf("no default ServiceAccount in %s", ns)
}

func waitRunning(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); err == nil && p.Status.Phase == corev1.PodRunning {
			return nil
		}
	}
	return fmt.Errorf("pod %s not Running", name)
}
