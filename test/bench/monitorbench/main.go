// Command monitorbench runs the monitor and status-report as processes against the real apiserver with
// many KWOK pods and answers two questions separately, each next to an anchor measured in the same run:
//
//   - Steady state: N single-rank jobs are running; job state changes come at a fixed rate for a
//     duration, in turn a job ending (SUCCESS) and a new job starting (IN_QUEUE, then RUNNING), so N keep
//     running. Latency is timed from the moment a bare informer in this process sees the pod change (the
//     earliest anyone can know) to the fake Core receiving the job's new state: p50, p99, max, for the
//     final states and for the new jobs' RUNNING.
//   - Burst: every running job ends at once; the time until Core has every final state, next to the time
//     the bare informer needed to see every change, and their ratio.
//
// It also prints the monitor's RSS at N pods next to a bare informer's (a separate process: this program
// with -bare-informer, a plain client-go informer over the same pods, whole objects), the monitor's and
// status-report's CPU seconds, database round trips (counted by a loopback proxy in front of PostgreSQL
// for each), context switches and Core update calls per 1,000 transitions: job state changes, as Core
// receives them. It prints figures; it asserts no timing.
//
// Beside the steady state it times single durable commits on the same PostgreSQL (commitProbe) and pings a
// bare Go echo process (this program with -echo: what one wake-up costs, wakeups.go).
//
//	monitorbench -bin DIR [-pods 10000] [-rate 50] [-duration 60s] [-monitor-gomemlimit 80MiB]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/apps"
	"github.com/ucloud-im/knative-im/test/bench/benchenv"
	"github.com/ucloud-im/knative-im/test/env/localenv"
)

// firstJob is the id of the first job; job i is firstJob+i.
const firstJob = 800000

