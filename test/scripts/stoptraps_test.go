package scripts

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A script using stop_traps gets SIGTERM twice, as make run does when a service manager stops its process
// group (the group's SIGTERM, then make's own to its child a moment later), with the second at spacings
// from 0 to 2 ms. Every time its clean-up runs to the end and the script ends with 143. With plain
// `trap 'exit 143' TERM` about 1 stop in 40 ended the clean-up part-way.
func TestACleanUpRunsToTheEndThoughAStopSignalComesTwice(t *testing.T) {
	traps, err := filepath.Abs("../stop-traps.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	done := filepath.Join(dir, "done")
	script := filepath.Join(dir, "script.sh")
	body := `source "` + traps + `"
stopping=
# As make run's: it returns at once when it already runs, then ignores further signals itself.
cleanup() {
  [ -n "$stopping" ] && return
  stopping=1
  trap '' INT TERM HUP PIPE
  sleep 0.01
  echo finished >"$DONE"
}
stop_traps cleanup
echo ready
while :; do sleep 1 & wait $! || true; done
`
	if err := os.WriteFile(script, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	const stops = 120
	for i := 0; i < stops; i++ {
		_ = os.Remove(done)
		cmd := exec.Command("bash", script)
		cmd.Env = append(os.Environ(), "DONE="+done)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("the script did not start: %q %v", line, err)
		}
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		time.Sleep(time.Duration(i%40) * 50 * time.Microsecond)
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		err = cmd.Wait()
		// The loop's sleep is in the script's process group: end it so nothing is left behind.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		code := cmd.ProcessState.ExitCode()
		got, _ := os.ReadFile(done)
		if code != 143 || strings.TrimSpace(string(got)) != "finished" {
			t.Fatalf("stop %d (second SIGTERM %s after the first): exit %d (%v), clean-up wrote %q; want 143 and \"finished\"",
				i, time.Duration(i%40)*50*time.Microsecond, code, err, got)
		}
	}
}
