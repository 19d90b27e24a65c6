// Command jobsbench creates 1,000 single-rank jobs through the job-create function (bulk requests of 100,
// loopback) and the same objects with direct client-go loops: the anchor with no client-side limit from
// several workers (the apiserver's own pace), and the same loop under job-create's client-side limit.
//
//	jobsbench -bin DIR [-jobs 1000] [-bulk 100]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/apps"
	"github.com/ucloud-im/knative-im/test/bench/benchenv"
	"github.com/ucloud-im/knative-im/test/env/localenv"
)

func main() {
	bin := flag.String("bin", ".run/bench", "folder with the built functions")
	n := flag.Int("jobs", 1000, "jobs to create")
	bulk := flag.Int("bulk", 100, "jobs per request")
	flag.Parse()
	if err := run(*bin, *n, *bulk); err != nil {
		fmt.Fprintln(os.Stderr, "jobsbench:", err)
		os.Exit(1)
	}
}

func run(bin string, n, bulk int) error {
	ctx := context.Background()
	b, err := benchenv.Start(ctx, "jobs", true)
	if err != nil {
		return err
	}
	defer b.Close()
	cs, err := b.Env.Clientset()
	if err != nil {
		return err
	}
	nsFn, nsDirect, nsFree := b.Namespace("bench-fn"), b.Namespace("bench-direct"), b.Namespace("bench-free")
	for _, ns := range []string{nsFn, nsDirect, nsFree} {
		if _, err := localenv.PrepareJobsNamespace(ctx, cs, ns, "ucloud-filesystem"); err != nil {
			return err
		}
	}
	fnProc, err := benchenv.Run(filepath.Join(bin, "job-create"), append(b.Vars(), "JOBS_NAMESPACE="+nsFn))
	if err != nil {
		return err
	}
	defer fnProc.Stop()
	url, core := fnProc.URL, b.Core
	batchApp := apps.Load("batch")
	mk := func(i int) ucloud.Job {
		job := ucloud.Job{ID: strconv.Itoa(100000 + i), CreatedAt: time.Now().UnixMilli(), Owner: ucloud.ResourceOwner{CreatedBy: "bench#1"},
			Specification: ucloud.JobSpecification{Product: ucloud.ProductReference{ID: "u1-standard-1", Category: "u1-standard", Provider: "k8s"},
				Replicas: 1, Resources: []ucloud.AppParameterValue{}}}
		batchApp.Apply(&job)
		return job
	}
	token := core.Token()
	began := time.Now()
	for start := 0; start < n; start += bulk {
		var items []ucloud.Job
		for i := start; i < min(start+bulk, n); i++ {
			items = append(items, mk(i))
		}
		raw, _ := json.Marshal(ucloud.BulkRequest[ucloud.Job]{Items: items})
		req, _ := http.NewRequest(http.MethodPost, url+"/ucloud/k8s/jobs", bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || bytes.Contains(body, []byte("why")) {
			return fmt.Errorf("bulk at %d: %d %s", start, resp.StatusCode, body)
		}
	}
	viaFn := time.Since(began)

	catalog, err := jobs.LoadCatalog("")
	if err != nil {
		return err
	}
	p, _ := catalog.Product(ucloud.ProductReference{ID: "u1-standard-1", Category: "u1-standard"})
	app, err := jobs.ResolveApplication(mk(0), nil)
	if err != nil {
		return err
	}
	create := func(cs kubernetes.Interface, ns string, i int) error {
		objs, err := jobs.MakeObjects(mk(i), p, app, jobs.Settings{Namespace: ns})
		if err != nil {
			return err
		}
		pod, err := cs.CoreV1().Pods(ns).Create(ctx, objs.Pods[0], metav1.CreateOptions{})
		if err != nil {
			return err
		}
		owner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}}
		objs.Service.OwnerReferences, objs.Policy.OwnerReferences = owner, owner
		if _, err := cs.CoreV1().Services(ns).Create(ctx, objs.Service, metav1.CreateOptions{}); err != nil {
			return err
		}
		_, err = cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, objs.Policy, metav1.CreateOptions{})
		return err
	}
	// The anchor: the apiserver's own pace, a direct loop with no client-side limit from several workers.
	free, _ := b.Env.RESTConfig()
	free.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	freeCS, err := kubernetesFor(free)
	if err != nil {
		return err
	}
	began = time.Now()
	if err := parallel(n, directWorkers, func(i int) error { return create(freeCS, nsFree, i) }); err != nil {
		return err
	}
	freeTime := time.Since(began)
	// The same loop under job-create's own client-side limit (kube.ClientConfig), to show what the limit costs.
	limited, err := kube.ClientConfig(b.Env.Kubeconfig)
	if err != nil {
		return err
	}
	limitedCS, err := kubernetesFor(limited)
	if err != nil {
		return err
	}
	began = time.Now()
	if err := parallel(n, directWorkers, func(i int) error { return create(limitedCS, nsDirect, i) }); err != nil {
		return err
	}
	limitedTime := time.Since(began)
	rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
	fmt.Printf("%d single-rank jobs (pod + service + policy each, 3 requests)\n", n)
	fmt.Printf("direct client-go, no client-side limit, %d workers (anchor: the apiserver's pace) %8.2f s  (%.0f jobs/s)\n", directWorkers, freeTime.Seconds(), rate(freeTime))
	fmt.Printf("direct client-go at job-create's limit (%.0f requests/s, burst %d), %d workers  %8.2f s  (%.0f jobs/s; the limit allows %.0f jobs/s after the burst)\n",
		limited.QPS, limited.Burst, directWorkers, limitedTime.Seconds(), rate(limitedTime), float64(limited.QPS)/3)
	fmt.Printf("job-create, bulks of %d                                                 %8.2f s  (%.0f jobs/s)   job-create/anchor = %.2f\n", bulk, viaFn.Seconds(), rate(viaFn), viaFn.Seconds()/freeTime.Seconds())
	fmt.Printf("load average %s\n", loadAverage())
	return nil
}

// directWorkers is how many goroutines the direct loops create jobs from.
const directWorkers = 8

// parallel runs op for 0..count-1 on workers goroutines and answers the first error.
func parallel(count, workers int, op func(i int) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range min(workers, count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < count; i += workers {
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

// loadAverage is the machine's 1, 5 and 15 minute load averages, printed beside the figures.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	return strings.Join(f[:min(3, len(f))], " ")
}
