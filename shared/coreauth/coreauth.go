// Package coreauth checks that a call comes from UCloud/Core: an RS256 JWT signed with Core's key, with
// iss "cloud.sdu.dk", sub "_UCloud", role "SERVICE", an iat, and an exp in the future.
package coreauth

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The claims Core puts in the tokens it sends to providers.
const (
	Issuer  = "cloud.sdu.dk"
	Subject = "_UCloud"
	Role    = "SERVICE"
)

// ErrUnauthenticated is wrapped by every refusal; the text after it says why.
var ErrUnauthenticated = errors.New("not authenticated as UCloud/Core")

// Claims are the claims of a Core token.
type Claims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// Verifier checks Core tokens against Core's public key.
type Verifier struct {
	key    *rsa.PublicKey
	parser *jwt.Parser
	known  *verified
	now    func() time.Time // the clock exp and iat are judged by
}

// NewVerifier makes a verifier for key. Leeway tolerates that much clock skew on exp and iat.
func NewVerifier(key *rsa.PublicKey, leeway time.Duration) *Verifier {
	v := &Verifier{key: key, now: time.Now}
	v.known = newVerified(func() time.Time { return v.now() })
	v.parser = jwt.NewParser(
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithSubject(Subject),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
	)
	return v
}

// Verify parses and checks a token (without the "Bearer " prefix).
func (v *Verifier) Verify(token string) (*Claims, error) {
	if c, ok := v.known.get(token); ok {
		return c, nil
	}
	claims := &Claims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) { return v.key, nil })
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	if claims.IssuedAt == nil {
		return nil, fmt.Errorf("%w: token has no iat", ErrUnauthenticated)
	}
	if claims.Role != Role {
		return nil, fmt.Errorf("%w: role %q is not %q", ErrUnauthenticated, claims.Role, Role)
	}
	v.known.put(token, claims)
	return claims, nil
}

// VerifyHeader checks an Authorization header value.
func (v *Verifier) VerifyHeader(header string) (*Claims, error) {
	if header == "" {
		return nil, fmt.Errorf("%w: no Authorization header", ErrUnauthenticated)
	}
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return nil, fmt.Errorf("%w: Authorization is not a Bearer token", ErrUnauthenticated)
	}
	return v.Verify(strings.TrimSpace(token))
}

// ParsePublicKey reads Core's RSA public key as PEM ("PUBLIC KEY" or "RSA PUBLIC KEY"), or as the bare
// base64 DER that UCloud hands providers at registration.
func ParsePublicKey(raw []byte) (*rsa.PublicKey, error) {
	text := strings.TrimSpace(string(raw))
	var der []byte
	if block, _ := pem.Decode([]byte(text)); block != nil {
		der = block.Bytes
	} else {
		var err error
		if der, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), "")); err != nil {
			return nil, errors.New("Core public key is neither PEM nor base64 DER")
		}
	}
	if key, err := x509.ParsePKIXPublicKey(der); err == nil {
		rsaKey, ok := key.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("Core public key is %T, not RSA", key)
		}
		return rsaKey, nil
	}
	key, err := x509.ParsePKCS1PublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse Core public key: %w", err)
	}
	return key, nil
}

// LoadPublicKey reads the key from file, or from the PEM text in env when file is empty.
func LoadPublicKey(file, inline string) (*rsa.PublicKey, error) {
	switch {
	case file != "":
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read Core public key: %w", err)
		}
		return ParsePublicKey(raw)
	case inline != "":
		return ParsePublicKey([]byte(inline))
	}
	return nil, errors.New("no Core public key: set UCLOUD_CORE_PUBLIC_KEY_FILE (or UCLOUD_CORE_PUBLIC_KEY)")
}
