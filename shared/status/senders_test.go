package status

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"
)

// verifier counts its verifications; it accepts only the tokens in good, as their sender.
type verifier struct {
	good  map[string]string
	calls int
}

func (v *verifier) Sender(_ context.Context, authorization string) (string, error) {
	v.calls++
	if s, ok := v.good[authorization]; ok {
		return s, nil
	}
	return "", errors.New("unauthenticated")
}

func (v *verifier) Allowed(sender, _ string) bool { return sender == "monitor" }

func bearerJWT(exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return "Bearer " + enc([]byte(`{"alg":"RS256"}`)) + "." + enc(fmt.Appendf(nil, `{"sub":"monitor","exp":%d}`, exp.Unix())) + ".sig"
}

// A token is verified once and then answered from memory until the earlier of its expiry and a minute;
// a refused token is asked of the verifier every time (a forger cannot get a refusal remembered as a pass,
// nor a pass out of a token that never verified).
func TestVerifiedTokensAreRememberedUntilExpiryOrAMinute(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	long, short := bearerJWT(now.Add(time.Hour)), bearerJWT(now.Add(20*time.Second))
	forged := bearerJWT(now.Add(time.Hour)) + "x"
	inner := &verifier{good: map[string]string{long: "monitor", short: "monitor"}}
	v := newVerifiedTokens(inner)
	v.now = func() time.Time { return now }
	ctx := context.Background()
	ask := func(auth string) (string, error) { return v.Sender(ctx, auth) }
	steps := []struct {
		name      string
		at        time.Duration
		auth      string
		wantErr   bool
		wantCalls int
	}{
		{"first use verifies", 0, long, false, 1},
		{"again: from memory", 10 * time.Second, long, false, 1},
		{"a forged token is verified", 10 * time.Second, forged, true, 2},
		{"and verified again, never remembered", 11 * time.Second, forged, true, 3},
		{"a short-lived token verifies", 11 * time.Second, short, false, 4},
		{"from memory before its expiry", 19 * time.Second, short, false, 4},
		{"at its expiry it is verified again", 20 * time.Second, short, false, 5},
		{"the long token after a minute is verified again", 61 * time.Second, long, false, 6},
	}
	for _, s := range steps {
		v.now = func() time.Time { return now.Add(s.at) }
		sender, err := ask(s.auth)
		if (err != nil) != s.wantErr || (!s.wantErr && sender != "monitor") || inner.calls != s.wantCalls {
			t.Fatalf("%s: sender %q, err %v, verifier calls %d; want error %v, calls %d", s.name, sender, err, inner.calls, s.wantErr, s.wantCalls)
		}
	}
	if !v.Allowed("monitor", EventType) || v.Allowed("someone", EventType) {
		t.Fatal("Allowed is not the verifier's")
	}
}
