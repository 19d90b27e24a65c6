// Package e2e drives the functions as separate processes, the way Knative runs them, against the real
// local environment and the strict fake Core.
package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/test/env/localenv"
	"github.com/ucloud-im/knative-im/test/envtest"
)

var (
	env    *envtest.Env
	binDir string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ucloud-im-e2e-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	// The functions' binaries are ~740 MB: removed after the run, or every run leaves them in the temp folder.
	if err := buildFunctions(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	envtest.Main(m, &env, func() { _ = os.RemoveAll(dir) }) // exits
}

// buildFunctions builds every function under functions/ into dir.
func buildFunctions(dir string) error {
	project, err := localenv.ProjectDir()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "./functions/...")
	cmd.Dir = project
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("build functions: %w\n%s", err, out)
	}
	return nil
}

// fnProc is a running function process.
type fnProc struct {
	URL  string
	cmd  *exec.Cmd
	logs *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// databaseURLOf+<function> in a startFunction's vars is that function's DATABASE_URL (its own role).
const databaseURLOf = "DATABASE_URL_OF:"

// startFunction runs functions/<name> with the given environment on a free port and waits until it is ready.
func startFunction(t testing.TB, name string, vars map[string]string) *fnProc {
	t.Helper()
	port := envtest.FreePort(t)
	cmd := exec.Command(filepath.Join(binDir, name))
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "LOG_LEVEL=warn")
	for k, v := range vars {
		if fnName, ok := strings.CutPrefix(k, databaseURLOf); ok {
			if fnName == name {
				cmd.Env = append(cmd.Env, "DATABASE_URL="+v)
			}
			continue
		}
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &fnProc{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, logs: &lockedBuffer{}}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState != nil {
			return
		}
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, p.logs.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("%s not ready: %v\n%s", name, err, p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// figure records a measured figure: in the test log, and in $UCLOUD_IM_FIGURES when make test collects them.
func figure(t testing.TB, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	if path := os.Getenv("UCLOUD_IM_FIGURES"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%s: %s\n", t.Name(), line)
			f.Close()
		}
	}
}

// kill ends the process at once (SIGKILL: no shutdown, no lease release) and waits for it.
func (p *fnProc) kill() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}
