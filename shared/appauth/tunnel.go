package appauth

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ucloud-im/knative-im/shared/appsession"
	"github.com/ucloud-im/knative-im/shared/fn"
)

// hopHeaders are meaningful for one connection only and never forwarded (RFC 9110, 7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// tunnel forwards a protocol switch (a WebSocket) to the application, with the IM's cookie stripped.
func (h *Handler) tunnel(w http.ResponseWriter, r *http.Request, addr string) {
	out := UpgradeRequest(r, addr)
	appsession.StripCookies(out.Header)
	Tunnel(w, out, time.Minute, h.appFailed)
}

// UpgradeRequest is the outbound copy of a protocol-switch request r for addr: the same target and Host,
// hop-by-hop headers dropped but the upgrade itself, X-Forwarded headers set.
func UpgradeRequest(r *http.Request, addr string) *http.Request {
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host = "http", addr
	out.RequestURI = ""
	for _, name := range strings.Split(strings.Join(r.Header.Values("Connection"), ","), ",") {
		if name = strings.TrimSpace(name); name != "" {
			out.Header.Del(name)
		}
	}
	for _, name := range hopHeaders {
		out.Header.Del(name)
	}
	out.Header.Set("Connection", "Upgrade")
	out.Header.Set("Upgrade", r.Header.Get("Upgrade"))
	forwarded(out, r)
	return out
}

// Tunnel sends the protocol-switch request out to out.URL.Host itself rather than through
// httputil.ReverseProxy: after the upstream's 101 the two TCP connections are joined with io.Copy, which on
// Linux moves the bytes with splice(2) in the kernel, and nothing of the HTTP machinery (buffers, the
// server's goroutine) stays behind for the connection's life: an open WebSocket costs two small goroutines.
// An upstream that declines (no 101) has its answer passed on; one that cannot be reached or does not answer
// within handshake goes to fail.
func Tunnel(w http.ResponseWriter, out *http.Request, handshake time.Duration, fail func(http.ResponseWriter, *http.Request, error)) {
	back, err := (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext(out.Context(), "tcp", out.URL.Host)
	if err != nil {
		fail(w, out, err)
		return
	}
	_ = back.SetDeadline(time.Now().Add(handshake)) // the tunnel itself has no deadline
	br := bufio.NewReader(back)
	if err := out.Write(back); err != nil {
		back.Close()
		fail(w, out, err)
		return
	}
	resp, err := http.ReadResponse(br, out)
	if err != nil {
		back.Close()
		fail(w, out, err)
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer back.Close()
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		return
	}
	client, cbuf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		back.Close()
		fail(w, out, err)
		return
	}
	_ = back.SetDeadline(time.Time{})
	_ = client.SetDeadline(time.Time{})
	// The 101 as the upstream sent it, then whatever either side sent early, then the raw tunnel.
	if err := resp.Write(client); err != nil || flushEarly(back, br, client, cbuf.Reader) != nil {
		client.Close()
		back.Close()
		return
	}
	go join(client, back)
}

// flushEarly hands on bytes each side sent before the tunnel started (read into a buffer by the HTTP code).
func flushEarly(back net.Conn, br *bufio.Reader, client net.Conn, cr *bufio.Reader) error {
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		if _, err := client.Write(b); err != nil {
			return err
		}
	}
	if n := cr.Buffered(); n > 0 {
		b, _ := cr.Peek(n)
		if _, err := back.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// join copies both ways until either side ends, then closes both.
func join(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(a, b)
	cp(b, a)
	a.Close()
	b.Close()
	<-done
}

// forwarded sets the X-Forwarded headers of out as httputil.ProxyRequest.SetXForwarded does, keeping the
// scheme the ingress reported (it terminated TLS).
func forwarded(out, in *http.Request) {
	out.Header.Del("Forwarded")
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		if prior := in.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		out.Header.Set("X-Forwarded-For", ip)
	} else {
		out.Header.Del("X-Forwarded-For")
	}
	out.Header.Set("X-Forwarded-Host", in.Host)
	proto := in.Header.Get("X-Forwarded-Proto")
	if proto != "https" && proto != "http" {
		proto = "http"
		if in.TLS != nil {
			proto = "https"
		}
	}
	out.Header.Set("X-Forwarded-Proto", proto)
}

func (h *Handler) appFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return // the browser went away
	}
	h.Log.Warn("application did not answer", "host", r.Host, "error", err.Error())
	fn.WriteError(w, r, fn.Errorf(http.StatusBadGateway, "APP_FAILED", "The application at %s did not answer.", r.Host))
}
