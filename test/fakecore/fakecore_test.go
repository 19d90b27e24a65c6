package fakecore_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ucloud-im/knative-im/test/fakecore"
)

type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

// The fake is strict: what the real Core would misread is a reported violation, not silently accepted.
func TestStrictDecodingReportsViolations(t *testing.T) {
	rec := &recorder{}
	core, err := fakecore.New(fakecore.Options{Reporter: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	tokenResp, err := http.Post(core.URL()+"/auth/providers/refresh", "application/json",
		strings.NewReader(`{"items":[{"refreshToken":"`+core.RefreshToken()+`"}]}`))
	if err != nil || tokenResp.StatusCode != 200 {
		t.Fatalf("refresh: %v %v", tokenResp, err)
	}
	var tok struct {
		Responses []struct{ AccessToken string } `json:"responses"`
	}
	if err := jsonDecode(tokenResp, &tok); err != nil || len(tok.Responses) != 1 {
		t.Fatalf("refresh answer: %v", err)
	}
	access := tok.Responses[0].AccessToken
	tests := []struct {
		name, body, violation string
	}{
		{"unknown field", `{"items":[{"id":"1","update":{"state":"RUNNING","timestamp":1732000000000,"colour":"red"}}]}`, "unknown field"},
		{"wrong type", `{"items":[{"id":1,"update":{"timestamp":1732000000000}}]}`, "cannot unmarshal"},
		{"zero timestamp", `{"items":[{"id":"1","update":{"state":"RUNNING","timestamp":0}}]}`, "timestamp 0"},
		{"unknown state", `{"items":[{"id":"1","update":{"state":"DONE","timestamp":1732000000000}}]}`, "unknown state"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.msgs)
			req, _ := http.NewRequest(http.MethodPost, core.URL()+"/api/jobs/control/update", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+access)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if len(rec.msgs) != before+1 || !strings.Contains(rec.msgs[before], tc.violation) {
				t.Fatalf("violations %v, want one saying %q", rec.msgs[before:], tc.violation)
			}
		})
	}
	// Without an access token the control calls are refused.
	resp, err := http.Post(core.URL()+"/api/jobs/control/update", "application/json", strings.NewReader(`{"items":[]}`))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated control call: %v %v", resp, err)
	}
}
