package localenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is one server of the environment, started by Start and stopped by Stop.
type process struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	Bin  string `json:"bin"`
	Log  string `json:"log"`
	// StopSignal is what asks the server to shut down cleanly (PostgreSQL wants SIGINT for a fast shutdown).
	StopSignal syscall.Signal `json:"stopSignal"`

	cmd    *exec.Cmd
	exited chan struct{}
}

// launch starts bin with args, its output appended to logDir/<name>.log. When detach is false the child gets
// SIGKILL if this process dies, so a crashed test run leaves no servers behind; when true it gets a process
// group of its own and outlives us (make env-up), and Stop finds it again by PID.
func launch(name, bin string, args []string, logDir string, detach bool, cred *syscall.Credential) (*process, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", name, err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = "/" // never a folder the server's user (postgres, when we are root) may not enter
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if !detach {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &process{Name: name, PID: cmd.Process.Pid, Bin: bin, Log: logPath, StopSignal: syscall.SIGTERM, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// alive reports whether the process still runs, and is still ours: a recycled PID running something else is
// not (its /proc cmdline no longer starts with our binary).
func (p *process) alive() bool {
	if p.exited != nil {
		select {
		case <-p.exited:
			return false
		default:
			return true
		}
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/cmdline")
	if err != nil {
		return false
	}
	if stat, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/stat"); err == nil {
		// A zombie nobody reaps is as good as gone.
		rest := string(stat)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		if f := strings.Fields(rest); len(f) > 0 && f[0] == "Z" {
			return false
		}
	}
	return strings.HasPrefix(string(raw), p.Bin)
}

// stop asks the process to shut down, waits up to grace, then kills its whole process group.
func (p *process) stop(grace time.Duration) error {
	if !p.alive() {
		return p.waitGroupGone(grace)
	}
	if err := syscall.Kill(p.PID, p.StopSignal); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s: %w", p.Name, err)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !p.alive() {
			return p.waitGroupGone(time.Until(deadline))
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-p.PID, syscall.SIGKILL)
	_ = syscall.Kill(p.PID, syscall.SIGKILL)
	return fmt.Errorf("%s (pid %d) did not stop within %s and was killed", p.Name, p.PID, grace)
}

// waitFor polls check until it succeeds, the process dies, or ctx ends; the error names the log to read.
func (p *process) waitFor(ctx context.Context, check func(context.Context) error) error {
	var last error
	for {
		if !p.alive() {
			return fmt.Errorf("%s exited during start-up; see %s", p.Name, p.Log)
		}
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready (%v): %w; see %s", p.Name, last, ctx.Err(), p.Log)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitGroupGone waits until no live process of the server's process group is left (PostgreSQL's workers,
// for one), killing the stragglers after grace. Zombies do not count: a detached server's parent is init,
// which in some sandboxes never reaps them.
func (p *process) waitGroupGone(grace time.Duration) error {
	deadline := time.Now().Add(grace)
	for groupAlive(p.PID) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(-p.PID, syscall.SIGKILL)
			return fmt.Errorf("%s left processes in its group after %s; killed them", p.Name, grace)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// groupAlive reports whether any non-zombie process belongs to process group pgid.
func groupAlive(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return syscall.Kill(-pgid, 0) == nil
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state ppid pgrp ...
		rest := string(stat)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}
