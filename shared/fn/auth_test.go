package fn_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucloud-im/knative-im/shared/coreauth"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

func verifier(t testing.TB, core *fakecore.Core) *coreauth.Verifier {
	t.Helper()
	key, err := coreauth.ParsePublicKey(core.PublicKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	return coreauth.NewVerifier(key, 0)
}

// authedServer serves one Core route that answers {"ok":true}.
func authedServer(t testing.TB, core *fakecore.Core) *httptest.Server {
	t.Helper()
	routes := http.NewServeMux()
	routes.HandleFunc("POST /ucloud/k8s/jobs", func(w http.ResponseWriter, r *http.Request) {
		fn.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	s := &fn.Server{Name: "test", Routes: routes, Auth: verifier(t, core), Config: fn.Config{MaxBodyBytes: 1 << 20}, Logger: fn.NewLogger(io.Discard, "test", "info")}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func without(key string) func(jwt.MapClaims) { return func(c jwt.MapClaims) { delete(c, key) } }
func with(key string, v any) func(jwt.MapClaims) {
	return func(c jwt.MapClaims) { c[key] = v }
}

func TestCoreTokenRules(t *testing.T) {
	core := fakecore.Start(t)
	srv := authedServer(t, core)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	valid := core.Token()
	parts := strings.Split(valid, ".")
	tamperedClaims := fakecore.Claims()
	tamperedClaims["sub"] = "alice"
	payload, _ := json.Marshal(tamperedClaims)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, fakecore.Claims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := jwt.NewWithClaims(jwt.SigningMethodHS256, fakecore.Claims()).SignedString(core.PublicKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := jwt.NewWithClaims(jwt.SigningMethodRS256, fakecore.Claims()).SignedString(other)
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Minute).Unix()
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"no header", "", 401},
		{"not a JWT", "Bearer not-a-jwt", 401},
		{"alg none", "Bearer " + none, 401},
		{"HS256 signed with the public key's bytes", "Bearer " + hs, 401},
		{"RS256 signed by another key", "Bearer " + foreign, 401},
		{"expired", "Bearer " + core.Token(with("exp", past), with("iat", past-3600)), 401},
		{"no exp", "Bearer " + core.Token(without("exp")), 401},
		{"wrong iss", "Bearer " + core.Token(with("iss", "evil.example.org")), 401},
		{"wrong sub", "Bearer " + core.Token(with("sub", "alice")), 401},
		{"wrong role", "Bearer " + core.Token(with("role", "USER")), 401},
		{"iat missing", "Bearer " + core.Token(without("iat")), 401},
		{"tampered payload", "Bearer " + tampered, 401},
		{"valid", "Bearer " + valid, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ucloud/k8s/jobs", strings.NewReader(`{"items":[]}`))
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 200 {
				return
			}
			var body ucloud.Error
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Why == "" || body.StatusCode != 401 {
				t.Fatalf("401 without a UCloud error body: %+v (%v)", body, err)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
}

func TestParsePublicKeyAcceptsPEMAndBareBase64(t *testing.T) {
	core := fakecore.Start(t)
	pemText := string(core.PublicKeyPEM())
	lines := strings.Split(strings.TrimSpace(pemText), "\n")
	bare := strings.Join(lines[1:len(lines)-1], "")
	for name, raw := range map[string]string{"pem": pemText, "bare base64": bare} {
		key, err := coreauth.ParsePublicKey([]byte(raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := coreauth.NewVerifier(key, 0).Verify(core.Token()); err != nil {
			t.Fatalf("%s: a valid token is refused: %v", name, err)
		}
	}
	if _, err := coreauth.ParsePublicKey([]byte("garbage!")); err == nil {
		t.Fatal("garbage accepted as a key")
	}
}

// FuzzVerify: whatever the token, Verify never panics, and whatever it accepts is a Core token.
func FuzzVerify(f *testing.F) {
	core := fakecore.Start(f)
	v := verifier(f, core)
	f.Add(core.Token())
	f.Add(core.Token(without("iat")))
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		claims, err := v.Verify(token)
		if err != nil {
			return
		}
		if claims.Issuer != coreauth.Issuer || claims.Subject != coreauth.Subject || claims.Role != coreauth.Role || claims.ExpiresAt == nil || claims.IssuedAt == nil {
			t.Fatalf("accepted a token that is not Core's: %+v", claims)
		}
	})
}

// BenchmarkAuthenticatedCall: one Core call through the whole host stack (logging, body limit, token check,
// JSON decode and encode), in-process.
func BenchmarkAuthenticatedCall(b *testing.B) {
	core := fakecore.Start(b)
	srv := authedServer(b, core)
	h := "Bearer " + core.Token()
	client := srv.Client()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ucloud/k8s/jobs", strings.NewReader(`{"items":[]}`))
		req.Header.Set("Authorization", h)
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("%v %v", resp, err)
		}
		resp.Body.Close()
	}
}

func BenchmarkVerify(b *testing.B) {
	core := fakecore.Start(b)
	v := verifier(b, core)
	tok := core.Token()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
