package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/test/env/localenv"
	"github.com/ucloud-im/knative-im/test/fakecore"
	"github.com/ucloud-im/knative-im/test/walkthrough"
)

// TestMakeRunWalkthrough starts the stack exactly as `make run` does (test/run-local.sh, in its own run
// folder), walks through it as `make demo` does, kills one function and checks it is reported while the
// rest keep serving, then stops it and checks nothing is left running.
func TestMakeRunWalkthrough(t *testing.T) {
	project, err := localenv.ProjectDir()
	if err != nil {
		t.Fatal(err)
	}
	run := t.TempDir()
	cmd := exec.Command("bash", "test/run-local.sh")
	cmd.Dir = project
	cmd.Env = append(os.Environ(), "RUN_DIR="+run)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
	})
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitFor := func(what string, d time.Duration) string {
		t.Helper()
		deadline := time.After(d)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("make run ended before %q", what)
				}
				t.Log("make run: " + l)
				if strings.Contains(l, what) {
					return l
				}
			case <-deadline:
				t.Fatalf("make run did not print %q within %s", what, d)
			}
		}
	}
	waitFor("Ctrl-C stops everything", 5*time.Minute)
	figure(t, "make run (test's own run folder, warm caches): ready after %.1f s", time.Since(began).Seconds())

	env := readEnv(t, filepath.Join(run, "env"))
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	cs, err := kube.NewClientset(env["KUBECONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := walkthrough.Run(ctx, walkthrough.Config{IMURL: env["IM_URL"], CoreURL: env["UCLOUD_CORE_URL"], Provider: env["UCLOUD_PROVIDER_ID"],
		Namespace: env["JOBS_NAMESPACE"], Kube: cs, Out: &log, JobID: "71",
		Token: func() (string, error) { return fakecore.TokenFromDir(env["FAKECORE_DIR"], time.Hour) }}); err != nil {
		t.Fatalf("walkthrough: %v\n%s", err, log.String())
	}
	t.Log(log.String())
	if tok, err := fakecore.TokenFromDir(env["FAKECORE_DIR"], time.Hour); err == nil {
		checkProviderCalls(t, env["IM_URL"], env["UCLOUD_PROVIDER_ID"], tok)
	} else {
		t.Fatal(err)
	}
	checkMakeRunMetrics(t, env)
	if v := get(t, env["UCLOUD_CORE_URL"]+fakecore.InspectPrefix+"violations"); v != "null" && v != "[]" {
		t.Fatalf("the fake Core saw wire violations: %s", v)
	}

	// One function dies: make run says which, and the others keep serving through the gateway.
	pids := pidsOf(t, run)
	if err := syscall.Kill(pids["job-control"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(fmt.Sprintf("job-control (pid %d) exited", pids["job-control"]), 30*time.Second)
	tok, _ := fakecore.TokenFromDir(env["FAKECORE_DIR"], time.Hour)
	code, body := post(t, env["IM_URL"]+"/ucloud/k8s/iapps/syncthing/retrieve", tok, `{"productId":"syncthing","principal":{"createdBy":"bob#1"}}`)
	if code != 200 {
		t.Fatalf("config-retrieve after job-control died: %d %s", code, body)
	}
	code, body = post(t, env["IM_URL"]+"/ucloud/k8s/jobs/terminate", tok, `{"items":[]}`)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "job-control is not available") {
		t.Fatalf("the dead function's path: %d %s", code, body)
	}

	// Stop: every component and the cluster are gone.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	stopped = true
	for name, pid := range pids {
		if alive(pid) {
			t.Errorf("%s (pid %d) still runs after make run stopped", name, pid)
		}
	}
	if out, err := exec.Command(filepath.Join(run, "bin", "localenv"), "status", "-dir", filepath.Join(run, "cluster")).CombinedOutput(); err == nil && strings.Contains(string(out), "running: [e") {
		t.Errorf("the cluster still runs after make run stopped: %s", out)
	}
}

func readEnv(t *testing.T, path string) map[string]string {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(l, "export "), "=")
		if ok {
			env[k] = strings.Trim(v, `"`)
		}
	}
	return env
}

func pidsOf(t *testing.T, run string) map[string]int {
	entries, err := os.ReadDir(filepath.Join(run, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	for _, e := range entries {
		raw, _ := os.ReadFile(filepath.Join(run, "pids", e.Name()))
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil {
			t.Fatalf("pid file %s: %v", e.Name(), err)
		}
		pids[e.Name()] = pid
	}
	if len(pids) < 11 {
		t.Fatalf("make run started %d components: %v", len(pids), pids)
	}
	return pids
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(st))
	return len(fields) > 2 && fields[2] != "Z"
}

func get(t *testing.T, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

func post(t *testing.T, url, token, body string) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
