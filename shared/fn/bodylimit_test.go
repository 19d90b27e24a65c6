package fn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// reads records what a handler read of each body and whether it was refused as too large.
type reads struct {
	mu   sync.Mutex
	seen map[string]readResult
}

type readResult struct {
	n       int
	tooBig  bool
	reached bool
}

func (rs *reads) handler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		var tooBig *http.MaxBytesError
		rs.mu.Lock()
		rs.seen[name] = readResult{n: len(raw), tooBig: errors.As(err, &tooBig), reached: true}
		rs.mu.Unlock()
		if err != nil {
			fn.WriteError(w, r, fn.DecodeErrorOf(err))
			return
		}
		fn.WriteJSON(w, http.StatusOK, map[string]int{"read": len(raw)})
	})
}

func (rs *reads) get(name string) readResult {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.seen[name]
}

// A route's declared limit replaces the host's default, in both directions, and only after Core's token.
func TestEachRouteHasItsOwnBodyLimit(t *testing.T) {
	core := fakecore.Start(t)
	rs := &reads{seen: map[string]readResult{}}
	routes := http.NewServeMux()
	routes.Handle("POST /ucloud/k8s/big", fn.MaxBody(4096, rs.handler("big")))
	routes.Handle("POST /ucloud/k8s/small", fn.MaxBody(64, rs.handler("small")))
	routes.Handle("POST /ucloud/k8s/undeclared", rs.handler("undeclared"))
	var got []event.Event
	s := &fn.Server{Name: "test", Routes: routes, Auth: verifier(t, core), EventAuth: testSenders{},
		Config: fn.Config{MaxBodyBytes: 1024}, Logger: fn.NewLogger(io.Discard, "test", "info"),
		Events: func(ctx context.Context, e event.Event) (*event.Event, error) { got = append(got, e); return nil, nil }}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	asCore := map[string]string{"Authorization": "Bearer " + core.Token()}

	for _, tc := range []struct {
		name, route string
		size        int
		chunked     bool
		status      int
		// reached: the handler ran; read: what it read of the body (0 for a declared length refused
		// before reading).
		reached bool
		read    int
	}{
		{"over the host default, within the route's larger limit", "big", 3000, false, 200, true, 3000},
		{"same, chunked", "big", 3000, true, 200, true, 3000},
		{"over the route's larger limit", "big", 4097, false, 413, false, 0},
		{"over the route's larger limit, chunked", "big", 4097, true, 413, true, 4096},
		{"within the host default, over the route's smaller limit", "small", 65, false, 413, false, 0},
		{"same, chunked", "small", 65, true, 413, true, 64},
		{"at the route's smaller limit", "small", 64, false, 200, true, 64},
		{"undeclared route, over the host default", "undeclared", 1025, false, 413, true, 0},
		{"undeclared route, over the host default, chunked", "undeclared", 1025, true, 413, true, 1024},
		{"undeclared route, at the host default", "undeclared", 1024, false, 200, true, 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs.mu.Lock()
			delete(rs.seen, tc.route)
			rs.mu.Unlock()
			var body io.Reader = bytes.NewReader(bytes.Repeat([]byte("x"), tc.size))
			if tc.chunked {
				body = io.NopCloser(body)
			}
			resp, raw := post(t, srv.URL+"/ucloud/k8s/"+tc.route, "application/json", body, asCore)
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, raw, tc.status)
			}
			if tc.status == 413 {
				var e ucloud.Error
				if err := json.Unmarshal(raw, &e); err != nil || e.StatusCode != 413 || e.ErrorCode != "BODY_TOO_LARGE" || !strings.Contains(e.Why, "larger than") {
					t.Fatalf("413 body %s is not UCloud's error", raw)
				}
			}
			got := rs.get(tc.route)
			if got.reached != tc.reached || (tc.reached && got.n != tc.read) || got.tooBig != (tc.reached && tc.status == 413) {
				t.Fatalf("handler %+v, want reached %v having read %d", got, tc.reached, tc.read)
			}
		})
	}

	// Without Core's token, a body within the route's limit is refused as unauthenticated, never read.
	rs.mu.Lock()
	delete(rs.seen, "big")
	rs.mu.Unlock()
	resp, _ := post(t, srv.URL+"/ucloud/k8s/big", "application/json", bytes.NewReader(bytes.Repeat([]byte("x"), 4000)), nil)
	if resp.StatusCode != http.StatusUnauthorized || rs.get("big").reached {
		t.Fatalf("unauthenticated: %d, handler %+v", resp.StatusCode, rs.get("big"))
	}

	// Events have their own limit, whatever the host default.
	ev := func(size int) (*http.Response, []byte) {
		return post(t, srv.URL+"/", "application/json", bytes.NewReader(bytes.Repeat([]byte(" "), size)), map[string]string{
			"Authorization": "Bearer monitor", "Ce-Id": "1", "Ce-Source": "/test", "Ce-Type": "state", "Ce-Specversion": "1.0"})
	}
	if resp, raw := ev(fn.EventMaxBody + 1); resp.StatusCode != http.StatusRequestEntityTooLarge || len(got) != 0 {
		t.Fatalf("an event over EventMaxBody: %d %s, %d delivered", resp.StatusCode, raw, len(got))
	}
	if resp, raw := ev(2048); resp.StatusCode/100 != 2 || len(got) != 1 {
		t.Fatalf("an event over the host default, within EventMaxBody: %d %s, %d delivered", resp.StatusCode, raw, len(got))
	}
}
