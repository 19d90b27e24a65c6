// Command startup measures process exec -> first 200 from /healthz, over N starts of each binary given,
// and prints the median and the 90th percentile beside the stripped binary size.
//
//	startup -n 20 name=path/to/binary ...
//
// A name ending in "+metrics" starts the binary with METRICS_ADDR set (shared/metrics) and waits for its
// /metrics to answer as well; its line also gives its median as a ratio of the binary named just before.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	n := flag.Int("n", 20, "starts per binary")
	flag.Parse()
	fmt.Printf("%-16s %8s %8s %8s %10s\n", "binary", "median", "p90", "max", "size")
	var prev time.Duration
	for _, arg := range flag.Args() {
		name, path, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintln(os.Stderr, "argument must be name=path")
			os.Exit(2)
		}
		var times []time.Duration
		for range *n {
			d, err := once(path, strings.HasSuffix(name, "+metrics"))
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
				os.Exit(1)
			}
			times = append(times, d)
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		info, err := os.Stat(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%-16s %6.1fms %6.1fms %6.1fms %8.1fMB", name, ms(times[len(times)/2]), ms(times[len(times)*9/10]), ms(times[len(times)-1]), float64(info.Size())/1e6)
		if strings.HasSuffix(name, "+metrics") && prev > 0 {
			fmt.Printf("  median %.2fx the line above (metrics listener on vs off)", float64(times[len(times)/2])/float64(prev))
		}
		fmt.Println()
		prev = times[len(times)/2]
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// once starts the binary on a free port and polls /healthz every 0.5 ms until it answers 200.
func once(path string, withMetrics bool) (time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "LOG_LEVEL=error")
	urls := []string{fmt.Sprintf("http://127.0.0.1:%d/healthz", port)}
	if withMetrics {
		mport, err := freePort()
		if err != nil {
			return 0, err
		}
		cmd.Env = append(cmd.Env, fmt.Sprintf("METRICS_ADDR=127.0.0.1:%d", mport))
		urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
	}
	client := &http.Client{Timeout: time.Second}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for _, url := range urls {
		for {
			if time.Since(began) > 10*time.Second {
				return 0, fmt.Errorf("%s did not answer %s within 10 s", path, url)
			}
			resp, err := client.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			time.Sleep(500 * time.Microsecond)
		}
	}
	return time.Since(began), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
