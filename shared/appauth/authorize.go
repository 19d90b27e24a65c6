package appauth

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/ucloud-im/knative-im/shared/appsession"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/store"
)

// authorize trades the one-time token of jobs/interactiveSession's link for the session cookie of the host
// it was issued for, and sends the browser to the application's first page.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, d Decision) {
	// GET only: a HEAD (a link preview, a checker) must not spend the one-time token.
	if r.Method != http.MethodGet {
		fn.WriteError(w, r, fn.Errorf(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "This link takes GET."))
		return
	}
	raw := r.URL.Query().Get("token")
	if raw == "" {
		fn.WriteError(w, r, fn.Errorf(http.StatusUnauthorized, "MISSING_TOKEN", "This link needs its token: open the application again from UCloud."))
		return
	}
	tok, err := h.Sessions.ParseToken(raw)
	switch {
	case errors.Is(err, appsession.ErrExpired):
		fn.WriteError(w, r, fn.Errorf(http.StatusUnauthorized, "EXPIRED_TOKEN", "This link has expired: open the application again from UCloud."))
		return
	case err != nil:
		fn.WriteError(w, r, fn.Errorf(http.StatusUnauthorized, "BAD_TOKEN", "This link is not valid: open the application again from UCloud."))
		return
	}
	if tok.Host != d.Host {
		fn.WriteError(w, r, fn.Errorf(http.StatusUnauthorized, "WRONG_HOST", "This link belongs to another application."))
		return
	}
	first, err := h.Ledger.Use(r.Context(), tok.Nonce, tok.Expires)
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
	http.SetCookie(w, h.Sessions.Cookie(d.Host))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/", http.StatusFound)
}
