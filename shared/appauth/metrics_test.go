package appauth_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/appauth"
	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/metrics"
	"github.com/ucloud-im/knative-im/test/apphost"
	"github.com/ucloud-im/knative-im/test/envtest"
	"github.com/ucloud-im/knative-im/test/scrape"
)

// app-auth counts every request it answers by what its decision made of it (refused, authorize, app,
// app-websocket: never the client's own host or path, which would let a client grow the label set) and
// status, and the application WebSockets open now. The attacker's and the user's requests of the raw-request
// test, sent once each, move the counters by exactly those requests; a tunnel held open is one open
// session until the browser leaves.
func TestRequestsAndTunnelsAreCounted(t *testing.T) {
	r := newRig(t)
	reg := metrics.New("app-auth")
	h := appauth.NewHandler(r.h.Decider, r.h.Ledger, r.h.Targets, fn.NewLogger(io.Discard, "app-auth", "info"))
	h.Ready = r.h.Ready
	h.Metrics = appauth.NewMetrics(reg)
	srv := httptest.NewServer(h)
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	metricsSrv := httptest.NewServer(reg.Handler())
	defer metricsSrv.Close()
	read := func() scrape.Samples {
		t.Helper()
		got, err := scrape.Get(metricsSrv.URL + metrics.Path)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	host, other := appdomain.AppHost("7", 0, domain), appdomain.AppHost("8", 0, domain)
	tok, err := sessions.IssueToken(host)
	if err != nil {
		t.Fatal(err)
	}
	before := read()
	cases := apphost.Cases("k8s", apphost.Target{Host: host, Cookie: cookieHeader(host), Token: tok,
		OtherHost: other, OtherCookie: cookieHeader(other), Origin: "http://" + host})
	apphost.Check(t, addr, r.app, cases)
	// Probes are the platform's, not users' requests: not counted.
	for _, probe := range []string{"/healthz", "/readyz"} {
		if a := apphost.Send(t, addr, "GET "+probe+" HTTP/1.1\r\nHost: app-auth\r\nConnection: close\r\n\r\n"); a.Status != 200 {
			t.Fatalf("%s: %d %s", probe, a.Status, a.Body)
		}
	}

	byCode := map[int]float64{}
	for _, c := range cases {
		if !c.ByNetHTTP {
			byCode[c.Status]++
		}
	}
	delta := scrape.Delta(before, read(), "ucloud_im_http_requests_total")
	total := 0.0
	for _, n := range delta {
		total += n
	}
	// Every counted request under one of the four routes (GET or POST): the sum over them is the total.
	gotByCode := map[int]float64{}
	routes := map[string]float64{}
	known := 0.0
	for _, route := range []string{"refused", "authorize", "app", "app-websocket"} {
		for code := 100; code < 600; code++ {
			for _, method := range []string{"GET", "POST"} {
				n, ok := delta[scrape.Series("ucloud_im_http_requests_total", map[string]string{"route": route, "code": strconv.Itoa(code), "method": method})]
				if !ok {
					continue
				}
				gotByCode[code] += n
				routes[route+" "+strconv.Itoa(code)] += n
				known += n
			}
		}
	}
	if known != total {
		t.Errorf("%v requests counted under other labels than the decision's four routes: %v", total-known, delta)
	}
	for code, n := range byCode {
		if gotByCode[code] != n {
			t.Errorf("requests answered %d: counted %v, sent %v", code, gotByCode[code], n)
		}
	}
	for code, n := range gotByCode {
		if byCode[code] == 0 {
			t.Errorf("counted %v requests answered %d, none was sent that is answered so", n, code)
		}
	}
	reached := 0.0
	for _, c := range cases {
		if c.ReachesApp && c.Status == 200 {
			reached++
		}
	}
	for what, want := range map[string]float64{"app 200": reached, "app-websocket 101": 1, "authorize 302": 1} {
		if routes[what] != want {
			t.Errorf("%s: counted %v, want %v (all: %v)", what, routes[what], want, routes)
		}
	}

	// A tunnel held open by the browser.
	open := func() float64 {
		return read()[scrape.Series("ucloud_im_websocket_sessions_open", map[string]string{"kind": "app"})]
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\nOrigin: http://%s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n", host, cookieHeader(host), host, apphost.WSKey)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("the tunnel did not open: %v %v", resp, err)
	}
	if got := open(); got != 1 {
		t.Fatalf("open application WebSockets with one tunnel open: %v, want 1", got)
	}
	conn.Close()
	envtest.Eventually(t, 10*time.Second, func() error {
		if got := open(); got != 0 {
			return fmt.Errorf("open application WebSockets after the browser left: %v, want 0", got)
		}
		return nil
	})
}
