package store

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// scramIterations is PostgreSQL's default (scram_iterations).
const scramIterations = 4096

// scramVerifier is the SCRAM-SHA-256 verifier PostgreSQL stores for password (RFC 5802, RFC 7677), which
// CREATE/ALTER ROLE ... PASSWORD accept as already hashed. Passwords are limited to printable ASCII, where
// SASLprep (which PostgreSQL applies) changes nothing, so the verifier is the one the server would compute.
func scramVerifier(password string) (string, error) {
	if password == "" {
		return "", errors.New("empty")
	}
	for _, c := range []byte(password) {
		if c < 0x21 || c > 0x7e {
			return "", errors.New("use printable ASCII only (for example openssl rand -hex 24)")
		}
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		return "", err
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	server := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", scramIterations, b64(salt), b64(stored[:]), b64(server)), nil
}
