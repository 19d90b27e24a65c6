// Package apphost is what the tests of the application domain share: an application that records what
// reaches it, raw HTTP requests written byte for byte on a connection (a Go client would clean the path
// and set the Host), and the attacker's requests every path to an app host must refuse.
package apphost

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Seen is one request as the application received it.
type Seen struct {
	Method, RequestURI, Host, Cookie, Origin string
}

// App is a job's application: it names what it saw, echoes WebSocket bytes, and records every request.
type App struct {
	*httptest.Server
	mu   sync.Mutex
	seen []Seen
}

// NewApp starts one, closed when the test ends.
func NewApp(t testing.TB) *App {
	a := &App{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.seen = append(a.seen, Seen{r.Method, r.RequestURI, r.Host, strings.Join(r.Header.Values("Cookie"), "|"), r.Header.Get("Origin")})
		a.mu.Unlock()
		if r.Header.Get("Upgrade") != "websocket" {
			fmt.Fprintf(w, "hello from the app at %s", r.Host)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", Accept(r.Header.Get("Sec-WebSocket-Key")))
		_ = rw.Flush()
		_, _ = io.Copy(conn, rw)
	}))
	t.Cleanup(a.Close)
	return a
}

// Seen is every request the application received so far.
func (a *App) Seen() []Seen {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Seen(nil), a.seen...)
}

// Port is the application's port.
func (a *App) Port() int { return a.Listener.Addr().(*net.TCPAddr).Port }

// Accept is the Sec-WebSocket-Accept for key.
func Accept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// WSKey is the key of every WebSocket handshake these tests send.
const WSKey = "dGhlIHNhbXBsZSBub25jZQ=="

// Answer is what came back for a raw request; Echo is what a WebSocket echoed after a 101.
type Answer struct {
	Status int
	Header http.Header
	Body   string
	Echo   string
}

