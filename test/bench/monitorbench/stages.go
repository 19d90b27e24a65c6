package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// stageOrder is the monitor's steps in the order a change goes through them (its "stages_us" log field).
var stageOrder = []string{"queued", "last", "iapp", "fold", "account", "intent", "send", "accepted"}

// stageLog reads the monitor's log: each reported change with its stage timings, by job and state.
// Every other line goes on to stderr, as the other functions' logs do.
type stageLog struct {
	mu  sync.Mutex
	got map[string]map[string]int64 // jobId/state -> stage -> microseconds
}

// newStageLog answers the log and the writer to give the monitor as its stdout.
func newStageLog() (*stageLog, io.Writer) {
	l := &stageLog{got: map[string]map[string]int64{}}
	r, w := io.Pipe()
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			var e struct {
				Msg    string           `json:"msg"`
				JobID  string           `json:"job_id"`
				State  string           `json:"state"`
				Stages map[string]int64 `json:"stages_us"`
			}
			if json.Unmarshal(line, &e) != nil || e.Msg != "job state changed" {
				fmt.Fprintln(os.Stderr, string(line))
				continue
			}
			l.mu.Lock()
			l.got[e.JobID+"/"+e.State] = e.Stages
			l.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	return l, w
}

// breakdown is p50/p99 of each stage, and of their sum, over the changes of ids to state.
func (l *stageLog) breakdown(ids []string, state string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	per := map[string][]int64{}
	var sums []int64
	for _, id := range ids {
		st, ok := l.got[id+"/"+state]
		if !ok {
			continue
		}
		var sum int64
		for _, k := range stageOrder {
			per[k] = append(per[k], st[k])
			sum += st[k]
		}
		sums = append(sums, sum)
	}
	if len(sums) == 0 {
		return "no samples"
	}
	pq := func(v []int64) string {
		slices.Sort(v)
		ms := func(us int64) time.Duration {
			return (time.Duration(us) * time.Microsecond).Round(100 * time.Microsecond)
		}
		return fmt.Sprintf("%s/%s", ms(v[len(v)/2]), ms(v[len(v)*99/100]))
	}
	var parts []string
	for _, k := range stageOrder {
		parts = append(parts, k+" "+pq(per[k]))
	}
	return fmt.Sprintf("%s; sum %s (p50/p99, %d changes)", strings.Join(parts, ", "), pq(sums), len(sums))
}
