package fakecore

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Files of a fake Core's folder (.run/core in make run): the IM reads core.pub and refresh-token; `make
// token` signs with core.key.
const (
	KeyFile          = "core.key"
	PublicKeyFile    = "core.pub"
	RefreshTokenFile = "refresh-token"
)

// LoadOrCreateKey reads dir/core.key, creating the key pair (and core.pub) the first time.
func LoadOrCreateKey(dir string) (*rsa.PrivateKey, error) {
	path := filepath.Join(dir, KeyFile)
	raw, err := os.ReadFile(path)
	if err == nil {
		block, _ := pem.Decode(raw)
		if block == nil {
			return nil, fmt.Errorf("%s is not PEM", path)
		}
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

// WriteFiles writes the public key and refresh token the IM is configured with.
func (c *Core) WriteFiles(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, PublicKeyFile), c.PublicKeyPEM(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, RefreshTokenFile), []byte(c.RefreshToken()+"\n"), 0o600)
}

// TokenFromDir signs a Core token with dir's key, valid for ttl: what `make token` prints.
func TokenFromDir(dir string, ttl time.Duration) (string, error) {
	key, err := LoadOrCreateKey(dir)
	if err != nil {
		return "", err
	}
	claims := Claims()
	claims["exp"] = time.Now().Add(ttl).Unix()
	return jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
}
