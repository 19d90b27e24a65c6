package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// newInformer is a plain client-go informer over the job pods of ns, as the monitor selects them.
func newInformer(cs kubernetes.Interface, ns string) (informers.SharedInformerFactory, cache.SharedIndexInformer) {
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = kube.LabelJobID }))
	return f, f.Core().V1().Pods().Informer()
}

// watch is the bench's own bare informer: it records when it first saw each job's pod in each phase.
type watch struct {
	mu   sync.Mutex
	seen map[string]time.Time // jobId/phase -> first seen
}

func startWatch(ctx context.Context, cs kubernetes.Interface, ns string) (*watch, error) {
	w := &watch{seen: map[string]time.Time{}}
	f, inf := newInformer(cs, ns)
	note := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok {
			key := p.Labels[kube.LabelJobID] + "/" + string(p.Status.Phase)
			now := time.Now()
			w.mu.Lock()
			if _, dup := w.seen[key]; !dup {
				w.seen[key] = now
			}
			w.mu.Unlock()
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: note, UpdateFunc: func(_, obj any) { note(obj) }}); err != nil {
		return nil, err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("bench informer did not sync")
	}
	return w, nil
}

func (w *watch) at(id, phase string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.seen[id+"/"+phase]
	return t, ok
}

func (w *watch) waitPhase(ids []string, phase string, limit time.Duration) error {
	for began := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		missing := 0
		for _, id := range ids {
			if _, ok := w.at(id, phase); !ok {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		if time.Since(began) > limit {
			return fmt.Errorf("%d of %d pods not seen %s after %s", missing, len(ids), phase, limit)
		}
	}
}

func (w *watch) waitRunning(n int, limit time.Duration) error {
	return w.waitPhase(jobIDs(0, n), string(corev1.PodRunning), limit)
}

// last is when the informer saw the last of ids in phase.
func (w *watch) last(ids []string, phase string) time.Time {
	var last time.Time
	for _, id := range ids {
		if t, ok := w.at(id, phase); ok && t.After(last) {
			last = t
		}
	}
	return last
}

// coreLog indexes the job updates the fake Core received by job and state, with their arrival time.
type coreLog struct {
	core *fakecore.Core
	mu   sync.Mutex
	read int                  // requests indexed so far
	at   map[string]time.Time // jobId/state -> first received
}

func newCoreLog(c *fakecore.Core) *coreLog { return &coreLog{core: c, at: map[string]time.Time{}} }

func (c *coreLog) refresh() {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := c.core.Received()
	for _, r := range all[c.read:] {
		if r.Path != "/api/jobs/control/update" {
			continue
		}
		var req ucloud.BulkRequest[ucloud.ResourceUpdateAndID[ucloud.JobUpdate]]
		if json.Unmarshal(r.Body, &req) != nil {
			continue
		}
		for _, it := range req.Items {
			if it.Update.State == nil {
				continue
			}
			key := it.ID + "/" + string(*it.Update.State)
			if _, dup := c.at[key]; !dup {
				c.at[key] = r.At
			}
		}
	}
	c.read = len(all)
}

func (c *coreLog) get(id, state string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.at[id+"/"+state]
	return t, ok
}

// changes is the number of job state changes (job and state, each counted once) Core received so far
// (as of the last refresh).
func (c *coreLog) changes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.at)
}

// updateCalls is the number of job update requests Core received so far.
func (c *coreLog) updateCalls() int { return c.core.Calls("/api/jobs/control/update") }

