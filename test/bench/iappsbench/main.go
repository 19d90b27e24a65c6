// Command iappsbench measures the configuration functions as processes on loopback: warm retrieve
// throughput beside a bare net/http hello-world, and update throughput beside a raw pgx single-row UPDATE
// loop, and update latency (p50/p99, one request at a time) beside its floor: one SQL UPDATE plus one
// apiserver GET. Each load runs for a fixed time with a fixed number of workers and stops by itself.
//
//	iappsbench -bin DIR -hello PATH [-workers 8] [-duration 5s]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/bench/benchenv"
)

const device = "MFZWI3D-BONSGYC-YLTMRWG-C43ENR5-QXGZDMM-FZWI3DP-BONSGYY-LTMRWAD"

func main() {
	bin := flag.String("bin", ".run/bench", "folder with the built functions")
	hello := flag.String("hello", ".run/bench/hellobare", "bare net/http hello-world binary")
	workers := flag.Int("workers", 8, "concurrent clients")
	duration := flag.Duration("duration", 5*time.Second, "length of each load")
	flag.Parse()
	if err := run(*bin, *hello, *workers, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "iappsbench:", err)
		os.Exit(1)
	}
}

func run(bin, hello string, workers int, d time.Duration) error {
	ctx := context.Background()
	b, err := benchenv.Start(ctx, "iapps", false)
	if err != nil {
		return err
	}
	defer b.Close()
	core := b.Core
	vars := append(b.Vars(), "JOBS_NAMESPACE=default")
	retrieve, err := benchenv.Run(filepath.Join(bin, "config-retrieve"), append(slices.Clip(vars), b.DatabaseVar("config-retrieve")))
	if err != nil {
		return err
	}
	defer retrieve.Stop()
	// The same function with its metrics on (METRICS_ADDR: a listener, and every request recorded).
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	metricsAddr := mln.Addr().String()
	mln.Close()
	retrieveMetrics, err := benchenv.Run(filepath.Join(bin, "config-retrieve"), append(slices.Clip(vars), b.DatabaseVar("config-retrieve"), "METRICS_ADDR="+metricsAddr))
	if err != nil {
		return err
	}
	defer retrieveMetrics.Stop()
	update, err := benchenv.Run(filepath.Join(bin, "config-update"), append(slices.Clip(vars), b.DatabaseVar("config-update")))
	if err != nil {
		return err
	}
	defer update.Stop()
	helloProc, err := benchenv.Run(hello, nil)
	if err != nil {
		return err
	}
	defer helloProc.Stop()
	retrieveURL, updateURL, helloURL := retrieve.URL, update.URL, helloProc.URL

	token := core.Token() // valid for an hour: longer than the run
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers * 2}}
	owners := make([]ucloud.ResourceOwner, workers)
	for i := range owners {
		owners[i] = ucloud.ResourceOwner{CreatedBy: fmt.Sprintf("user-%d#1", i)}
		// Register each key once; no folders, so no pod: the load measures the configuration path.
		if code := post(client, updateURL, "update", token, updateBody(owners[i], i)); code != 200 {
			return fmt.Errorf("first update of %s: %d", owners[i].CreatedBy, code)
		}
	}
	retrieveBody, _ := json.Marshal(iapps.RetrieveRequest{ProductID: "syncthing", Principal: owners[0]})

	fmt.Printf("%d workers, %s per load, loopback\n", workers, d)
	retrieveRate := load(workers, d, func(w, i int) bool {
		return postRaw(client, retrieveURL+"/ucloud/k8s/iapps/syncthing/retrieve", token, retrieveBody) == 200
	})
	retrieveMetricsRate := load(workers, d, func(w, i int) bool {
		return postRaw(client, retrieveMetrics.URL+"/ucloud/k8s/iapps/syncthing/retrieve", token, retrieveBody) == 200
	})
	helloRate := load(workers, d, func(w, i int) bool {
		resp, err := client.Get(helloURL + "/healthz")
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	fmt.Printf("warm retrieve (auth, cache)   %9.0f req/s\n", retrieveRate)
	fmt.Printf("  with metrics (METRICS_ADDR) %9.0f req/s   on/off = %.2f\n", retrieveMetricsRate, retrieveMetricsRate/retrieveRate)
	fmt.Printf("bare net/http hello-world     %9.0f req/s   retrieve/hello = %.2f\n", helloRate, retrieveRate/helloRate)

	updateRate := load(workers, d, func(w, i int) bool {
		return post(client, updateURL, "update", token, updateBody(owners[w], i)) == 200
	})
	pool, err := pgxpool.New(ctx, b.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	rawRate := load(workers, d, func(w, i int) bool {
		_, err := pool.Exec(ctx, "UPDATE iapp_config SET config = $1, etag = $2, updated_at = now() WHERE app = 'syncthing' AND created_by = $3 AND project = ''",
			updateBody(owners[w], i).Config, iapps.NewETag(), owners[w].CreatedBy)
		return err == nil
	})
	fmt.Printf("update (auth, validate, CAS, reconcile) %6.0f req/s\n", updateRate)
	fmt.Printf("raw pgx single-row UPDATE     %9.0f op/s    update/raw = %.2f\n", rawRate, updateRate/rawRate)

	// Latency, one request at a time (no queueing), next to its floor: what an update must do at least,
	// one SQL UPDATE and one apiserver GET, in sequence.
	// Without client-go's default limit of 5 requests/s, which alone would make the floor 200 ms.
	kcfg, err := b.Env.RESTConfig()
	if err != nil {
		return err
	}
	kcfg.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	cs, err := kubernetes.NewForConfig(kcfg)
	if err != nil {
		return err
	}
	updateLat := sequential(d, func(i int) bool { return post(client, updateURL, "update", token, updateBody(owners[0], i)) == 200 })
	floorLat := sequential(d, func(i int) bool {
		if _, err := pool.Exec(ctx, "UPDATE iapp_config SET config = $1, etag = $2, updated_at = now() WHERE app = 'syncthing' AND created_by = $3 AND project = ''",
			updateBody(owners[1], i).Config, iapps.NewETag(), owners[1].CreatedBy); err != nil {
			return false
		}
		_, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})
	fmt.Printf("update latency, one at a time                  %s\n", updateLat)
	fmt.Printf("floor: one SQL UPDATE + one apiserver GET      %s   p50 update/floor = %.2f\n", floorLat, updateLat.p(50).Seconds()/floorLat.p(50).Seconds())
	fmt.Printf("load average %s\n", loadAverage())
	return nil
}

func updateBody(owner ucloud.ResourceOwner, i int) iapps.UpdateRequest {
	return iapps.UpdateRequest{ProductID: "syncthing", Principal: owner,
		Config: json.RawMessage(fmt.Sprintf(`{"devices":[{"deviceId":"%s","label":"l%d"}],"folders":[]}`, device, i))}
}

// load runs workers for d, each calling op in a loop, and returns successful calls per second.
func load(workers int, d time.Duration, op func(worker, i int) bool) float64 {
	var ok atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				if op(w, i) {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(ok.Load()) / d.Seconds()
}

func post(c *http.Client, base, op, token string, body any) int {
	raw, _ := json.Marshal(body)
	return postRaw(c, base+"/ucloud/k8s/iapps/syncthing/"+op, token, raw)
}

func postRaw(c *http.Client, url, token string, raw []byte) int {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// latency is a sorted sample of durations.
type latency []time.Duration

func (l latency) p(q int) time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[min(len(l)-1, len(l)*q/100)]
}

func (l latency) String() string {
	r := func(x time.Duration) time.Duration { return x.Round(10 * time.Microsecond) }
	return fmt.Sprintf("p50 %s, p99 %s (%d)", r(l.p(50)), r(l.p(99)), len(l))
}

// sequential calls op one at a time for d and answers the durations of the successful calls.
func sequential(d time.Duration, op func(i int) bool) latency {
	var l latency
	for i, deadline := 0, time.Now().Add(d); time.Now().Before(deadline); i++ {
		t := time.Now()
		if op(i) {
			l = append(l, time.Since(t))
		}
	}
	slices.Sort(l)
	return l
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
