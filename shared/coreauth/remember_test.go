package coreauth

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A Core token that passed is remembered until its exp (at most a minute), then checked again, and
// refused once expired; a token that was refused is never remembered, so it is refused every time.
func TestVerifiedCoreTokensAreRememberedOnlyUntilExpiry(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_800_000_000, 0)
	sign := func(role string, exp time.Time) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, Claims{Role: role, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: Issuer, Subject: Subject, IssuedAt: jwt.NewNumericDate(t0), ExpiresAt: jwt.NewNumericDate(exp)}}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	v := NewVerifier(&key.PublicKey, 0)
	good, user := sign(Role, t0.Add(90*time.Second)), sign("USER", t0.Add(time.Hour))
	steps := []struct {
		name       string
		at         time.Duration
		token      string
		pass       bool
		remembered int
	}{
		{"a valid token passes and is remembered", 0, good, true, 1},
		{"again, within its minute", 30 * time.Second, good, true, 1},
		{"a token with another role is refused", 30 * time.Second, user, false, 1},
		{"and refused again, never remembered", 31 * time.Second, user, false, 1},
		{"after the minute it is checked again and passes", 61 * time.Second, good, true, 1},
		{"after its exp it is refused, memory or not", 91 * time.Second, good, false, 1},
	}
	for _, s := range steps {
		v.now = func() time.Time { return t0.Add(s.at) }
		_, err := v.Verify(s.token)
		if (err == nil) != s.pass || len(v.known.m) != s.remembered {
			t.Fatalf("%s: err %v, remembered %d; want pass %v, remembered %d", s.name, err, len(v.known.m), s.pass, s.remembered)
		}
	}
}
