package fn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/ucloud-im/knative-im/shared/coreauth"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Error is an error with the HTTP status and the sentence Core shows the user. Err, when set, is the cause:
// it is logged, never sent.
type Error struct {
	Status int
	Why    string
	Code   string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Why, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Why)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an Error with a formatted why.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Why: fmt.Sprintf(format, args...)}
}

// Wrap gives cause a status and a why for the user while keeping it for the log.
func Wrap(cause error, status int, code, why string) *Error {
	return &Error{Status: status, Code: code, Why: why, Err: cause}
}

// internalWhy is what a user sees for an error we did not expect: the cause goes to the log only.
const internalWhy = "Internal error in the provider. Please try again later."

// asError classifies any error as an *Error.
func asError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, coreauth.ErrUnauthenticated):
		return Wrap(err, http.StatusUnauthorized, "UNAUTHENTICATED", "The request is not authenticated as UCloud/Core.")
	case errors.Is(err, context.DeadlineExceeded):
		return Wrap(err, http.StatusServiceUnavailable, "TIMEOUT", "The provider did not finish in time. Please try again.")
	case errors.Is(err, context.Canceled):
		return Wrap(err, 499, "CANCELED", "The request was cancelled.")
	}
	return Wrap(err, http.StatusInternalServerError, "INTERNAL_ERROR", internalWhy)
}

// WriteError answers err in UCloud's error shape and logs it (server errors with their cause).
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	log := Log(r.Context())
	if e.Status >= 500 {
		log.Error("request failed", "status", e.Status, "why", e.Why, "err", e.Err)
	} else {
		log.Info("request refused", "status", e.Status, "why", e.Why, "err", e.Err)
	}
	WriteJSON(w, e.Status, ucloud.Error{Why: e.Why, ErrorCode: e.Code, StatusCode: e.Status})
}

// WriteJSON writes v as the JSON body with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		raw = []byte(`{"why":"` + internalWhy + `","errorCode":"INTERNAL_ERROR","statusCode":500,"detailedCode":0}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(raw, '\n'))
}

// ForProvider refuses calls whose {provider} path value is not this provider's id: 404, so Core learns
// the call reached the wrong integration module.
func ForProvider(provider string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.PathValue("provider"); got != provider {
			WriteError(w, r, Errorf(http.StatusNotFound, "UNKNOWN_PROVIDER", "This is the integration module of provider %q, not %q.", provider, got))
			return
		}
		next.ServeHTTP(w, r)
	})
}
