package fn_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// readSpy is a request body that records whether anything read it.
type readSpy struct {
	r    io.Reader
	read bool
}

func (s *readSpy) Read(p []byte) (int, error) { s.read = true; return s.r.Read(p) }

// A job pod's events are refused from their headers alone, before the body is read, with UCloud's error
// body; the handler never sees them. An allowed sender sending a type it may not send is refused too: from
// the Ce-Type header in binary mode, after reading the envelope in structured mode.
func TestEventSendersAreCheckedBeforeTheBodyIsRead(t *testing.T) {
	binary := func(typ string) map[string]string {
		return map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "1", "Ce-Source": "/x", "Ce-Type": typ, "Content-Type": "application/json"}
	}
	structured := map[string]string{"Content-Type": "application/cloudevents+json"}
	structuredBody := `{"specversion":"1.0","id":"1","source":"/x","type":"iapp.update","data":{}}`
	tests := []struct {
		name       string
		auth       fn.EventAuth
		token      string
		headers    map[string]string
		body       string
		status     int
		bodyUnread bool
	}{
		{"no token", testSenders{}, "", binary("job.state.changed"), `{}`, 401, true},
		{"not a bearer token", testSenders{}, "Basic bW9uaXRvcjo=", binary("job.state.changed"), `{}`, 401, true},
		{"an invalid token", testSenders{}, "Bearer forged", binary("job.state.changed"), `{}`, 401, true},
		{"a job pod's valid token", testSenders{}, "Bearer job", binary("job.state.changed"), `{}`, 403, true},
		{"the monitor, a type it may not send (binary)", testSenders{}, "Bearer monitor", binary("iapp.update"), `{}`, 403, true},
		{"the monitor, a type it may not send (structured)", testSenders{}, "Bearer monitor", structured, structuredBody, 403, false},
		{"a function without a sender policy", nil, "Bearer monitor", binary("job.state.changed"), `{}`, 401, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			handled := 0
			s := &fn.Server{Name: "test", EventAuth: tc.auth, Logger: fn.NewLogger(io.Discard, "test", "info"),
				Events: func(context.Context, event.Event) (*event.Event, error) { handled++; return nil, nil }}
			spy := &readSpy{r: strings.NewReader(tc.body)}
			req := httptest.NewRequest(http.MethodPost, "/", spy)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			if tc.token != "" {
				req.Header.Set("Authorization", tc.token)
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			var e ucloud.Error
			if rec.Code != tc.status || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.StatusCode != tc.status || e.Why == "" {
				t.Fatalf("%d %s, want %d with UCloud's error body", rec.Code, rec.Body, tc.status)
			}
			if got := rec.Header().Get("WWW-Authenticate"); (tc.status == 401) != (got == "Bearer") {
				t.Fatalf("WWW-Authenticate %q on a %d", got, tc.status)
			}
			if handled != 0 {
				t.Fatal("the event reached the handler")
			}
			if tc.bodyUnread && spy.read {
				t.Fatal("the body was read before the sender was refused")
			}
		})
	}
}
