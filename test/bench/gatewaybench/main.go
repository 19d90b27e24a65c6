// Command gatewaybench measures the application domain's path as processes on loopback against the same
// upstream called directly (the anchor): requests/s and latency of an app's page, and messages/s and
// latency of a WebSocket echo, through app-auth alone (what the IM adds in a cluster, where the ingress
// was in the path anyway) and through the local gateway + app-auth (make run's whole path); then idle
// WebSockets held through them, with the memory each adds. Loads run for a fixed time with fixed workers.
//
//	gatewaybench -gateway PATH -appauth PATH [-workers 16] [-duration 5s] [-websockets 1000]
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
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/test/bench/benchenv"
)

const key = "the gateway benchmark's signing key, long enough"

func main() {
	gw := flag.String("gateway", ".run/bench/local-gateway", "local-gateway binary")
	auth := flag.String("appauth", ".run/bench/app-auth", "app-auth binary")
	workers := flag.Int("workers", 16, "concurrent clients")
	duration := flag.Duration("duration", 5*time.Second, "length of each load")
	sockets := flag.Int("websockets", 1000, "idle WebSocket connections to hold")
	flag.Parse()
	if err := run(*gw, *auth, *workers, *duration, *sockets); err != nil {
		fmt.Fprintln(os.Stderr, "gatewaybench:", err)
		os.Exit(1)
	}
}

// path is one way to the app: an address and the Host and cookie to send.
type path struct {
	name, addr, host string
	cookie           *http.Cookie
}

func run(gwBin, authBin string, workers int, duration time.Duration, sockets int) error {
	ctx := context.Background()
	b, err := benchenv.Start(ctx, "gateway", false)
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
	up, upAddr, err := upstream()
	if err != nil {
		return err
	}
	defer up.Close()
	ns := b.Namespace("bench")
	host, err := exposeApp(ctx, cs, nc, ns, upAddr)
	if err != nil {
		return err
	}
	vars := append(b.Vars(), "JOBS_NAMESPACE="+ns, "UCLOUD_GATEWAY_KEY="+key)
	// app-auth records used one-time tokens as its own database role, as in make run.
	auth, err := benchenv.Run(authBin, append(slices.Clip(vars), "APP_UPSTREAMS=local", b.DatabaseVar(store.FnAppAuth)))
	if err != nil {
		return err
	}
	defer auth.Stop()
	gw, err := benchenv.Run(gwBin, append(vars, "FN_APP_AUTH="+auth.URL))
	if err != nil {
		return err
	}
	defer gw.Stop()
	cookie := appsession.Sessions{Key: []byte(key)}.Cookie(host)
	paths := []path{
		{"direct to the upstream", upAddr, host, nil},
		{"through app-auth", strings.TrimPrefix(auth.URL, "http://"), host, cookie},
		{"through gateway + app-auth", strings.TrimPrefix(gw.URL, "http://"), host, cookie},
	}
	// Wait until app-auth and the gateway know the app.
	for began := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		if n, _, _ := load(ctx, 1, 50*time.Millisecond, paths[2]); n > 0 {
			break
		}
		if time.Since(began) > 20*time.Second {
			return fmt.Errorf("the gateway never served %s", host)
		}
	}

	fmt.Printf("== HTTP GET, %d workers, %s each (keep-alive, loopback)\n", workers, duration)
	var base [3]float64
	for i, p := range paths {
		n, lat, failed := load(ctx, workers, duration, p)
		perSec, p50, p99 := stats(duration, n, lat, failed)
		if i == 0 {
			base = [3]float64{perSec, p50, p99}
		}
		fmt.Printf("%-28s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  ratio: throughput %.2fx, p99 %.1fx\n", p.name, perSec, p50, p99, perSec/base[0], p99/base[2])
	}
	fmt.Printf("== WebSocket echo, %d connections, %s each (16-byte messages, one in flight per connection)\n", workers, duration)
	for i, p := range paths {
		n, lat, err := echo(p, workers, duration)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		perSec, p50, p99 := stats(duration, n, lat, 0)
		if i == 0 {
			base = [3]float64{perSec, p50, p99}
		}
		fmt.Printf("%-28s %8.0f msg/s  p50 %6.2f ms  p99 %6.2f ms  ratio: throughput %.2fx, p99 %.1fx\n", p.name, perSec, p50, p99, perSec/base[0], p99/base[2])
	}

	// Once, through both processes: a second batch would reuse memory the first left in each process.
	// app-auth's share is what an open WebSocket adds in a cluster.
	fmt.Printf("== %d idle WebSockets held\n", sockets)
	for _, c := range []struct {
		p     path
		procs []*benchenv.Process
		names []string
	}{
		{paths[2], []*benchenv.Process{auth, gw}, []string{"app-auth", "gateway"}},
	} {
		before := make([]int64, len(c.procs))
		for i, p := range c.procs {
			before[i] = rss(p.PID)
		}
		conns, err := holdWebSockets(c.p, sockets)
		if err != nil {
			closeAll(conns)
			return fmt.Errorf("%s, after %d WebSockets: %w", c.p.name, len(conns), err)
		}
		time.Sleep(2 * time.Second)
		var parts []string
		for i, p := range c.procs {
			held := rss(p.PID)
			parts = append(parts, fmt.Sprintf("%s %.1f -> %.1f MB (%.1f KB each)", c.names[i], float64(before[i])/1024, float64(held)/1024, float64(held-before[i])/float64(len(conns))))
		}
		echoed := 0
		for _, conn := range conns {
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 4)
			if _, err := conn.Write([]byte("ping")); err == nil {
				if _, err := io.ReadFull(conn, buf); err == nil && string(buf) == "ping" {
					echoed++
				}
			}
		}
		closeAll(conns)
		fmt.Printf("%-28s %d open, %d echoed after idling; RSS %s\n", c.p.name, len(conns), echoed, strings.Join(parts, ", "))
	}
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

