// Package appauth is the app-auth function: every request to a job's host (app-<job>-<rank>.<apps domain>)
// reaches it first, from the job's KIngress. It makes the one authorization decision, on the raw request,
// and then either answers itself (the authorize-app path: one-time token -> session cookie; any refusal,
// in UCloud's error shape) or forwards the request, HTTP or WebSocket, to the job's per-rank Service. The
// local gateway of make run sends app hosts to the same function, so the same code decides everywhere.
package appauth

import (
	"net/http"
	"net/url"
	"path"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/appsession"
)

// DefaultMaxCookieBytes bounds the Cookie header of a request to an app host. A sibling job can set cookies
// on the parent domain that every app host then receives; above this the request is refused with 431
// before reaching the application (nginx's and many apps' limit for one header line is 8 KiB).
const DefaultMaxCookieBytes = 8 << 10

// codeNotAnApp refuses a host that names no job rank (probes use such hosts).
const codeNotAnApp = "NOT_AN_APP"

// Decider is the authorization decision for app hosts.
type Decider struct {
	Provider   string
	AppsDomain string
	Sessions   appsession.Sessions
	// MaxCookieBytes: 0 is DefaultMaxCookieBytes.
	MaxCookieBytes int
}

// Decision is what to do with one request.
type Decision struct {
	// Status, when not 0, refuses the request with this HTTP status, Code and Why (UCloud's error shape).
	Status    int
	Code, Why string
	// Authorize: the request is for the authorize-app path, answered by app-auth itself.
	Authorize bool
	// Host is the request's canonical host, and JobID and Rank the web interface it names.
	Host  string
	JobID string
	Rank  int
}

func refuse(status int, code, why string) Decision {
	return Decision{Status: status, Code: code, Why: why}
}

// Decide looks at the request as it came off the wire: the request target as sent (RequestURI, never the
// decoded path), the Host canonicalised once, the Cookie header's size, the session cookie for exactly
// that host, the browser's Fetch metadata, and for state-changing methods and protocol upgrades the
// Origin. Only the exact bytes of the authorize path are the authorize path; a target that would become
// it after decoding or path cleaning is refused, cookie or not, so no component behind this one can read
// it differently.
func (d *Decider) Decide(r *http.Request) Decision {
	// Origin-form only: an absolute-form target (GET http://host/... HTTP/1.1) is for proxies, and with it
	// Go takes the host from the target, not the Host header; "*" is OPTIONS for the server itself.
	if !strings.HasPrefix(r.RequestURI, "/") {
		return refuse(http.StatusBadRequest, "BAD_REQUEST_TARGET", "The request target must be a path.")
	}
	if _, twice := r.Header[appdomain.OriginalHostHeader]; twice {
		// The hop in front (Knative's queue-proxy, or the local gateway) turns this header into the Host and
		// removes it; one still here was sent past it and names a second host.
		return refuse(http.StatusBadRequest, "BAD_HOST", "The request names more than one host.")
	}
	host, ok := appdomain.CanonicalHost(r.Host)
	if !ok {
		return refuse(http.StatusBadRequest, "BAD_HOST", "The request has no valid host.")
	}
	jobID, rank, ok := appdomain.ParseAppHost(host, d.AppsDomain)
	if !ok {
		return refuse(http.StatusNotFound, codeNotAnApp, "Nothing is served at "+host+".")
	}
	max := d.MaxCookieBytes
	if max <= 0 {
		max = DefaultMaxCookieBytes
	}
	n := 0
	for _, c := range r.Header.Values("Cookie") {
		n += len(c) + 2
	}
	if n > max {
		return refuse(http.StatusRequestHeaderFieldsTooLarge, "COOKIES_TOO_LARGE",
			"Your browser sent too many cookies for this address: clear the cookies of this site and open the application again from UCloud.")
	}
	rawPath, _, _ := strings.Cut(r.RequestURI, "?")
	authorize := appdomain.AuthorizePath(d.Provider)
	if rawPath == authorize {
		return Decision{Authorize: true, Host: host, JobID: jobID, Rank: rank}
	}
	if looksLike(rawPath, authorize) {
		return refuse(http.StatusBadRequest, "BAD_PATH", "This address is not valid.")
	}
	if !d.Sessions.Authorized(host, r) {
		return refuse(http.StatusUnauthorized, "NO_SESSION", "Open this application from UCloud to use it.")
	}
	if !fetchAllowed(r) {
		return refuse(http.StatusForbidden, "CROSS_SITE", "This request came from another page than the application's own: open the application by following a link to it.")
	}
	if (!safeMethod(r.Method) || isUpgrade(r)) && !sameOrigin(r, host) {
		return refuse(http.StatusForbidden, "CROSS_ORIGIN", "This request did not come from the application's own pages.")
	}
	return Decision{Host: host, JobID: jobID, Rank: rank}
}

// fetchAllowed reads the browser's Fetch metadata. Sibling jobs' hosts are the same site, so SameSite=Lax
// sends the cookie with their pages' images, scripts, fetches and iframes too; when the browser says where
// a request comes from, only the application's own pages (same-origin), the user (none: typed, bookmark)
// and a top-level navigation (following a link, UCloud's redirect included; an iframe is not one) pass.
// Without Sec-Fetch-Site (older browsers, other clients) nothing is decided here: the Origin rule remains.
func fetchAllowed(r *http.Request) bool {
	sites := r.Header.Values("Sec-Fetch-Site")
	if len(sites) == 0 {
		return true
	}
	if len(sites) == 1 && (sites[0] == "same-origin" || sites[0] == "none") {
		return true
	}
	return only(r.Header, "Sec-Fetch-Mode", "navigate") && only(r.Header, "Sec-Fetch-Dest", "document")
}

// only: h has exactly one key header, and it is value.
func only(h http.Header, key, value string) bool {
	v := h.Values(key)
	return len(v) == 1 && v[0] == value
}

// looksLike: rawPath becomes target (or a path under it) once percent-decoded, up to three times, with
// repeated slashes and dot segments removed, ignoring case.
func looksLike(rawPath, target string) bool {
	p := rawPath
	for range 3 {
		dec, err := url.PathUnescape(p)
		if err != nil || dec == p {
			break
		}
		p = dec
	}
	p = strings.ToLower(path.Clean("/" + p))
	target = strings.ToLower(target)
	return p == target || strings.HasPrefix(p, target+"/")
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// isUpgrade is any protocol switch (WebSocket or another): what httputil.ReverseProxy would tunnel.
func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" || httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade")
}

// sameOrigin: the one Origin header is this host's own origin (https, or http on a .localhost domain,
// which browsers treat as secure; port as in the Host header), or, without Origin, the browser says
// Sec-Fetch-Site: same-origin. A sibling job's page (same site, other origin) fails both.
func sameOrigin(r *http.Request, host string) bool {
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return r.Header.Get("Sec-Fetch-Site") == "same-origin"
	}
	if len(origins) != 1 {
		return false
	}
	u, err := url.Parse(origins[0])
	if err != nil || u.Path != "" || u.RawQuery != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && strings.HasSuffix(host, ".localhost"):
	default:
		return false
	}
	oh, ok := appdomain.CanonicalHost(u.Host)
	return ok && oh == host && port(u.Host, u.Scheme) == port(r.Host, u.Scheme)
}

// port is the explicit port of hostport, "" when absent or the scheme's default.
func port(hostport, scheme string) string {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 {
		return ""
	}
	p := hostport[i+1:]
	if (scheme == "https" && p == "443") || (scheme == "http" && p == "80") {
		return ""
	}
	return p
}
