package fn_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/test/envtest"
)

// TestMain doubles as a function process for the shutdown test: with FN_TEST_HELPER=slow the test binary
// runs fn.Main with a slow route instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("FN_TEST_HELPER") == "slow" {
		fn.Main("slow", func(ctx context.Context, cfg fn.Config, log *slog.Logger) (*fn.Server, error) {
			routes := http.NewServeMux()
			routes.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(1500 * time.Millisecond)
				fmt.Fprint(w, "done")
			})
			bg := func(ctx context.Context) {
				<-ctx.Done()
				time.Sleep(100 * time.Millisecond) // e.g. releasing a lease
				log.Info("background work finished")
			}
			return &fn.Server{Routes: routes, Background: []func(context.Context){bg}}, nil
		})
		return
	}
	os.Exit(m.Run())
}

// startSlowFunction runs this test binary as the slow function (TestMain), with env added to its
// environment, and waits until it answers /healthz; it answers the process, its base URL and its output.
func startSlowFunction(t *testing.T, env ...string) (*exec.Cmd, string, *bytes.Buffer) {
	t.Helper()
	port := envtest.FreePort(t)
	out := &bytes.Buffer{}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "FN_TEST_HELPER=slow", fmt.Sprintf("PORT=%d", port), "SHUTDOWN_TIMEOUT=10s"), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			return cmd, base, out
		}
		if time.Now().After(deadline) {
			t.Fatalf("function did not come up: %v\n%s", err, out.String())
		}
	}
}

func TestSIGTERMDrainsInFlightRequestAndExitsZero(t *testing.T) {
	cmd, base, out := startSlowFunction(t)

	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		done <- result{status: resp.StatusCode, body: string(raw)}
	}()
	time.Sleep(300 * time.Millisecond) // the slow request is now in flight
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.status != 200 || r.body != "done" {
		t.Fatalf("in-flight request during SIGTERM: %+v; logs:\n%s", r, out.String())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("process did not exit 0 after SIGTERM: %v; logs:\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "draining in-flight requests") {
		t.Fatalf("no shutdown log line:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "background work finished") {
		t.Fatalf("exited without waiting for its background work:\n%s", out.String())
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("still serving after exit")
	}
}
