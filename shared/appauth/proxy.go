package appauth

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"time"

	"github.com/ucloud-im/knative-im/shared/appsession"
	"github.com/ucloud-im/knative-im/shared/fn"
)

// Targets finds where a job rank's web interface is (Upstreams does, from the cluster).
type Targets interface {
	Addr(jobID string, rank int) (string, error)
}

// Handler is all of app-auth: the decision, the authorize-app path, and the proxy to the application.
type Handler struct {
	Decider
	Ledger  appsession.TokenLedger
	Targets Targets
	// Ready, when set, answers /readyz (and /healthz answers 200) on hosts that are not app hosts: the
	// probes of Knative and make run. On an app host every path, those too, belongs to the application.
	Ready func(ctx context.Context) error
	Log   *slog.Logger
	// Metrics, when set, counts requests by what the decision made of them and the open tunnels.
	Metrics *Metrics

	proxy *httputil.ReverseProxy
}

// NewHandler builds the handler and its one reverse proxy, whose connections to applications are reused
// across requests (a page load is dozens of requests, a benchmark thousands).
func NewHandler(d Decider, ledger appsession.TokenLedger, targets Targets, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{Decider: d, Ledger: ledger, Targets: targets, Log: log}
	h.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The target as the decision saw it: the escaped path and query are passed on unchanged.
			pr.Out.URL.Scheme = "http" // and URL.Host, the target, set by ServeHTTP
			pr.Out.Host = pr.In.Host   // applications see their own name, as they would behind an ingress
			forwarded(pr.Out, pr.In)
			// The IM's cookie is the IM's: an application (any user's code) must never see it.
			appsession.StripCookies(pr.Out.Header)
		},
		BufferPool: &BufferPool{},
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        4096,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     90 * time.Second,
		},
		ErrorHandler: h.appFailed,
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.Metrics.observe(w, r, func(w http.ResponseWriter) string { return h.serve(w, r) })
}

// serve answers r and returns its route for the metrics ("" for a probe).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) string {
	d := h.Decide(r)
	if d.Code == codeNotAnApp && h.Ready != nil {
		switch r.RequestURI {
		case "/healthz":
			fn.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			return ""
		case "/readyz":
			if err := h.Ready(r.Context()); err != nil {
				fn.WriteError(w, r, fn.Wrap(err, http.StatusServiceUnavailable, "NOT_READY", "Not ready: "+err.Error()))
				return ""
			}
			fn.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
			return ""
		}
	}
	switch {
	case d.Status != 0:
		fn.WriteError(w, r, fn.Errorf(d.Status, d.Code, "%s", d.Why))
		return routeRefused
	case d.Authorize:
		h.authorize(w, r, d)
		return routeAuthorize
	}
	route := routeApp
	if isUpgrade(r) {
		route = routeWebSocket
	}
	addr, err := h.Targets.Addr(d.JobID, d.Rank)
	switch {
	case errors.Is(err, ErrNoApp):
		fn.WriteError(w, r, fn.Errorf(http.StatusNotFound, "NO_APP", "No application is running at %s.", d.Host))
		return route
	case err != nil:
		h.Log.Info("no upstream", "host", d.Host, "error", err.Error())
		fn.WriteError(w, r, fn.Errorf(http.StatusServiceUnavailable, "NOT_READY", "The application at %s is not ready yet.", d.Host))
		return route
	}
	if route == routeWebSocket {
		h.tunnel(w, r, addr)
		return route
	}
	// The target travels in the request's own URL (server requests leave URL.Host empty): no per-request
	// copy of the request to carry it.
	r.URL.Host = addr
	h.proxy.ServeHTTP(w, r)
	return route
}
