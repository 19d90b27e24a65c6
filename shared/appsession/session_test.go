package appsession

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/appdomain"
)

func TestTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := Sessions{Key: []byte("0123456789abcdef0123456789abcdef"), Now: func() time.Time { return now }}
	good, err := s.IssueToken("app-7-0.apps.example.org")
	if err != nil {
		t.Fatal(err)
	}
	other := Sessions{Key: []byte("another key, 32 bytes long.......")}
	parts := strings.Split(good, ".")
	for _, tc := range []struct {
		name string
		tok  string
		at   time.Time
		want error
	}{
		{"fresh", good, now, nil},
		{"just before expiry", good, now.Add(TokenLifetime - time.Second), nil},
		{"expired", good, now.Add(TokenLifetime), ErrExpired},
		{"empty", "", now, ErrBadToken},
		{"other host spliced in", strings.Join([]string{"YXBwLTgtMC5hcHBzLmV4YW1wbGUub3Jn", parts[1], parts[2], parts[3]}, "."), now, ErrBadToken},
		{"lifetime stretched", strings.Join([]string{parts[0], "9999999999", parts[2], parts[3]}, "."), now, ErrBadToken},
		{"missing part", strings.Join(parts[:3], "."), now, ErrBadToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := tc.at
			tok, err := Sessions{Key: s.Key, Now: func() time.Time { return at }}.ParseToken(tc.tok)
			if err != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err == nil && tok.Host != "app-7-0.apps.example.org" {
				t.Fatalf("host %q", tok.Host)
			}
		})
	}
	if _, err := other.ParseToken(good); err != ErrBadToken {
		t.Fatalf("token under another key: %v", err)
	}
	again, _ := s.IssueToken("app-7-0.apps.example.org")
	if again == good {
		t.Fatal("two tokens for one host are equal: a used one could be replayed as the other")
	}
}

func TestCookies(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := Sessions{Key: []byte("0123456789abcdef0123456789abcdef"), Now: func() time.Time { return now }}
	c := s.Cookie("app-7-0.apps.example.org")
	if c.Name != "__Host-ucloud-im-session" || c.MaxAge != 2592000 || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Domain != "" || c.Path != "/" {
		t.Fatalf("cookie attributes %+v", c)
	}
	for _, tc := range []struct {
		name, host, cookie string
		at                 time.Time
		want               bool
	}{
		{"own host", "app-7-0.apps.example.org", c.Name + "=" + c.Value, now, true},
		{"own host with port, upper case, trailing dot", "APP-7-0.apps.example.org.:8443", c.Name + "=" + c.Value, now, true},
		{"the value under the legacy name", "app-7-0.apps.example.org", LegacyCookieName + "=" + c.Value, now, false},
		{"among the app's own cookies", "app-7-0.apps.example.org", "_xsrf=1; " + c.Name + "=" + c.Value + "; theme=dark", now, true},
		{"29 days later", "app-7-0.apps.example.org", c.Name + "=" + c.Value, now.Add(29 * 24 * time.Hour), true},
		{"31 days later", "app-7-0.apps.example.org", c.Name + "=" + c.Value, now.Add(31 * 24 * time.Hour), false},
		{"another job's host", "app-8-0.apps.example.org", c.Name + "=" + c.Value, now, false},
		{"no cookie", "app-7-0.apps.example.org", "", now, false},
		{"value under another name", "app-7-0.apps.example.org", "x" + c.Name + "=" + c.Value, now, false},
		{"tampered expiry", "app-7-0.apps.example.org", c.Name + "=9" + c.Value, now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Host = tc.host
			if tc.cookie != "" {
				r.Header.Set("Cookie", tc.cookie)
			}
			at := tc.at
			host, ok := appdomain.CanonicalHost(tc.host)
			if !ok {
				t.Fatalf("host %q", tc.host)
			}
			if got := (Sessions{Key: s.Key, Now: func() time.Time { return at }}).Authorized(host, r); got != tc.want {
				t.Fatalf("authorized = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLoadKeyRefusesShortKeys(t *testing.T) {
	if _, err := LoadKey("", "short"); err == nil || !strings.Contains(err.Error(), "at least 32 bytes") {
		t.Fatalf("short key: %v", err)
	}
	if k, err := LoadKey("", strings.Repeat("k", 32)); err != nil || len(k) != 32 {
		t.Fatalf("32-byte key: %v", err)
	}
}

// StripCookies: the application behind app-auth gets every cookie but the IM's, as they were sent.
func TestStripCookies(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"only the session", []string{CookieName + "=1.abc"}, nil},
		{"among the app's", []string{"_xsrf=2|x; " + CookieName + "=1.abc; theme=dark"}, []string{"_xsrf=2|x; theme=dark"}},
		{"legacy name too", []string{LegacyCookieName + "=1.abc;a=b"}, []string{"a=b"}},
		{"two Cookie headers", []string{"a=b", CookieName + "=1.x; c=d"}, []string{"a=b; c=d"}},
		{"a name that only contains ours", []string{"x" + CookieName + "=1"}, []string{"x" + CookieName + "=1"}},
		{"none", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Cookie": tc.in}
			StripCookies(h)
			if got := h.Values("Cookie"); strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
