// Command iappsbench measures the configuration functions as processes on loopback: warm retrieve
// throughput beside a bare net/http hello-world, and update throughput beside a raw pgx single-row UPDATE
// loop. Each load runs for a fixed time with a fixed number of workers and stops by itself.
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
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/env/localenv"
	"github.com/ucloud-im/knative-im/test/fakecore"
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
	project, err := localenv.ProjectDir()
	if err != nil {
		return err
	}
	kubeBin, err := localenv.BuildBinaries(ctx, project)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "iappsbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { // PostgreSQL's user must reach its data folder inside
		return err
	}
	e, err := localenv.Start(ctx, localenv.Options{Dir: filepath.Join(dir, "env"), BinDir: kubeBin, ProjectDir: project})
	if err != nil {
		return err
	}
	defer e.Stop()
	core, err := fakecore.New(fakecore.Options{})
	if err != nil {
		return err
	}
	defer core.Close()
	if err := core.WriteFiles(dir); err != nil {
		return err
	}
	vars := []string{"DATABASE_URL=" + e.DatabaseURL, "KUBECONFIG=" + e.Kubeconfig, "JOBS_NAMESPACE=default",
		"UCLOUD_PROVIDER_ID=k8s", "UCLOUD_CORE_URL=" + core.URL(), "LOG_LEVEL=error",
		"UCLOUD_CORE_PUBLIC_KEY_FILE=" + filepath.Join(dir, fakecore.PublicKeyFile),
		"UCLOUD_REFRESH_TOKEN_FILE=" + filepath.Join(dir, fakecore.RefreshTokenFile)}
	retrieveURL, stop1, err := start(filepath.Join(bin, "config-retrieve"), vars)
	if err != nil {
		return err
	}
	defer stop1()
	updateURL, stop2, err := start(filepath.Join(bin, "config-update"), vars)
	if err != nil {
		return err
	}
	defer stop2()
	helloURL, stop3, err := start(hello, nil)
	if err != nil {
		return err
	}
	defer stop3()

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
	fmt.Printf("bare net/http hello-world     %9.0f req/s   retrieve/hello = %.2f\n", helloRate, retrieveRate/helloRate)

	updateRate := load(workers, d, func(w, i int) bool {
		return post(client, updateURL, "update", token, updateBody(owners[w], i)) == 200
	})
	db, err := store.Open(ctx, e.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	pool, err := pgxpool.New(ctx, e.DatabaseURL)
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
	return nil
}

func updateBody(owner ucloud.ResourceOwner, i int) iapps.UpdateRequest {
	return iapps.UpdateRequest{ProductID: "syncthing", Principal: owner,
		Config: json.RawMessage(`{"devices":[{"deviceId":"` + device + `","label":"l` + strconv.Itoa(i) + `"}],"folders":[]}`)}
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

// start runs a binary on a free loopback port and waits for /healthz.
func start(path string, vars []string) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(path)
	cmd.Env = append(append(os.Environ(), vars...), "PORT="+strconv.Itoa(port))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	for began := time.Now(); time.Since(began) < 20*time.Second; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			return url, stop, nil
		}
	}
	stop()
	return "", nil, fmt.Errorf("%s did not start", path)
}
