package status

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/ucloud-im/knative-im/shared/fn"
)

// verifiedTokens remembers, for a short while, the senders' tokens it has verified. The monitor sends
// every event with the same token for most of an hour, and verifying it (parse, RSA signature, claims)
// was 30% of status-report's CPU at 100 events/s. A token is the same bytes each time, so its verification
// can only change with the clock (its expiry) or the keys (the cluster's signing keys rotated): an entry
// lasts until the token expires and at most remember, after which it is verified again. Only tokens that
// verified are kept; a refused token is refused again, with its reason, every time.
type verifiedTokens struct {
	fn.EventAuth
	remember time.Duration
	max      int
	now      func() time.Time

	mu   sync.Mutex
	seen map[string]verified
}

type verified struct {
	sender string
	until  time.Time
}

// RememberVerified wraps the senders' verifier (eventauth's) so that a token verified once is answered
// from memory until it expires, for at most a minute (verifiedTokens).
func RememberVerified(auth fn.EventAuth) fn.EventAuth { return newVerifiedTokens(auth) }

func newVerifiedTokens(auth fn.EventAuth) *verifiedTokens {
	return &verifiedTokens{EventAuth: auth, remember: time.Minute, max: 64, now: time.Now, seen: map[string]verified{}}
}

// Sender answers a remembered verification, or verifies and remembers it.
func (v *verifiedTokens) Sender(ctx context.Context, authorization string) (string, error) {
	now := v.now()
	v.mu.Lock()
	got, ok := v.seen[authorization]
	v.mu.Unlock()
	if ok && now.Before(got.until) {
		return got.sender, nil
	}
	sender, err := v.EventAuth.Sender(ctx, authorization)
	if err != nil {
		return "", err
	}
	until := now.Add(v.remember)
	if exp, ok := expiry(authorization); !ok {
		return sender, nil // verified, but its expiry unread: not remembered
	} else if exp.Before(until) {
		until = exp
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.seen) >= v.max {
		clear(v.seen) // a handful of senders' tokens at a time; rotation only replaces them
	}
	v.seen[authorization] = verified{sender: sender, until: until}
	return sender, nil
}

// expiry reads the exp claim of a bearer JWT whose signature was just verified.
func expiry(authorization string) (time.Time, bool) {
	_, token, _ := strings.Cut(strings.TrimSpace(authorization), " ")
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	secs, err := claims.Exp.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(secs), 0), true
}
