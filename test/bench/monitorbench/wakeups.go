package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// In the steady state most of the functions' CPU per change is paid per wake-up (a pod event, a database
// answer, a notification, a timer), not per byte of work: on this kind of VM a bare Go process woken by one
// loopback message costs tens of microseconds before it does anything. So the steady state prints, per
// transition, how often each function was switched in and out (the context switches of all its threads),
// and, as the anchor of what one costs, the CPU a bare Go echo process with the monitor's runtime settings
// spends per message meanwhile.

// switches is how many times the threads of pid were switched out so far (voluntarily or not).
func switches(pid int) int64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	var n int64
	for _, t := range tasks {
		raw, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that just ended
		}
		for _, line := range strings.Split(string(raw), "\n") {
			for _, key := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if v, ok := strings.CutPrefix(line, key); ok {
					c, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					n += c
				}
			}
		}
	}
	return n
}

// echoServer is the -echo mode: it answers each byte it reads on one loopback connection with that byte.
func echoServer() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(l.Addr())
	c, err := l.Accept()
	if err != nil {
		return err
	}
	buf := make([]byte, 1)
	for {
		if _, err := c.Read(buf); err != nil {
			return nil
		}
		if _, err := c.Write(buf); err != nil {
			return nil
		}
	}
}

// echoAnchor pings a bare echo process (this program with -echo, under env) at rate per second, one byte at
// a time, until stop: the CPU it spends per ping is what one wake-up costs a Go process doing nothing else.
type echoAnchor struct {
	proc    *bareProcess
	cpu0    float64
	sw0     int64
	pings   atomic.Int64
	done    chan struct{}
	stopped chan struct{}
}

func startEchoAnchor(env []string, rate float64) (*echoAnchor, error) {
	var addr string
	proc, err := startSelf(env, &addr, "-echo")
	if err != nil {
		return nil, err
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		proc.stop()
		return nil, fmt.Errorf("echo anchor: %w", err)
	}
	a := &echoAnchor{proc: proc, cpu0: cpuSeconds(proc.pid), sw0: switches(proc.pid), done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(a.stopped)
		defer conn.Close()
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		buf := []byte{1}
		for {
			select {
			case <-a.done:
				return
			case <-tick.C:
			}
			if _, err := conn.Write(buf); err != nil {
				return
			}
			if _, err := conn.Read(buf); err != nil {
				return
			}
			a.pings.Add(1)
		}
	}()
	return a, nil
}

// stop ends the pings and the process and answers the CPU microseconds it spent and the context switches of
// its threads, per ping.
func (a *echoAnchor) stop() (cpuMicros, switched float64) {
	close(a.done)
	<-a.stopped
	used, sw := cpuSeconds(a.proc.pid)-a.cpu0, switches(a.proc.pid)-a.sw0
	a.proc.stop()
	n := float64(a.pings.Load())
	if n == 0 {
		return 0, 0
	}
	return used * 1e6 / n, float64(sw) / n
}
