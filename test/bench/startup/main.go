// Command startup measures process exec -> first 200 from /healthz, over N starts of each binary given,
// and prints the median and the 90th percentile beside the stripped binary size.
//
//	startup -n 20 name=path/to/binary ...
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
	fmt.Printf("%-12s %8s %8s %8s %10s\n", "binary", "median", "p90", "max", "size")
	for _, arg := range flag.Args() {
		name, path, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintln(os.Stderr, "argument must be name=path")
			os.Exit(2)
		}
		var times []time.Duration
		for range *n {
			d, err := once(path)
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
		fmt.Printf("%-12s %6.1fms %6.1fms %6.1fms %8.1fMB\n", name, ms(times[len(times)/2]), ms(times[len(times)*9/10]), ms(times[len(times)-1]), float64(info.Size())/1e6)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// once starts the binary on a free port and polls /healthz every 0.5 ms until it answers 200.
func once(path string) (time.Duration, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "LOG_LEVEL=error")
	client := &http.Client{Timeout: time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for time.Since(began) < 10*time.Second {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(began), nil
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
	return 0, fmt.Errorf("%s did not answer /healthz within 10 s", path)
}