func main() {
	bin := flag.String("bin", ".run/bench", "folder with the built functions")
	n := flag.Int("pods", 10000, "single-rank jobs running")
	rate := flag.Float64("rate", 50, "steady state: job state changes per second, in turn a job ended (SUCCESS) and a job started (IN_QUEUE, RUNNING)")
	duration := flag.Duration("duration", time.Minute, "steady state: how long changes arrive")
	memLimit := flag.String("monitor-gomemlimit", "", "GOMEMLIMIT for the monitor process (e.g. 80MiB); unset when empty")
	bare := flag.String("bare-informer", "", "internal: run only a bare pod informer over this namespace (KUBECONFIG)")
	echoMode := flag.Bool("echo", false, "internal: run only a loopback echo server (the wake-up anchor)")
	flag.Parse()
	if *echoMode {
		if err := echoServer(); err != nil {
			fmt.Fprintln(os.Stderr, "monitorbench -echo:", err)
			os.Exit(1)
		}
		return
	}
	if *bare != "" {
		if err := bareInformer(*bare); err != nil {
			fmt.Fprintln(os.Stderr, "monitorbench -bare-informer:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*bin, *n, *rate, *duration, *memLimit); err != nil {
		fmt.Fprintln(os.Stderr, "monitorbench:", err)
		os.Exit(1)
	}
}

func run(bin string, n int, rate float64, duration time.Duration, memLimit string) error {
	ctx := context.Background()
	b, err := benchenv.Start(ctx, "monitor", false)
	if err != nil {
		return err
	}
	defer b.Close()
	cfg, err := b.Env.RESTConfig()
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 500, 1000 // a loader, not a polite controller
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ns := b.Namespace("bench-monitor")
	if _, err := localenv.PrepareJobsNamespace(ctx, cs, ns, "ucloud-filesystem"); err != nil {
		return err
	}
	// The monitor sends with its ServiceAccount's tokens and status-report checks them, as in make run.
	if err := localenv.EnsureServiceAccount(ctx, cs, localenv.IMNamespace, localenv.MonitorServiceAccount); err != nil {
		return err
	}
	watch, err := startWatch(ctx, cs, ns)
	if err != nil {
		return err
	}
	core := newCoreLog(b.Core)
	vars := append(append(b.Vars(), "JOBS_NAMESPACE="+ns, "MONITOR_RESYNC=30s"), localenv.EventVars(localenv.IMNamespace)...)
	// Each function reaches PostgreSQL through a proxy of its own that counts its round trips.
	srDB, err := newPGCounter(b.DatabaseURL)
	if err != nil {
		return err
	}
	defer srDB.Close()
	monDB, err := newPGCounter(b.DatabaseURL)
	if err != nil {
		return err
	}
	defer monDB.Close()
	srVar, err := srDB.route(b.DatabaseVar("status-report"))
	if err != nil {
		return err
	}
	monVar, err := monDB.route(b.DatabaseVar("monitor"))
	if err != nil {
		return err
	}
	srRuntime, err := deployedRuntimeEnv("status-report")
	if err != nil {
		return err
	}
	monRuntime, err := deployedRuntimeEnv("monitor")
	if err != nil {
		return err
	}
	fmt.Printf("Go runtime settings from knative/: status-report %v, monitor %v\n", srRuntime, monRuntime)
	sr, err := benchenv.Run(filepath.Join(bin, "status-report"), append(append(slices.Clip(vars), srVar), srRuntime...))
	if err != nil {
		return err
	}
	defer sr.Stop()

	began := time.Now()
	if err := createPods(ctx, cs, b.Core, ns, 0, n); err != nil {
		return err
	}
	fmt.Printf("%d pods created in %s\n", n, time.Since(began).Round(time.Second))
	if err := watch.waitRunning(n, 15*time.Minute); err != nil {
		return err
	}
	// The anchor for memory: a plain informer over the same pods, in a process of its own. It keeps
	// running: its CPU, decoding the same watch events and nothing more, is the anchor of the functions'.
	bare, bareRSS, err := startBareInformer(b.Env.Kubeconfig, ns, n)
	if err != nil {
		return err
	}
	defer bare.stop()
	// At info the monitor logs each change it reports with its stage timings (the breakdown below).
	stageLog, monLog := newStageLog()
	monVars := append(append(slices.Clip(vars), "K_SINK="+sr.URL, monVar, "LOG_LEVEL=info"), monRuntime...)
	if memLimit != "" {
		monVars = append(monVars, "GOMEMLIMIT="+memLimit) // the Go runtime's soft memory limit, printed below
	}
	mon, err := benchenv.RunLogging(filepath.Join(bin, "monitor"), monVars, monLog)
	if err != nil {
		return err
	}
	defer mon.Stop()
	// The monitor reports every job RUNNING first; wait for that before timing anything.
	if err := core.waitStates(jobIDs(0, n), "RUNNING", 15*time.Minute); err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // let the monitor settle after its first list
	limit := "GOMEMLIMIT not set"
	if memLimit != "" {
		limit = "GOMEMLIMIT=" + memLimit
	}
	fmt.Printf("memory at %d pods: monitor RSS %.1f MB (%s), bare informer RSS %.1f MB (separate process: client-go informer, whole pods), ratio %.2fx\n",
		n, mb(rss(mon.PID)), limit, mb(bareRSS), float64(rss(mon.PID))/float64(bareRSS))
	// What the monitor costs with nothing changing (its periodic passes over every job), the part of the
	// CPU per 1,000 transitions below that does not depend on the transitions.
	idleFrom := cpuSeconds(mon.PID)
	time.Sleep(10 * time.Second)
	fmt.Printf("monitor CPU at rest with %d pods (no changes, 10 s): %.1f ms per second\n", n, (cpuSeconds(mon.PID)-idleFrom)*100)

	// Steady state: 3k job state changes at the rate, in turn one of k jobs ending and one of k new jobs
	// starting (two changes).
	k := min(int(rate*duration.Seconds())/3, n)
	usage := newUsage(core, mon.PID, sr.PID, bare.pid, monDB, srDB)
	// The anchor's commits go through a counting proxy of their own, as the functions' do (under load the
	// proxy, in this busy process, adds its share), and straight to PostgreSQL beside it.
	probeDB, err := newPGCounter(b.DatabaseURL)
	if err != nil {
		return err
	}
	defer probeDB.Close()
	probeVar, err := probeDB.route("URL=" + b.DatabaseURL)
	if err != nil {
		return err
	}
	probe, err := startCommitProbe(ctx, strings.TrimPrefix(probeVar, "URL="))
	if err != nil {
		return err
	}
	direct, err := startCommitProbe(ctx, b.DatabaseURL)
	if err != nil {
		return err
	}
	// The anchor of a wake-up's cost, pinged about as often as the monitor is woken in the steady state.
	echo, err := startEchoAnchor(monRuntime, 4*rate)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := steady(ctx, cs, b.Core, ns, n, k, rate); err != nil {
		echo.stop()
		return err
	}
	steadyTook := time.Since(t0)
	echoCPU, echoSwitches := echo.stop()
	commits, err := probe.stop()
	if err != nil {
		return err
	}
	directCommits, err := direct.stop()
	if err != nil {
		return err
	}
	if err := core.waitStates(jobIDs(0, k), "SUCCESS", 15*time.Minute); err != nil {
		return err
	}
	if err := core.waitStates(jobIDs(n, k), "RUNNING", 15*time.Minute); err != nil {
		return err
	}
	ended := latencies(watch, core, jobIDs(0, k), "Succeeded", "SUCCESS")
	started := latencies(watch, core, jobIDs(n, k), "Running", "RUNNING")
	fmt.Printf("== steady state: %d jobs running, %d job state changes at %.0f/s (over %s): %d jobs ended (SUCCESS) and as many new jobs started (IN_QUEUE, RUNNING), in turn\n", n, 3*k, rate, steadyTook.Round(time.Millisecond), k)
	fmt.Printf("informer sees pod Succeeded -> Core has SUCCESS: %s\n", ended)
	fmt.Printf("informer sees pod Running   -> Core has RUNNING: %s\n", started)
	fmt.Printf("anchor: one durable single-row commit due every 20 ms on the same PostgreSQL meanwhile (open loop: each timed from when it was due), through a counting proxy as the functions' (%s) and direct (%s); a change no longer waits for one before Core may have it (its intent and outbox row are committed lazily; the durable commit of its acceptances follows, gathered over acceptGather in shared/monitor)\n",
		commits.brief(), directCommits.brief())
	endedRows, err := outboxRows(ctx, b.DatabaseURL, jobIDs(0, k), "SUCCESS")
	if err != nil {
		return err
	}
	fmt.Printf("in the monitor, per stage (queue wait, read last state, iapp lookup: only for a job with an application's pod or none, fold, usage record queued, lazy group commit of usage record + intent + outbox row, which also notifies status-report's listener, send to status-report: none while it listens but one every 5 s, acceptance queued), SUCCESS: %s\n",
		stageLog.breakdown(jobIDs(0, k), "SUCCESS"))
	toCommit, fromCommit := commitSplit(endedRows, watch, core, "Succeeded", "SUCCESS")
	fmt.Printf("the same split where the monitor's group commit begins (its transaction's start), SUCCESS: informer sees the pod -> the commit begins: %s; the commit begins -> Core has it (the commit, the notification, status-report's read and Core's call): %s\n", toCommit, fromCommit)
	fmt.Printf("in the outbox (from the monitor's group commit, which overlaps the intent stage, to marked delivered after Core's 2xx, a mark waiting up to markDelay, shared/status, to share the next read's round trip), SUCCESS: %s\n", outboxWait(endedRows))
	fmt.Printf("load average %s\n", loadAverage())
	usage.print(3*k, 2*k)
	fmt.Printf("anchor: a bare Go echo process with the monitor's runtime settings, pinged over loopback %.0f times a second meanwhile: %.0f us of CPU per ping, %.1f context switches per ping\n",
		4*rate, echoCPU, echoSwitches)

	// Burst: every running job ends at once.
	burst := append(jobIDs(k, n-k), jobIDs(n, k)...)
	usage = newUsage(core, mon.PID, sr.PID, bare.pid, monDB, srDB)
	t0 = time.Now()
	if err := endPods(ctx, cs, ns, burst); err != nil {
		return err
	}
	patched := time.Since(t0)
	if err := core.waitStates(burst, "SUCCESS", 30*time.Minute); err != nil {
		return err
	}
	if err := watch.waitPhase(burst, "Succeeded", time.Minute); err != nil {
		return err
	}
	seen, got := watch.last(burst, "Succeeded").Sub(t0), core.last(burst, "SUCCESS").Sub(t0)
	fmt.Printf("== burst: %d running jobs ended at once (patches sent in %s)\n", len(burst), patched.Round(time.Millisecond))
	fmt.Printf("bare informer saw every change after %s; Core had every final state after %s; ratio %.2fx\n",
		seen.Round(time.Millisecond), got.Round(time.Millisecond), got.Seconds()/seen.Seconds())
	fmt.Printf("informer sees pod Succeeded -> Core has SUCCESS: %s\n", latencies(watch, core, burst, "Succeeded", "SUCCESS"))
	fmt.Printf("load average %s\n", loadAverage())
	usage.print(len(burst), len(burst))
	fmt.Printf("monitor RSS after the burst %.1f MB (%d pods in the namespace)\n", mb(rss(mon.PID)), n+k)
	// Best effort: a shared environment should not carry thousands of pods into the next program.
	_ = cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	return nil
}

func jobIDs(from, count int) []string {
	ids := make([]string, count)
	for i := range ids {
		ids[i] = strconv.Itoa(firstJob + from + i)
	}
	return ids
}

// steady makes 3k job state changes at rate per second: on the first of every three ticks one of jobs
// 0..k-1 ends (SUCCESS), on the second one of jobs n..n+k-1 starts (IN_QUEUE), and the third is its
// RUNNING. Each request runs on its own goroutine so that a slow one does not delay the next tick.
func steady(ctx context.Context, cs kubernetes.Interface, core knownJobs, ns string, n, k int, rate float64) error {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	errs := make(chan error, 2*k)
	for i := range 3 * k {
		<-tick.C
		switch i % 3 {
		case 0:
			wg.Go(func() { errs <- endPods(ctx, cs, ns, jobIDs(i/3, 1)) })
		case 1:
			wg.Go(func() { errs <- createPods(ctx, cs, core, ns, n+i/3, 1) })
		}
		// The third: the job started last becomes RUNNING (KWOK runs its pod).
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// endPods has KWOK end each job's pod with exit code 0, from 8 workers.
func endPods(ctx context.Context, cs kubernetes.Interface, ns string, ids []string) error {
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"0"}}}`, localenv.ExitCodeAnnotation)
	return parallel(len(ids), func(i int) error {
		_, err := cs.CoreV1().Pods(ns).Patch(ctx, kube.PodName(ids[i], 0), "application/merge-patch+json", patch, metav1.PatchOptions{})
		return err
	})
}

// createPods creates the pods of jobs from..from+count-1 as job-create builds them, from 8 workers, each a
// job Core knows (as one it created: else the monitor's orphan sweep removes it after its grace, two
// minutes, in the middle of the run).
func createPods(ctx context.Context, cs kubernetes.Interface, core knownJobs, ns string, from, count int) error {
	catalog, err := jobs.LoadCatalog("")
	if err != nil {
		return err
	}
	p, _ := catalog.Product(ucloud.ProductReference{ID: "u1-standard-1", Category: "u1-standard"})
	var batch ucloud.Job
	apps.Load("batch").Apply(&batch)
	app, err := jobs.ResolveApplication(batch, nil)
	if err != nil {
		return err
	}
	return parallel(count, func(i int) error {
		job := ucloud.Job{ID: strconv.Itoa(firstJob + from + i), Specification: ucloud.JobSpecification{Replicas: 1}}
		core.PutJob(job)
		objs, err := jobs.MakeObjects(job, p, app, jobs.Settings{Namespace: ns})
		if err == nil {
			_, err = cs.CoreV1().Pods(ns).Create(ctx, objs.Pods[0], metav1.CreateOptions{})
		}
		return err
	})
}

// knownJobs is the fake Core's record of the jobs it created.
type knownJobs interface{ PutJob(j ucloud.Job) }

// parallel runs op for 0..count-1 on up to 8 workers and answers the first error.
func parallel(count int, op func(i int) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range min(8, count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < count; i += 8 {
				if err := op(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// bareProcess is this program running as a bare informer (-bare-informer).
type bareProcess struct {
	pid  int
	stop func()
}

// startSelf starts this program with args (an internal mode) and env added, reads the first value it prints
// into first, and answers the process; on any failure the process is gone.
func startSelf(env []string, first any, args ...string) (*bareProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &bareProcess{pid: cmd.Process.Pid, stop: func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }}
	if _, err := fmt.Fscan(out, first); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s: %w", args[0], err)
	}
	return p, nil
}

// startBareInformer starts this program as a bare informer over ns and answers it with its RSS (KiB) once
// it holds n pods.
func startBareInformer(kubeconfig, ns string, n int) (*bareProcess, int64, error) {
	// It prints the number of pods it holds once synced.
	var held int
	p, err := startSelf([]string{"KUBECONFIG=" + kubeconfig}, &held, "-bare-informer", ns)
	if err != nil {
		return nil, 0, err
	}
	if held < n {
		p.stop()
		return nil, 0, fmt.Errorf("bare informer holds %d pods, want %d", held, n)
	}
	time.Sleep(time.Second)
	return p, rss(p.pid), nil
}