// exposeApp makes a job-like pod (the owner), routes it with job-create's own objects, and points its
// Service at the upstream.
func exposeApp(ctx context.Context, cs kubernetes.Interface, nc netclient.Interface, ns, upAddr string) (string, error) {
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
	return appdomain.AppHost("1", 0, "apps.localhost"), err
}

// load sends GETs from workers for d; it answers the successful requests, their latencies and the failures.
func load(ctx context.Context, workers int, d time.Duration, p path) (int, []time.Duration, int64) {
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
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/lab", nil)
				req.Host = p.host
				if p.cookie != nil {
					req.AddCookie(p.cookie)
				}
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
						fmt.Fprintln(os.Stderr, "  first failure: status", resp.Status)
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

// echo opens one WebSocket per worker and sends 16-byte messages, each after the previous one's echo.
func echo(p path, workers int, d time.Duration) (int, []time.Duration, error) {
	conns, err := holdWebSockets(p, workers)
	defer closeAll(conns)
	if err != nil {
		return 0, nil, err
	}
	var mu sync.Mutex
	var lat []time.Duration
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg, buf := []byte("0123456789abcdef"), make([]byte, 16)
			var mine []time.Duration
			_ = c.SetDeadline(end.Add(10 * time.Second))
			for time.Now().Before(end) {
				t := time.Now()
				if _, err := c.Write(msg); err != nil {
					break
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					break
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return len(lat), lat, nil
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

// holdWebSockets opens n WebSockets from the app's own origin (app-auth refuses any other).
func holdWebSockets(p path, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			return conns, err
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+p.host+"/api/kernels/"+fmt.Sprint(i)+"/channels", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.Header.Set("Origin", "http://"+p.host)
		if p.cookie != nil {
			req.AddCookie(p.cookie)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if err := req.Write(c); err != nil {
			c.Close()
			return conns, err
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, req)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			c.Close()
			return conns, fmt.Errorf("upgrade %d: %v %v", i, resp, err)
		}
		if br.Buffered() > 0 {
			c.Close()
			return conns, fmt.Errorf("upgrade %d: bytes after the handshake", i)
		}
		_ = c.SetDeadline(time.Time{})
		conns = append(conns, c)
	}
	return conns, nil
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
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