func (c *coreLog) waitStates(ids []string, state string, limit time.Duration) error {
	for began := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		c.refresh()
		missing := 0
		for _, id := range ids {
			if _, ok := c.get(id, state); !ok {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		if time.Since(began) > limit {
			return fmt.Errorf("Core has %s for %d of %d jobs after %s", state, len(ids)-missing, len(ids), limit)
		}
	}
}

func (c *coreLog) last(ids []string, state string) time.Time {
	var last time.Time
	for _, id := range ids {
		if t, ok := c.get(id, state); ok && t.After(last) {
			last = t
		}
	}
	return last
}

// dist is a latency distribution.
type dist []time.Duration

func (d dist) String() string {
	if len(d) == 0 {
		return "no samples"
	}
	r := func(x time.Duration) time.Duration { return x.Round(100 * time.Microsecond) }
	return fmt.Sprintf("p50 %s, p99 %s, max %s (%d jobs)", r(d[len(d)/2]), r(d[len(d)*99/100]), r(d[len(d)-1]), len(d))
}

// latencies is, per job, informer-seen phase -> Core received state.
func latencies(w *watch, c *coreLog, ids []string, phase, state string) dist {
	c.refresh()
	var d dist
	for _, id := range ids {
		seen, ok1 := w.at(id, phase)
		got, ok2 := c.get(id, state)
		if ok1 && ok2 {
			d = append(d, got.Sub(seen))
		}
	}
	slices.Sort(d)
	return d
}

// usage is the monitor's and status-report's CPU and database round trips and Core's update calls since
// it was made.
type usage struct {
	core                *coreLog
	mon, sr, bare       int
	monDB, srDB         *pgCounter
	monCPU, srCPU       float64
	bareCPU             float64
	monTrips, srTrips   int64
	monSw, srSw, bareSw int64
	calls, changes      int
}

func newUsage(core *coreLog, mon, sr, bare int, monDB, srDB *pgCounter) *usage {
	core.refresh()
	return &usage{core: core, mon: mon, sr: sr, bare: bare, monDB: monDB, srDB: srDB, monCPU: cpuSeconds(mon), srCPU: cpuSeconds(sr), bareCPU: cpuSeconds(bare),
		monTrips: monDB.trips.Load(), srTrips: srDB.trips.Load(), monSw: switches(mon), srSw: switches(sr), bareSw: switches(bare), calls: core.updateCalls(), changes: core.changes()}
}

// print gives the figures per 1,000 transitions: the job state changes Core received meanwhile (expected
// when Core's log has none), and the CPU also per 1,000 of the pod changes the benchmark made (a new job is
// one pod change and two state changes: IN_QUEUE, then RUNNING).
func (u *usage) print(expected, podChanges int) {
	u.core.refresh()
	transitions := u.core.changes() - u.changes
	if transitions <= 0 {
		transitions = expected
	}
	per := 1000 / float64(transitions)
	monCPU, srCPU, bareCPU := cpuSeconds(u.mon)-u.monCPU, cpuSeconds(u.sr)-u.srCPU, cpuSeconds(u.bare)-u.bareCPU
	monTrips, srTrips := u.monDB.trips.Load()-u.monTrips, u.srDB.trips.Load()-u.srTrips
	fmt.Printf("per 1,000 transitions (job state changes Core received: %d here): CPU monitor %.2f s + status-report %.2f s = %.2f s; database round trips monitor %.0f + status-report %.0f; Core update calls %.0f\n",
		transitions, monCPU*per, srCPU*per, (monCPU+srCPU)*per, float64(monTrips)*per, float64(srTrips)*per, float64(u.core.updateCalls()-u.calls)*per)
	fmt.Printf("anchor: the bare informer (a process of its own, decoding the same pod watch events into whole pods, nothing more) %.2f s per 1,000 transitions meanwhile; the functions %.2fx\n",
		bareCPU*per, (monCPU+srCPU)/bareCPU)
	fmt.Printf("context switches of all their threads per 1,000 transitions (each wake-up is at least one): monitor %.0f, status-report %.0f; the bare informer %.0f\n",
		float64(switches(u.mon)-u.monSw)*per, float64(switches(u.sr)-u.srSw)*per, float64(switches(u.bare)-u.bareSw)*per)
	if podChanges != transitions {
		fmt.Printf("per 1,000 pod changes the benchmark made (%d here): CPU monitor %.2f s + status-report %.2f s = %.2f s\n",
			podChanges, monCPU*1000/float64(podChanges), srCPU*1000/float64(podChanges), (monCPU+srCPU)*1000/float64(podChanges))
	}
}

// cpuSeconds is the process's user + system CPU time.
func cpuSeconds(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw)[strings.LastIndexByte(string(raw), ')')+2:])
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks (USER_HZ = 100 on Linux)
}

// rss is the process's resident set in KiB.
func rss(pid int) int64 {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

func mb(kib int64) float64 { return float64(kib) / 1024 }

// bareInformer is the -bare-informer mode: a plain informer over ns, which prints how many pods it holds
// once synced and then holds them until killed.
func bareInformer(ns string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cs, err := kube.NewClientset(os.Getenv("KUBECONFIG"))
	if err != nil {
		return err
	}
	f, inf := newInformer(cs, ns)
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("did not sync")
	}
	fmt.Println(len(inf.GetStore().List()))
	<-ctx.Done()
	return nil
}

// outboxRow is when a job's outbox row was inserted (created_at: the start of the monitor's group commit
// that wrote it) and marked delivered after Core's 2xx (nil: not yet).
type outboxRow struct {
	JobID       string
	CreatedAt   time.Time
	DeliveredAt *time.Time
}

// outboxRows reads the outbox rows of ids' updates to state.
func outboxRows(ctx context.Context, databaseURL string, ids []string, state string) ([]outboxRow, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT job_id, created_at, delivered_at FROM outbox WHERE job_id = ANY($1) AND update->>'state' = $2`, ids, state)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[outboxRow])
}

// outboxWait is, per delivered row, how long it waited in the outbox: from its insert to its delivered mark.
func outboxWait(rows []outboxRow) dist {
	var d dist
	for _, r := range rows {
		if r.DeliveredAt != nil {
			d = append(d, r.DeliveredAt.Sub(r.CreatedAt))
		}
	}
	slices.Sort(d)
	return d
}

// commitSplit splits, per row, the way from the informer seeing the pod in phase to Core having state at
// the start of the monitor's group commit that wrote the row: the monitor's side (watch, reconcile, the
// commit's start) and the rest (the commit, the notification, status-report's read and Core's call).
func commitSplit(rows []outboxRow, w *watch, c *coreLog, phase, state string) (before, after dist) {
	c.refresh()
	for _, r := range rows {
		seen, ok1 := w.at(r.JobID, phase)
		got, ok2 := c.get(r.JobID, state)
		if ok1 && ok2 {
			before, after = append(before, r.CreatedAt.Sub(seen)), append(after, got.Sub(r.CreatedAt))
		}
	}
	slices.Sort(before)
	slices.Sort(after)
	return before, after
}

// loadAverage is the machine's 1, 5 and 15 minute load averages, printed beside figures.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