// Send writes raw (CRLF line ends) to addr as it is, reads the answer, and after a 101 sends one message
// over the tunnel and reads its echo.
func Send(t testing.TB, addr, raw string) Answer {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", raw, err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		msg := "ping over the tunnel"
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil {
			t.Fatal(err)
		}
		return Answer{Status: resp.StatusCode, Header: resp.Header, Echo: string(buf)}
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return Answer{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// Case is one raw request to an app host and what must come of it.
type Case struct {
	Name string
	Raw  string
	// Status is the answer; ReachesApp says whether the application may see the request.
	Status     int
	ReachesApp bool
	// Alt is another acceptable status for a refusal where the local gateway (standing in for the
	// ingress) refuses before app-auth does: an ingress has no route for a host it does not know (404).
	Alt int
	// ByNetHTTP: Go's HTTP server itself refuses it (plain text), before any handler.
	ByNetHTTP bool
}

// Target is what the cases are about: the app's host, a valid session cookie for it, a fresh one-time
// token, another job's host, and the origin the app's pages have (scheme://host[:port]).
type Target struct {
	Host, Cookie, Token, OtherHost, OtherCookie, Origin string
}

// Cases are the attacker's requests (all refused, none reaching the app) and the user's (which work).
// provider is the {provider} of the authorize path.
func Cases(provider string, x Target) []Case {
	auth := "/ucloud/" + provider + "/authorize-app"
	get := func(target, host, headers string) string {
		return "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + headers + "Connection: close\r\n\r\n"
	}
	c := "Cookie: " + x.Cookie + "\r\n"
	ws := "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + WSKey + "\r\n"
	post := func(headers string) string {
		return "POST /api/contents HTTP/1.1\r\nHost: " + x.Host + "\r\n" + headers + "Content-Length: 2\r\nConnection: close\r\n\r\n{}"
	}
	fetchMeta := func(site, mode, dest string) string {
		return "Sec-Fetch-Site: " + site + "\r\nSec-Fetch-Mode: " + mode + "\r\nSec-Fetch-Dest: " + dest + "\r\n"
	}
	upgrade := func(headers string) string {
		return "GET /api/kernels/1/channels HTTP/1.1\r\nHost: " + x.Host + "\r\n" + ws + headers + "\r\n"
	}
	return []Case{
		// The authorize path written so that a decoding or normalising component reads it, the decision not.
		{Name: "encoded slash", Raw: get("/ucloud/"+provider+"%2Fauthorize-app", x.Host, ""), Status: 400},
		{Name: "encoded letter", Raw: get("/%75cloud/"+provider+"/authorize-app?x=1", x.Host, ""), Status: 400},
		{Name: "encoded dash", Raw: get("/ucloud/"+provider+"/authorize%2Dapp", x.Host, ""), Status: 400},
		{Name: "double encoding", Raw: get("/ucloud/"+provider+"%252Fauthorize-app", x.Host, ""), Status: 400},
		{Name: "double slash", Raw: get("//ucloud/"+provider+"/authorize-app", x.Host, ""), Status: 400},
		{Name: "dot segment", Raw: get("/ucloud/./"+provider+"/authorize-app", x.Host, ""), Status: 400},
		{Name: "dot-dot segment", Raw: get("/x/../ucloud/"+provider+"/authorize-app", x.Host, ""), Status: 400},
		{Name: "trailing slash", Raw: get(auth+"/", x.Host, ""), Status: 400},
		{Name: "upper case", Raw: get(strings.ToUpper(auth), x.Host, ""), Status: 400},
		{Name: "lookalike with a cookie", Raw: get("/ucloud/"+provider+"%2Fauthorize-app", x.Host, c), Status: 400},
		// Ordinary paths without a cookie, however the host or target is written.
		{Name: "no cookie", Raw: get("/lab", x.Host, ""), Status: 401},
		{Name: "no cookie, double slash", Raw: get("//lab", x.Host, ""), Status: 401},
		{Name: "no cookie, dot segment", Raw: get("/./lab", x.Host, ""), Status: 401},
		{Name: "no cookie, encoded", Raw: get("/%6cab%252F", x.Host, ""), Status: 401},
		{Name: "trailing dot in the host", Raw: get("/lab", x.Host+".", ""), Status: 401, Alt: 404},
		{Name: "two trailing dots", Raw: get("/lab", x.Host+"..", ""), Status: 400, Alt: 404},
		{Name: "mixed-case host", Raw: get("/lab", strings.ToUpper(x.Host[:5])+x.Host[5:], ""), Status: 401},
		{Name: "port in the host", Raw: get("/lab", x.Host+":8443", ""), Status: 401},
		{Name: "absolute-form request line", Raw: get("http://"+x.Host+"/lab", x.Host, ""), Status: 400, Alt: 401},
		{Name: "absolute-form to the authorize path", Raw: get("http://"+x.Host+auth+"?token=forged", "elsewhere.example.org", ""), Status: 400, Alt: 401},
		{Name: "missing Host (HTTP/1.1)", Raw: "GET /lab HTTP/1.1\r\nConnection: close\r\n\r\n", Status: 400, ByNetHTTP: true},
		{Name: "missing Host (HTTP/1.0)", Raw: "GET /lab HTTP/1.0\r\n\r\n", Status: 400, Alt: 404},
		{Name: "original-host header names the victim", Raw: get("/lab", x.OtherHost, "K-Original-Host: "+x.Host+"\r\nCookie: "+x.OtherCookie+"\r\n"), Status: 400, Alt: 404},
		{Name: "WebSocket without a cookie", Raw: upgrade(""), Status: 401},
		{Name: "another job's cookie", Raw: get("/lab", x.Host, "Cookie: "+x.OtherCookie+"\r\n"), Status: 401},
		{Name: "the cookie without its __Host- prefix", Raw: get("/lab", x.Host, "Cookie: ucloud-im-session="+strings.SplitN(x.Cookie, "=", 2)[1]+"\r\n"), Status: 401},
		{Name: "forged token", Raw: get(auth+"?token=a.b.c.d", x.Host, ""), Status: 401},
		// Cross-site: a sibling job's page sends the victim's cookie along (same site, other origin).
		{Name: "POST from another job's origin", Raw: post(c + "Origin: https://" + x.OtherHost + "\r\n"), Status: 403},
		{Name: "WebSocket from another job's origin", Raw: upgrade(c + "Origin: https://" + x.OtherHost + "\r\n"), Status: 403},
		{Name: "POST with a lookalike origin", Raw: post(c + "Origin: https://" + x.Host + ".evil.example\r\n"), Status: 403},
		{Name: "POST without Origin", Raw: post(c), Status: 403},
		{Name: "POST same-site per Fetch metadata", Raw: post(c + "Sec-Fetch-Site: same-site\r\n"), Status: 403},
		// Same site: the sibling's page has the browser send the victim's cookie with a GET (SameSite=Lax).
		{Name: "GET by a sibling's fetch", Raw: get("/api/delete-all", x.Host, c+fetchMeta("same-site", "cors", "empty")), Status: 403},
		{Name: "GET by a sibling's img", Raw: get("/api/delete-all", x.Host, c+fetchMeta("same-site", "no-cors", "image")), Status: 403},
		{Name: "GET by a sibling's iframe", Raw: get("/lab", x.Host, c+fetchMeta("same-site", "navigate", "iframe")), Status: 403},
		{Name: "oversized Cookie header", Raw: get("/lab", x.Host, "Cookie: "+x.Cookie+"; junk="+strings.Repeat("j", 9000)+"\r\n"), Status: 431},
		// The user's own requests.
		{Name: "the page with the cookie", Raw: get("/lab?x=%2F", x.Host, c), Status: 200, ReachesApp: true},
		{Name: "POST from the app's own origin", Raw: post(c + "Origin: " + x.Origin + "\r\n"), Status: 200, ReachesApp: true},
		{Name: "POST same-origin per Fetch metadata", Raw: post(c + "Sec-Fetch-Site: same-origin\r\n"), Status: 200, ReachesApp: true},
		{Name: "the page by following a sibling's link", Raw: get("/lab", x.Host, c+fetchMeta("same-site", "navigate", "document")), Status: 200, ReachesApp: true},
		{Name: "the page after UCloud's redirect", Raw: get("/", x.Host, c+fetchMeta("cross-site", "navigate", "document")), Status: 200, ReachesApp: true},
		{Name: "the page's own fetch", Raw: get("/api/contents", x.Host, c+fetchMeta("same-origin", "cors", "empty")), Status: 200, ReachesApp: true},
		{Name: "the address typed by the user", Raw: get("/lab", x.Host, c+fetchMeta("none", "navigate", "document")), Status: 200, ReachesApp: true},
		{Name: "WebSocket from the app's own origin", Raw: upgrade(c + "Origin: " + x.Origin + "\r\n"), Status: 101, ReachesApp: true},
		// As the browser sends it, following UCloud's link: a cross-site top-level navigation.
		{Name: "the real authorize path", Raw: get(auth+"?token="+x.Token, x.Host, fetchMeta("cross-site", "navigate", "document")), Status: 302},
	}
}

// Check runs the cases against addr: each answers its status (or Alt), a refusal in UCloud's JSON error
// shape, and the application sees exactly the requests that may reach it, never the IM's cookie.
func Check(t *testing.T, addr string, app *App, cases []Case) {
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			before := len(app.Seen())
			a := Send(t, addr, tc.Raw)
			if a.Status != tc.Status && (tc.Alt == 0 || a.Status != tc.Alt) {
				t.Fatalf("status %d, want %d: %s", a.Status, tc.Status, a.Body)
			}
			if a.Status >= 400 && !tc.ByNetHTTP && (!strings.Contains(a.Body, `"errorCode"`) || !strings.Contains(a.Body, `"why"`)) {
				t.Fatalf("refusal %d not in UCloud's error shape: %q", a.Status, a.Body)
			}
			seen := app.Seen()[before:]
			if !tc.ReachesApp && len(seen) > 0 {
				t.Fatalf("the application received %+v", seen)
			}
			if tc.ReachesApp {
				if len(seen) != 1 {
					t.Fatalf("the application received %d requests", len(seen))
				}
				if strings.Contains(seen[0].Cookie, "ucloud-im-session") {
					t.Fatalf("the application saw the IM's cookie: %q", seen[0].Cookie)
				}
			}
			if tc.Status == 101 && a.Echo != "ping over the tunnel" {
				t.Fatalf("WebSocket echo %q", a.Echo)
			}
		})
	}
}
