// Package appsession signs what keeps a job's address private to the user who opened it: one-time tokens
// (issued by job-control, spent once at authorize-app) and the host-bound session cookie.
package appsession

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// CookieName is the session cookie. The __Host- prefix makes browsers accept it only host-only, with
// Path=/ and Secure, so no sibling job's page can set or overwrite it with a Domain cookie on the parent
// domain. One name serves every job's host.
const CookieName = "__Host-ucloud-im-session"

// LegacyCookieName is the cookie's name before the __Host- prefix; app-auth still strips it before a
// request reaches an application, so no app ever sees an IM cookie.
const LegacyCookieName = "ucloud-im-session"

// Lifetimes: a token only has to survive the browser following Core's redirect; the cookie lasts as long
// as the original meant it to (30 days; it computed decades).
const (
	TokenLifetime  = 5 * time.Minute
	CookieLifetime = 30 * 24 * time.Hour
)

// Errors of a token or cookie; the caller answers 401 for all of them.
var (
	ErrBadToken = errors.New("the token is malformed or not signed by this provider")
	ErrExpired  = errors.New("the token has expired")
)

// Sessions signs tokens and cookies with a key only the IM holds. Both are bound to one host, so a cookie
// for one job is worth nothing on another, and checking one needs no database: the gateway's check runs on
// every request and must be fast.
type Sessions struct {
	Key []byte
	// Now is the clock (tests move it); nil means time.Now.
	Now func() time.Time
}

// Token is a parsed one-time token.
type Token struct {
	Host    string
	Expires time.Time
	// Nonce makes each token unique; authorize-app records it so a token works once.
	Nonce string
}

// MinKeyBytes is the shortest key accepted: an HMAC-SHA256 key shorter than its output weakens it.
const MinKeyBytes = 32

// KeyEnv is the signing key, needed by whoever issues tokens (job-control) or checks them.
type KeyEnv struct {
	KeyFile string `envconfig:"UCLOUD_GATEWAY_KEY_FILE"`
	Key     string `envconfig:"UCLOUD_GATEWAY_KEY"`
}

// LoadKey reads the signing key from a file or takes it inline (the file wins).
func LoadKey(file, inline string) ([]byte, error) {
	key := []byte(inline)
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("UCLOUD_GATEWAY_KEY_FILE: %w", err)
		}
		key = []byte(strings.TrimSpace(string(b)))
	}
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("the gateway key (UCLOUD_GATEWAY_KEY_FILE or UCLOUD_GATEWAY_KEY) must be at least %d bytes, not %d", MinKeyBytes, len(key))
	}
	return key, nil
}

func (s Sessions) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s Sessions) mac(purpose string, fields ...string) string {
	m := hmac.New(sha256.New, s.Key)
	m.Write([]byte(purpose))
	for _, f := range fields {
		m.Write([]byte{0})
		m.Write([]byte(f))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// IssueToken makes a one-time token for host, which must be canonical (appdomain.AppHost makes it so).
func (s Sessions) IssueToken(host string) (string, error) {
	nonce := make([]byte, 18)
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("token nonce: %w", err)
	}
	h := base64.RawURLEncoding.EncodeToString([]byte(host))
	exp := strconv.FormatInt(s.now().Add(TokenLifetime).Unix(), 10)
	n := base64.RawURLEncoding.EncodeToString(nonce)
	return strings.Join([]string{h, exp, n, s.mac("token", h, exp, n)}, "."), nil
}

// ParseToken checks a token's signature and lifetime.
func (s Sessions) ParseToken(tok string) (Token, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 4 || !hmac.Equal([]byte(parts[3]), []byte(s.mac("token", parts[0], parts[1], parts[2]))) {
		return Token{}, ErrBadToken
	}
	host, err := base64.RawURLEncoding.DecodeString(parts[0])
	exp, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || err2 != nil || parts[2] == "" {
		return Token{}, ErrBadToken
	}
	t := Token{Host: string(host), Expires: time.Unix(exp, 0), Nonce: parts[2]}
	if !s.now().Before(t.Expires) {
		return t, ErrExpired
	}
	return t, nil
}

// Cookie is the session cookie for a canonical host: HttpOnly (scripts cannot read it), Secure and Path=/
// with no Domain (what the __Host- prefix demands: sent only to this host, over TLS), SameSite=Lax (sent
// when the user follows a link from UCloud, which Strict would not be on the first request). Lax does not
// separate sibling jobs (they are the same site): app-auth's Origin check does.
func (s Sessions) Cookie(host string) *http.Cookie {
	exp := strconv.FormatInt(s.now().Add(CookieLifetime).Unix(), 10)
	return &http.Cookie{
		Name: CookieName, Value: exp + "." + s.mac("cookie", host, exp), Path: "/",
		MaxAge: int(CookieLifetime / time.Second), HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	}
}

// Authorized says whether r carries a valid, unexpired session cookie for host (canonical: the caller
// canonicalises the request's host once, appdomain.CanonicalHost).
func (s Sessions) Authorized(host string, r *http.Request) bool {
	for _, c := range r.CookiesNamed(CookieName) {
		exp, mac, ok := strings.Cut(c.Value, ".")
		if !ok {
			continue
		}
		t, err := strconv.ParseInt(exp, 10, 64)
		if err != nil || !s.now().Before(time.Unix(t, 0)) {
			continue
		}
		if hmac.Equal([]byte(mac), []byte(s.mac("cookie", host, exp))) {
			return true
		}
	}
	return false
}

// StripCookies removes the IM's session cookies (current and legacy name) from h's Cookie headers and
// keeps every other cookie as sent, so the application behind app-auth never sees the IM's cookie.
func StripCookies(h http.Header) {
	vals := h.Values("Cookie")
	if len(vals) == 0 {
		return
	}
	var kept []string
	for _, v := range vals {
		for _, part := range strings.Split(v, ";") {
			name, _, _ := strings.Cut(part, "=")
			name = strings.TrimSpace(name)
			if name == CookieName || name == LegacyCookieName || strings.TrimSpace(part) == "" {
				continue
			}
			kept = append(kept, strings.TrimSpace(part))
		}
	}
	if len(kept) == 0 {
		h.Del("Cookie")
		return
	}
	h.Set("Cookie", strings.Join(kept, "; "))
}
