package iapps_test

import (
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/iapps"
)

// The terminal runs while its last activity (the later of the configuration's change and the idle lease)
// is within the idle time: a lease renewed by keystrokes keeps an old configuration running.
func TestTerminalRunsWhileItsLeaseIsFresh(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	term := iapps.Terminal{IdleTimeout: 15 * time.Minute, Now: func() time.Time { return now }}
	cfg := []byte(`{"folders":["/1"]}`)
	for _, tc := range []struct {
		name           string
		updated, lease time.Time
		run            bool
	}{
		{"just configured, no lease", now.Add(-time.Minute), time.Time{}, true},
		{"old configuration, fresh lease", now.Add(-time.Hour), now.Add(-14 * time.Minute), true},
		{"old configuration, lease past the idle time", now.Add(-time.Hour), now.Add(-16 * time.Minute), false},
		{"old configuration, no lease", now.Add(-time.Hour), time.Time{}, false},
		{"lease older than a fresh configuration", now.Add(-time.Minute), now.Add(-time.Hour), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := iapps.Record{UpdatedAt: tc.updated, Lease: tc.lease}
			if got := term.ShouldRun(cfg, rec.Activity()); got != tc.run {
				t.Fatalf("ShouldRun = %v, want %v (activity %s)", got, tc.run, rec.Activity())
			}
		})
	}
	if term.ShouldRun([]byte(`{"folders":[]}`), now) {
		t.Fatal("a terminal without folders runs")
	}
}
