package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/ucloud-im/knative-im/test/env/localenv"
)

// make run stops everything it started however it is stopped: Ctrl-C typed in its terminal, SIGTERM to its
// whole process group (what a service manager sends, and at once to every process of the group; make then
// sends its child a second SIGTERM of its own, which used to end the clean-up part-way), and its terminal
// closing (SIGHUP, after which its output has nowhere to go). Each way starts `make run` afresh, as an
// operator does, from an interactive shell on a terminal of its own (the shell leads the terminal's session
// and runs make as its foreground job, in a process group of its own), in its own run folder, and
// afterwards finds no process of that run: no component, no etcd, kube-apiserver, controller manager,
// scheduler, KWOK or PostgreSQL.
func TestMakeRunStopsEverythingHoweverStopped(t *testing.T) {
	project, err := localenv.ProjectDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		stop func(t *testing.T, group int, terminal *os.File)
	}{
		{"Ctrl-C in its terminal", func(t *testing.T, _ int, terminal *os.File) {
			if _, err := terminal.Write([]byte{3}); err != nil { // the terminal sends SIGINT to the foreground job
				t.Fatal(err)
			}
		}},
		{"SIGTERM to its process group", func(t *testing.T, group int, _ *os.File) {
			if err := syscall.Kill(-group, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		}},
		{"its terminal closed", func(t *testing.T, _ int, terminal *os.File) {
			// The kernel sends the shell SIGHUP, the shell sends it to its jobs; later output fails.
			if err := terminal.Close(); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := t.TempDir()
			terminal, tty := openTerminal(t)
			// "; exit" keeps the shell from replacing itself with make: it stays, as in a terminal window.
			cmd := exec.Command("bash", "--norc", "--noprofile", "-i", "-c", "make --no-print-directory run; exit")
			cmd.Dir = project
			cmd.Env = append(os.Environ(), "RUN_DIR="+run)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
			// A session of its own with the terminal as its controlling terminal, as in a terminal window.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			tty.Close()
			// Closed once the shell ended, so every place that waits for it may (a channel holding Wait's one
			// error was taken by the first, and a failed start then hung the cleanup for good).
			exited := make(chan struct{})
			var waitErr error
			go func() { waitErr = cmd.Wait(); close(exited) }()
			stopped := false
			makePID := 0
			t.Cleanup(func() {
				if !stopped {
					if makePID != 0 {
						_ = syscall.Kill(-makePID, syscall.SIGTERM)
						waitGone(makePID, 2*time.Minute)
					}
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGHUP)
					<-exited
				}
				terminal.Close()
			})
			ready := make(chan struct{})
			go func() {
				sc := bufio.NewScanner(terminal)
				for said := false; sc.Scan(); {
					if !said && strings.Contains(sc.Text(), "Ctrl-C stops everything") {
						close(ready)
						said = true
					}
				}
			}()
			select {
			case <-ready:
			case <-exited:
				t.Fatalf("make run ended before it was ready: %v (logs in %s/logs)", waitErr, run)
			case <-time.After(5 * time.Minute):
				t.Fatalf("make run not ready within 5 minutes (logs in %s/logs)", run)
			}
			if makePID = childNamed(cmd.Process.Pid, "make"); makePID == 0 {
				t.Fatal("no make under the shell")
			}
			// Everything of this run: its components, and the cluster's servers (each in a process group of its
			// own, PostgreSQL's backends in the postmaster's).
			started := map[int]string{}
			for name, pid := range pidsOf(t, run) {
				started[pid] = name
			}
			cluster, err := localenv.Load(filepath.Join(run, "cluster"))
			if err != nil {
				t.Fatal(err)
			}
			groups := map[int]bool{}
			for _, p := range cluster.Processes {
				started[p.PID], groups[p.PID] = p.Name, true
			}
			if len(cluster.Processes) < 6 {
				t.Fatalf("the cluster has %d processes, want etcd, apiserver, controller manager, scheduler, KWOK and PostgreSQL", len(cluster.Processes))
			}
			for pid, what := range processesOf(run, groups) {
				started[pid] = what
			}

			began := time.Now()
			tc.stop(t, makePID, terminal)
			if !waitGone(makePID, 2*time.Minute) {
				t.Fatalf("make run still runs 2 minutes after it was stopped; of its processes:%s", stillRunning(run, started))
			}
			stopped = true
			t.Logf("make run ended %.1f s after it was stopped", time.Since(began).Seconds())
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				t.Errorf("the shell did not end after make did")
			}
			for pid, name := range started {
				if alive(pid) {
					t.Errorf("%s (pid %d) still runs after make run ended", name, pid)
				}
			}
			for pid, what := range processesOf(run, groups) {
				t.Errorf("still running after make run ended: pid %d %s", pid, what)
			}
		})
	}
}

// openTerminal opens a pseudo-terminal: the side a terminal window holds, and the side a program runs on.
func openTerminal(t *testing.T) (terminal, tty *os.File) {
	t.Helper()
	fd, err := syscall.Open("/dev/ptmx", syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var unlock int32
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatal(e)
	}
	// Non-blocking, so closing it is the real hang-up even while a read waits on it.
	if err := syscall.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	terminal = os.NewFile(uintptr(fd), "ptmx")
	if tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0); err != nil {
		t.Fatal(err)
	}
	return terminal, tty
}

// childNamed is the pid of a child of parent whose command is name, or 0.
func childNamed(parent int, name string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		open, end := strings.IndexByte(string(stat), '('), strings.LastIndexByte(string(stat), ')')
		if open < 0 || end < open {
			continue
		}
		if f := strings.Fields(string(stat[end+1:])); len(f) > 1 && string(stat[open+1:end]) == name && f[1] == strconv.Itoa(parent) {
			return pid
		}
	}
	return 0
}

// waitGone waits until pid has exited (or is a zombie), at most d; it says whether it did.
func waitGone(pid int, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if !alive(pid) {
			return true
		}
	}
	return !alive(pid)
}

// processesOf lists the live processes whose command line names dir or whose process group is in groups.
func processesOf(dir string, groups map[int]bool) map[int]string {
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !alive(pid) {
			continue
		}
		raw, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cmdline := strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		// pgrp is the third field after the command name, which is in parentheses and may hold spaces.
		var pgrp int
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 2 {
				pgrp, _ = strconv.Atoi(f[2])
			}
		}
		if strings.Contains(cmdline, dir) || groups[pgrp] {
			out[pid] = cmdline
		}
	}
	return out
}

// stillRunning names the processes of started that are alive, each with its state and the end of its log
// (a component's, in run/logs), to tell which one keeps make run from ending.
func stillRunning(run string, started map[int]string) string {
	var b strings.Builder
	for pid, name := range started {
		if !alive(pid) {
			continue
		}
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		wchan, _ := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", pid))
		fmt.Fprintf(&b, "\n  %s (pid %d): stat %q, wchan %q", name, pid, strings.TrimSpace(string(stat)), string(wchan))
		if raw, err := os.ReadFile(filepath.Join(run, "logs", name+".log")); err == nil {
			lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
			for _, l := range lines[max(0, len(lines)-5):] {
				fmt.Fprintf(&b, "\n    %s", l)
			}
		}
	}
	if b.Len() == 0 {
		return " none of the components or servers (make or the script itself)"
	}
	return b.String()
}
