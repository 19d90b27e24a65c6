package envtest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/test/env/localenv"
)

// PodLog is the log file KWOK serves (and follows) as one pod's log, for every container of the pod.
type PodLog struct {
	Path string
	mu   sync.Mutex
}

// PodLog makes KWOK serve the log of pod ns/name from a fresh file, which the test appends to. The pod need
// not exist yet (job pods are made by the code under test); the object is deleted when the test ends.
func (e *Env) PodLog(t testing.TB, ns, name string) *PodLog {
	t.Helper()
	e.Cluster(t)
	path := filepath.Join(t.TempDir(), name+".log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.debugObject(t, localenv.ApplyPodLog(context.Background(), e.Dynamic, ns, name, path), ns, name, "logs")
	return &PodLog{Path: path}
}

// Append writes lines to the log as the container's stdout, each stamped now.
func (l *PodLog) Append(t testing.TB, lines ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.Path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, line := range lines {
		if _, err := f.WriteString(localenv.CRILogLine(time.Now(), "stdout", line)); err != nil {
			t.Fatal(err)
		}
	}
}

// PodExec makes KWOK run exec commands into pod ns/name on this machine, in a fresh folder of the test, with
// env set; it returns the folder. Without it, exec runs in the environment's shared folder.
func (e *Env) PodExec(t testing.TB, ns, name string, env map[string]string) string {
	t.Helper()
	e.Cluster(t)
	dir := t.TempDir()
	e.debugObject(t, localenv.ApplyPodExec(context.Background(), e.Dynamic, ns, name, dir, env), ns, name, "execs")
	return dir
}

// PodPortForward makes KWOK forward port of pod ns/name to 127.0.0.1:target.
func (e *Env) PodPortForward(t testing.TB, ns, name string, port, target int) {
	t.Helper()
	e.Cluster(t)
	e.debugObject(t, localenv.ApplyPodPortForward(context.Background(), e.Dynamic, ns, name, port, target), ns, name, "portforwards")
}

func (e *Env) debugObject(t testing.TB, err error, ns, name, resource string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.Dynamic.Resource(localenv.KwokGroupVersion.WithResource(resource)).Namespace(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}
