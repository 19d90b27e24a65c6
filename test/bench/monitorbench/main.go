// Command monitorbench runs the monitor and status-report as processes against the real apiserver with
// many KWOK pods, ends every job, and prints the time from each pod's phase change to the fake Core
// receiving the final state (p50/p99), the monitor's RSS, and its CPU seconds per 1,000 transitions.
//
//	monitorbench -bin DIR [-pods 10000]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/bench/benchenv"
	"github.com/ucloud-im/knative-im/test/env/localenv"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

func main() {
	bin := flag.String("bin", ".run/bench", "folder with the built functions")
	n := flag.Int("pods", 10000, "single-rank jobs")
	flag.Parse()
	if err := run(*bin, *n); err != nil {
		fmt.Fprintln(os.Stderr, "monitorbench:", err)
		os.Exit(1)
	}
}

func run(bin string, n int) error {
	ctx := context.Background()
	b, err := benchenv.Start(ctx, false)
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
	const ns = "bench-monitor"
	if _, err := localenv.PrepareJobsNamespace(ctx, cs, ns, "ucloud-filesystem"); err != nil {
		return err
	}
	// The monitor sends with its ServiceAccount's tokens and status-report checks them, as in make run.
	if err := localenv.EnsureServiceAccount(ctx, cs, localenv.IMNamespace, localenv.MonitorServiceAccount); err != nil {
		return err
	}
	core := b.Core
	vars := append(append(b.Vars(), "JOBS_NAMESPACE="+ns, "MONITOR_RESYNC=30s"), localenv.EventVars(localenv.IMNamespace)...)
	sr, err := benchenv.Run(filepath.Join(bin, "status-report"), append(slices.Clip(vars), b.DatabaseVar("status-report")))
	if err != nil {
		return err
	}
	defer sr.Stop()

	began := time.Now()
	if err := createPods(ctx, cs, ns, n); err != nil {
		return err
	}
	fmt.Printf("%d pods created in %s\n", n, time.Since(began).Round(time.Second))
	if err := waitPhase(ctx, cs, ns, n, corev1.PodRunning, 15*time.Minute); err != nil {
		return err
	}
	mon, err := benchenv.Run(filepath.Join(bin, "monitor"), append(slices.Clip(vars), "K_SINK="+sr.URL, b.DatabaseVar("monitor")))
	if err != nil {
		return err
	}
	defer mon.Stop()
	monPID := mon.PID
	// The monitor reports every job RUNNING first; wait for that before timing the final transitions.
	if err := waitUpdates(core, n, 15*time.Minute); err != nil {
		return err
	}
	cpu0 := cpuSeconds(monPID)
	changed := make([]time.Time, n)
	began = time.Now()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"0"}}}`, localenv.ExitCodeAnnotation)
				changed[i] = time.Now()
				if _, err := cs.CoreV1().Pods(ns).Patch(ctx, kube.PodName(strconv.Itoa(800000+i), 0), "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
					fmt.Fprintln(os.Stderr, err)
				}
			}
		}()
	}
	wg.Wait()
	if err := waitUpdates(core, 2*n, 15*time.Minute); err != nil {
		return err
	}
	cpu := cpuSeconds(monPID) - cpu0
	received := map[string]time.Time{}
	for _, r := range core.Received() {
		if r.Path == "/api/jobs/control/update" && strings.Contains(string(r.Body), "SUCCESS") {
			for i := range n {
				id := `"id":"` + strconv.Itoa(800000+i) + `"`
				if _, seen := received[id]; !seen && strings.Contains(string(r.Body), id+`,"update":{"state":"SUCCESS"`) {
					received[id] = r.At
				}
			}
		}
	}
	var lat []time.Duration
	for i := range n {
		if at, ok := received[`"id":"`+strconv.Itoa(800000+i)+`"`]; ok {
			lat = append(lat, at.Sub(changed[i]))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return fmt.Errorf("no final states matched")
	}
	fmt.Printf("%d final transitions in %s; phase change -> Core: p50 %s, p99 %s (%d matched)\n", n, time.Since(began).Round(time.Second),
		lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)*99/100].Round(time.Millisecond), len(lat))
	fmt.Printf("monitor RSS %s, CPU %.2f s per 1,000 transitions\n", rss(monPID), cpu/float64(n)*1000)
	return nil
}

func createPods(ctx context.Context, cs kubernetes.Interface, ns string, n int) error {
	catalog, _ := jobs.LoadCatalog("")
	p, _ := catalog.Product(ucloud.ProductReference{ID: "u1-standard-1", Category: "u1-standard"})
	app, _ := catalog.Application(ucloud.NameAndVersion{Name: "batch-ubuntu", Version: "24.04"})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				job := ucloud.Job{ID: strconv.Itoa(800000 + i), Specification: ucloud.JobSpecification{Replicas: 1}}
				objs, err := jobs.Build(job, p, app, jobs.Settings{Namespace: ns})
				if err == nil {
					_, err = cs.CoreV1().Pods(ns).Create(ctx, objs.Pods[0], metav1.CreateOptions{})
				}
				if err != nil {
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

func waitPhase(ctx context.Context, cs kubernetes.Interface, ns string, n int, phase corev1.PodPhase, limit time.Duration) error {
	for began := time.Now(); time.Since(began) < limit; time.Sleep(2 * time.Second) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelJobID})
		if err != nil {
			return err
		}
		c := 0
		for _, p := range pods.Items {
			if p.Status.Phase == phase {
				c++
			}
		}
		if c >= n {
			return nil
		}
	}
	return fmt.Errorf("pods not %s within %s", phase, limit)
}

func waitUpdates(core *fakecore.Core, n int, limit time.Duration) error {
	for began := time.Now(); time.Since(began) < limit; time.Sleep(200 * time.Millisecond) {
		if len(core.Updates()) >= n {
			return nil
		}
	}
	return fmt.Errorf("Core has %d of %d updates after %s", len(core.Updates()), n, limit)
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

func rss(pid int) string {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:"))
		}
	}
	return "?"
}
