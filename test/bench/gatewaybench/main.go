// Command gatewaybench measures the local gateway as a process on loopback: requests/s and p99 latency of
// an app's page through the gateway (KIngress -> Service -> EndpointSlice, session cookie checked) beside
// the same upstream called directly, then 1,000 concurrent idle WebSocket connections held through it,
// with the gateway's RSS. Loads run for a fixed time with a fixed number of workers.
//
//	gatewaybench -gateway PATH [-workers 16] [-duration 5s] [-websockets 1000]
package main

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	netclient "knative.dev/networking/pkg/client/clientset/versioned"

	"github.com/ucloud-im/knative-im/gateway/local"
	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/appsession"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/test/bench/benchenv"
)

const key = "the gateway benchmark's signing key, long enough"

func main() {
	gw := flag.String("gateway", ".run/bench/local-gateway", "local-gateway binary")
	workers := flag.Int("workers", 16, "concurrent clients")
	duration := flag.Duration("duration", 5*time.Second, "length of each load")
	sockets := flag.Int("websockets", 1000, "idle WebSocket connections to hold")
	flag.Parse()
	if err := run(*gw, *workers, *duration, *sockets); err != nil {
		fmt.Fprintln(os.Stderr, "gatewaybench:", err)
		os.Exit(1)
	}
}

func run(gwBin string, workers int, duration time.Duration, sockets int) error {
	ctx := context.Background()
	b, err := benchenv.Start(ctx, true)
	if err != nil {
		return err
	}
	defer b.Close()
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	cs, err := kube.NewClientset(b.Env.Kubeconfig)
	if err != nil {
		return err
	}
	rc, _ := kube.ClientConfig(b.Env.Kubeconfig)
	nc, err := netclient.NewForConfig(rc)
	if err != nil {
		return err
	}
	up, upURL, err := upstream()
	if err != nil {
		return err
	}
	defer up.Close()
	host, err := exposeApp(ctx, cs, nc, upURL)
	if err != nil {
		return err
	}
	p, err := benchenv.Run(gwBin, append(b.Vars(), "JOBS_NAMESPACE=bench", "UCLOUD_GATEWAY_KEY="+key))
	if err != nil {
		return err
	}
	defer p.Stop()
	cookie := appsession.Sessions{Key: []byte(key)}.Cookie(host)
	through := func(r *http.Request) {
		r.URL.Host = strings.TrimPrefix(p.URL, "http://")
		r.Host = host
		r.AddCookie(cookie)
	}
	direct := func(r *http.Request) { r.URL.Host = upURL }
	// Wait for the gateway to see the KIngress.
	for began := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		if n, _, _ := load(ctx, 1, 50*time.Millisecond, through); n > 0 {
			break
		}
		if time.Since(began) > 20*time.Second {
			return fmt.Errorf("the gateway never served %s", host)
		}
	}
	fmt.Printf("== HTTP, %d workers, %s each (keep-alive, loopback)\n", workers, duration)
	n, lat, failed := load(ctx, workers, duration, direct)
	dn, dp50, dp99 := stats(duration, n, lat, failed)
	n, lat, failed = load(ctx, workers, duration, through)
	gn, gp50, gp99 := stats(duration, n, lat, failed)
	fmt.Printf("direct to the upstream:   %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms\n", dn, dp50, dp99)
	fmt.Printf("through the local gateway: %7.0f req/s  p50 %6.2f ms  p99 %6.2f ms\n", gn, gp50, gp99)
	fmt.Printf("ratio gateway/direct: throughput %.2f, p99 %.1fx\n", gn/dn, gp99/dp99)

	before := rss(p.PID)
	conns, err := holdWebSockets(strings.TrimPrefix(p.URL, "http://"), host, cookie, sockets)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		return fmt.Errorf("after %d WebSockets: %w", len(conns), err)
	}
	time.Sleep(2 * time.Second)
	held := rss(p.PID)
	// Every connection still works after being idle.
	echoed := 0
	for _, c := range conns {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			continue
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err == nil && string(buf) == "ping" {
			echoed++
		}
	}
	fmt.Printf("== %d idle WebSocket connections through the gateway: all opened, %d echoed after idling\n", len(conns), echoed)
	fmt.Printf("gateway RSS: %.1f MB before, %.1f MB holding them (%.1f KB per connection)\n",
		float64(before)/1024, float64(held)/1024, float64(held-before)/float64(len(conns)))
	return nil
}

// upstream is the app: a short page, and a WebSocket endpoint that echoes.
func upstream() (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			_, _ = io.WriteString(w, "a notebook page")
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", base64.StdEncoding.EncodeToString(sum[:]))
		_ = rw.Flush()
		_, _ = io.Copy(conn, rw)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr().String(), nil
}

// exposeApp makes a job-like pod (the owner), routes it with the gateway's own objects, and points its
// Service at the upstream.
func exposeApp(ctx context.Context, cs kubernetes.Interface, nc netclient.Interface, upAddr string) (string, error) {
	ns := "bench"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: kube.PodName("1", 0), Labels: kube.JobLabels("1", 0, "")},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: kube.ContainerName, Image: "bench"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	apps := &appdomain.Apps{Kube: cs, Net: nc, Settings: appdomain.Settings{Provider: "k8s", AppsDomain: "apps.localhost", Namespace: ns,
		AuthService: appdomain.AuthServiceName, AuthHost: "app-auth.ucloud-im.svc.cluster.local"}}
	if err := apps.Expose(ctx, pod, "1", 0, 8888); err != nil {
		return "", err
	}
	_, portStr, _ := net.SplitHostPort(upAddr)
	port, _ := strconv.Atoi(portStr)
	err = local.PointAtLocal(ctx, cs, ns, appdomain.AppName("1", 0), "upstream", port)
	return appdomain.AppHost("", "1", 0, "apps.localhost"), err
}

// load sends GETs from workers for d; it answers the successful requests, their latencies and the failures.
func load(ctx context.Context, workers int, d time.Duration, prepare func(*http.Request)) (int, []time.Duration, int64) {
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(end) {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://placeholder/lab", nil)
				prepare(req)
				t := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if failed.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, "  first failure:", err)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					if failed.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, "  first failure: status", resp.Status, resp.Header.Get("Server"), resp.Request.URL, resp.Request.Host)
					}
					continue
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return len(lat), lat, failed.Load()
}

func stats(d time.Duration, n int, lat []time.Duration, failed int64) (perSec, p50, p99 float64) {
	if n == 0 {
		return 0, 0, 0
	}
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
	if failed > 0 {
		fmt.Printf("  (%d requests failed)\n", failed)
	}
	return float64(n) / d.Seconds(), ms(0.5), ms(0.99)
}

func holdWebSockets(addr, host string, cookie *http.Cookie, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return conns, err
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/api/kernels/"+fmt.Sprint(i)+"/channels", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.AddCookie(cookie)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if err := req.Write(c); err != nil {
			c.Close()
			return conns, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), req)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			c.Close()
			return conns, fmt.Errorf("upgrade %d: %v %v", i, resp, err)
		}
		_ = c.SetDeadline(time.Time{})
		conns = append(conns, c)
	}
	return conns, nil
}

// rss is the process's resident set in KiB.
func rss(pid int) int64 {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(l, "VmRSS:"), "kB")), &kb)
			return kb
		}
	}
	return 0
}
