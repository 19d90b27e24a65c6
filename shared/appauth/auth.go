// Package appauth is the app-auth function: it trades a one-time token for the session cookie on a job's
// host and decides which requests to a job's host may reach the application.
package appauth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/appsession"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/store"
)

// Auth is the app-auth function: authorize-app exchanges a one-time token for the session cookie, and
// /check answers an ingress's external authorization request for every request to an app host.
type Auth struct {
	Provider   string
	AppsDomain string
	Sessions   appsession.Sessions
	Ledger     appsession.TokenLedger
}

// CheckPrefix is the path prefix of the external-authorization check; the ingress appends the original path.
const CheckPrefix = "/check"

// Routes serves both.
func (a *Auth) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+appdomain.AuthorizePath(a.Provider), a.authorize)
	mux.HandleFunc(CheckPrefix+"/", a.check)
	return mux
}

func (a *Auth) authorize(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("token")
	if raw == "" {
		fn.WriteError(w, r, fn.Errorf(http.StatusUnauthorized, "MISSING_TOKEN", "This link needs its token: open the application again from UCloud."))
		return
	}
	tok, err := a.Sessions.ParseToken(raw)
	switch {
	case errors.Is(err, appsession.ErrExpired):
		fn.WriteError(w, r, fn.Errorf(http.StatusUnauthorized, "EXPIRED_TOKEN", "This link has expired: open the application again from UCloud."))
		return
	case err != nil:
		fn.WriteError(w, r, fn.Errorf(http.StatusUnauthorized, "BAD_TOKEN", "This link is not valid: open the application again from UCloud."))
		return
	}
	// A token used on another app's host is refused. Behind an ingress that rewrites the Host to this
	// function's cluster name (and does not forward the original) the host cannot be checked, but the cookie
	// is bound to the token's host and worthless anywhere else.
	host := r.Header.Get("X-Forwarded-Host")
	if host == "" {
		host = r.Host
	}
	if a.isAppHost(host) && appsession.CanonicalHost(host) != tok.Host {
		fn.WriteError(w, r, fn.Errorf(http.StatusUnauthorized, "WRONG_HOST", "This link belongs to another application."))
		return
	}
	first, err := a.Ledger.Use(r.Context(), tok.Nonce, tok.Expires)
	if err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			err = fn.Wrap(err, http.StatusServiceUnavailable, "DATABASE_UNAVAILABLE", "The provider's database is unavailable. Please try again later.")
		}
		fn.WriteError(w, r, fmt.Errorf("token ledger: %w", err))
		return
	}
	if !first {
		fn.WriteError(w, r, fn.Errorf(http.StatusUnauthorized, "USED_TOKEN", "This link has already been used: open the application again from UCloud."))
		return
	}
	http.SetCookie(w, a.Sessions.Cookie(tok.Host))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/", http.StatusFound)
}

func (a *Auth) isAppHost(host string) bool {
	return strings.HasSuffix(appsession.CanonicalHost(host), "."+strings.ToLower(strings.Trim(a.AppsDomain, ".")))
}

// check is the external-authorization decision: 200 lets the request through, 401 stops it. Only app hosts
// are guarded (the API host's calls carry Core's token, which the functions check), and their
// authorize-app path must be reachable without a cookie.
func (a *Auth) check(w http.ResponseWriter, r *http.Request) {
	if !a.Allowed(r, strings.TrimPrefix(r.URL.Path, CheckPrefix)) {
		fn.WriteError(w, r, fn.Errorf(http.StatusUnauthorized, "NO_SESSION", "Open this application from UCloud to use it."))
		return
	}
	w.WriteHeader(http.StatusOK)
}

// Allowed is the decision for a request to r.Host with the given path, shared by the check endpoint and
// the local gateway.
func (a *Auth) Allowed(r *http.Request, path string) bool {
	if !a.isAppHost(r.Host) || path == appdomain.AuthorizePath(a.Provider) {
		return true
	}
	return a.Sessions.Authorized(r)
}
