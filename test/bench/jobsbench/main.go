// Command jobsbench creates 1,000 single-rank jobs through the job-create function (bulk requests of 100,
// loopback) and the same objects with a direct client-go loop, and prints both wall times and their ratio.
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
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/jobs"
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
	nsFn, nsDirect := b.Namespace("bench-fn"), b.Namespace("bench-direct")
	for _, ns := range []string{nsFn, nsDirect} {
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
	cfg, _ := b.Env.RESTConfig()
	cfg.QPS, cfg.Burst = 100, 200 // as the functions' clients
	direct, err := kubernetesFor(cfg)
	if err != nil {
		return err
	}
	began = time.Now()
	for i := range n {
		objs, err := jobs.Build(mk(i), p, app, jobs.Settings{Namespace: nsDirect})
		if err != nil {
			return err
		}
		pod, err := direct.CoreV1().Pods(nsDirect).Create(ctx, objs.Pods[0], metav1.CreateOptions{})
		if err != nil {
			return err
		}
		owner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}}
		objs.Service.OwnerReferences, objs.Policy.OwnerReferences = owner, owner
		if _, err := direct.CoreV1().Services(nsDirect).Create(ctx, objs.Service, metav1.CreateOptions{}); err != nil {
			return err
		}
		if _, err := direct.NetworkingV1().NetworkPolicies(nsDirect).Create(ctx, objs.Policy, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	directTime := time.Since(began)
	fmt.Printf("%d single-rank jobs (pod + service + policy each)\n", n)
	fmt.Printf("job-create, bulks of %d   %8.2f s  (%.0f jobs/s)\n", bulk, viaFn.Seconds(), float64(n)/viaFn.Seconds())
	fmt.Printf("direct client-go loop      %8.2f s  (%.0f jobs/s)   function/direct = %.2f\n", directTime.Seconds(), float64(n)/directTime.Seconds(), viaFn.Seconds()/directTime.Seconds())
	return nil
}
