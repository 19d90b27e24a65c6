package coreauth

import (
	"sync"
	"time"
)

// verified remembers the Core tokens that passed, for a short while. Core signs a token and uses it for
// many calls (core2's are valid 10 minutes), and checking it again (base64, JSON, an RSA-2048 signature)
// was most of a warm retrieve's cost. A token's verdict depends only on its bytes, the key (fixed for the
// process) and the clock, which can only end it at its exp: an entry lasts until the exp (the leeway not
// included) and at most a minute. Only tokens that passed are kept; a refused token is checked, and refused
// with its reason, every time.
type verified struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]remembered
}

type remembered struct {
	claims *Claims
	until  time.Time
}

// rememberFor and rememberMax bound what is kept: how long, and how many tokens (Core uses one at a time;
// a rotation only replaces it).
const (
	rememberFor = time.Minute
	rememberMax = 64
)

func newVerified(now func() time.Time) *verified {
	return &verified{now: now, m: map[string]remembered{}}
}

func (k *verified) get(token string) (*Claims, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	r, ok := k.m[token]
	if !ok || !k.now().Before(r.until) {
		return nil, false
	}
	c := *r.claims // the caller may change its copy
	return &c, true
}

func (k *verified) put(token string, c *Claims) {
	if c.ExpiresAt == nil {
		return
	}
	until := k.now().Add(rememberFor)
	if exp := c.ExpiresAt.Time; exp.Before(until) {
		until = exp
	}
	saved := *c
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.m) >= rememberMax {
		clear(k.m)
	}
	k.m[token] = remembered{claims: &saved, until: until}
}
