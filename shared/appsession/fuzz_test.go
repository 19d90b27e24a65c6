package appsession

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzParseToken: any string is refused or parsed without panicking, and only a token this key signed parses.
func FuzzParseToken(f *testing.F) {
	s := Sessions{Key: []byte("0123456789abcdef0123456789abcdef")}
	good, _ := s.IssueToken("app-1-0.apps.example.org")
	for _, seed := range []string{good, "", ".", "...", "a.b.c.d", good + "x", strings.Replace(good, ".", "..", 1)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		got, err := s.ParseToken(tok)
		if err != nil {
			return
		}
		// Accepted: its last part must be the HMAC of the rest under the key, computed here independently.
		parts := strings.Split(tok, ".")
		m := hmac.New(sha256.New, s.Key)
		m.Write([]byte("token\x00" + parts[0] + "\x00" + parts[1] + "\x00" + parts[2]))
		if len(parts) != 4 || parts[3] != base64.RawURLEncoding.EncodeToString(m.Sum(nil)) {
			t.Fatalf("forged token accepted: %q -> %+v", tok, got)
		}
	})
}

// FuzzAuthorized: any Cookie header is decided without panicking, and no header without the right MAC passes.
func FuzzAuthorized(f *testing.F) {
	s := Sessions{Key: []byte("0123456789abcdef0123456789abcdef"), Now: func() time.Time { return time.Unix(1_800_000_000, 0) }}
	c := s.Cookie("app-1-0.apps.example.org")
	for _, seed := range []string{c.Name + "=" + c.Value, CookieName + "=1.2", CookieName + "=", "a=b; " + CookieName + "=x.y", ";;;"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = "app-1-0.apps.example.org"
		r.Header.Set("Cookie", header)
		// The only valid value a fuzzer can know is the one the seed carries; another would be a forged MAC.
		if s.Authorized("app-1-0.apps.example.org", r) && !strings.Contains(header, c.Value) {
			t.Fatalf("authorized without a valid signature: %q", header)
		}
	})
}
