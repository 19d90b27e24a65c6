package monitor_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/eventauth"
	"github.com/ucloud-im/knative-im/shared/jobevents"
	"github.com/ucloud-im/knative-im/shared/monitor"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// In a cluster the monitor sends the token Knative keeps renewing in /oidc/token. The sink sends what the
// file holds now: a real token is accepted, a stale or wrong one is refused (the monitor retries; nothing
// is recorded), and the renewed one is accepted again without a restart.
func TestSinkSendsTheTokenFileAsItRotates(t *testing.T) {
	r := newRig(t)
	path := filepath.Join(t.TempDir(), "token")
	write := func(token string) {
		if err := os.WriteFile(path, []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(r.monitor.Token(t))
	tokens, err := eventauth.NewFileToken(path)
	if err != nil {
		t.Fatal(err)
	}
	tokens.MaxAge = 0 // read the file for every event
	sink, err := monitor.NewEventSink(r.sink, tokens)
	if err != nil {
		t.Fatal(err)
	}
	send := func(seq int64, state ucloud.JobState, within time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		e, err := jobevents.Build("501", seq, ucloud.JobUpdate{State: &state, Timestamp: time.Now().UnixMilli()})
		if err != nil {
			t.Fatal(err)
		}
		return sink.Send(ctx, e)
	}
	if err := send(1, ucloud.StateInQueue, 20*time.Second); err != nil {
		t.Fatalf("with the monitor's token: %v", err)
	}
	// The token of another ServiceAccount (say Knative mounted the wrong Secret) is refused.
	write(env.ServiceAccountToken(t, r.monitor.Namespace, "default", []string{r.monitor.Audience}, 10*time.Minute))
	if err := send(2, ucloud.StateRunning, 2*time.Second); err == nil {
		t.Fatal("an event with another ServiceAccount's token was accepted")
	}
	write(r.monitor.Token(t))
	if err := send(2, ucloud.StateRunning, 20*time.Second); err != nil {
		t.Fatalf("after the token was renewed: %v", err)
	}
	r.waitStates("501", "[IN_QUEUE RUNNING]")
}
