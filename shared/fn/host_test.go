package fn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

type echoReq struct {
	Items []struct {
		ID   string `json:"id"`
		Size int    `json:"size"`
	} `json:"items"`
}

// testServer has an echo route, an event handler recording what it got, and one readiness check.
func testServer(t *testing.T, logs io.Writer, ready *error, got *[]event.Event) *httptest.Server {
	t.Helper()
	routes := http.NewServeMux()
	routes.Handle("POST /ucloud/k8s/echo", fn.Handle(func(ctx context.Context, r *http.Request, req echoReq) (echoReq, error) {
		if len(req.Items) > 0 {
			fn.WithJobID(ctx, req.Items[0].ID)
			fn.Log(ctx).Info("echoing")
		}
		return req, nil
	}))
	routes.HandleFunc("POST /ucloud/k8s/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	routes.Handle("POST /ucloud/k8s/fail", fn.Handle(func(ctx context.Context, r *http.Request, req echoReq) (echoReq, error) {
		return req, errors.New("database password is hunter2")
	}))
	s := &fn.Server{
		Name: "test", Routes: routes, EventAuth: testSenders{},
		Logger: fn.NewLogger(logs, "test-fn", "debug"),
		Config: fn.Config{MaxBodyBytes: 1024},
		Checks: []fn.Check{{Name: "database", Func: func(context.Context) error { return *ready }}},
		Events: func(ctx context.Context, e event.Event) (*event.Event, error) {
			if e.Type() == "reject" {
				return nil, fn.Errorf(http.StatusBadRequest, "BAD_EVENT", "Rejected.")
			}
			*got = append(*got, e)
			if e.Type() == "ask" {
				reply := event.New()
				reply.SetID("reply-" + e.ID())
				reply.SetSource("/test-fn")
				reply.SetType("answer")
				_ = reply.SetData("application/json", map[string]string{"answer": "42"})
				return &reply, nil
			}
			return nil, nil
		},
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// testSenders is the host's sender check reduced to its decisions (shared/eventauth verifies real tokens
// against the apiserver): token "monitor" is the monitor, "job" a job pod; the monitor may send every type
// but "iapp.update", the job pod nothing.
type testSenders struct{}

func (testSenders) Sender(_ context.Context, authorization string) (string, error) {
	switch authorization {
	case "Bearer monitor":
		return "monitor", nil
	case "Bearer job":
		return "job", nil
	}
	return "", errors.New("no valid token")
}

func (testSenders) Allowed(sender, typ string) bool {
	return sender == "monitor" && typ != "iapp.update"
}

var asMonitor = map[string]string{"Authorization": "Bearer monitor"}

// withMonitor is h plus the monitor's token.
func withMonitor(h map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for k, v := range asMonitor {
		out[k] = v
	}
	return out
}

func post(t *testing.T, url, contentType string, body io.Reader, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, body)
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

func TestBadInputGetsAClearErrorBody(t *testing.T) {
	var logs bytes.Buffer
	var ready error
	var got []event.Event
	srv := testServer(t, &logs, &ready, &got)
	tests := []struct {
		name, path, body string
		chunked          bool
		status           int
		why              string
	}{
		{"malformed JSON", "/ucloud/k8s/echo", `{"items":[`, false, 400, "malformed JSON"},
		{"wrong type", "/ucloud/k8s/echo", `{"items":[{"id":"1","size":"big"}]}`, false, 400, "items.size must be a number"},
		{"trailing data", "/ucloud/k8s/echo", `{"items":[]} {}`, false, 400, "unexpected data"},
		{"empty body", "/ucloud/k8s/echo", ``, false, 400, "empty"},
		{"oversized body", "/ucloud/k8s/echo", `{"items":[{"id":"` + strings.Repeat("x", 2000) + `"}]}`, false, 413, "larger than 1024 bytes"},
		{"oversized chunked body", "/ucloud/k8s/echo", `{"items":[{"id":"` + strings.Repeat("x", 2000) + `"}]}`, true, 413, "larger than 1024 bytes"},
		{"unknown route", "/ucloud/k8s/nothing", `{}`, false, 404, ""},
		{"panic", "/ucloud/k8s/panic", `{}`, false, 500, "Internal error"},
		{"internal error hides its cause", "/ucloud/k8s/fail", `{"items":[]}`, false, 500, "Internal error"},
		{"plain POST to the event path", "/", `{}`, false, 401, "not authenticated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			resp, raw := post(t, srv.URL+tc.path, "application/json", body, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, tc.status, raw)
			}
			if tc.status == 404 {
				return
			}
			var e ucloud.Error
			if err := json.Unmarshal(raw, &e); err != nil || e.StatusCode != tc.status {
				t.Fatalf("body %s is not a UCloud error with statusCode %d", raw, tc.status)
			}
			if !strings.Contains(e.Why, tc.why) {
				t.Fatalf("why %q does not say %q", e.Why, tc.why)
			}
			if strings.Contains(string(raw), "hunter2") {
				t.Fatalf("error body leaks the internal cause: %s", raw)
			}
		})
	}
}

func TestLogsAreJSONWithRequestFunctionAndJobID(t *testing.T) {
	var logs bytes.Buffer
	var ready error
	var got []event.Event
	srv := testServer(t, &logs, &ready, &got)
	resp, _ := post(t, srv.URL+"/ucloud/k8s/echo", "application/json", strings.NewReader(`{"items":[{"id":"4242"}]}`), map[string]string{"X-Request-Id": "req-1"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var access map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["msg"] == "request" {
			access = m
		}
	}
	if access == nil {
		t.Fatalf("no access log line in %s", logs.String())
	}
	for k, want := range map[string]any{"request_id": "req-1", "function": "test-fn", "job_id": "4242", "status": float64(200), "path": "/ucloud/k8s/echo"} {
		if access[k] != want {
			t.Errorf("access log %s = %v, want %v", k, access[k], want)
		}
	}
}

func TestReadinessFollowsDependencies(t *testing.T) {
	var ready error
	var got []event.Event
	srv := testServer(t, io.Discard, &ready, &got)
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("readyz %d while the database answers", code)
	}
	ready = errors.New("connection refused")
	code, body := get("/readyz")
	if code != 503 || !strings.Contains(body, "database") || !strings.Contains(body, "connection refused") {
		t.Fatalf("readyz %d %s while the database is down; want 503 naming it", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d: liveness must not depend on dependencies", code)
	}
}

func TestCloudEventsInBinaryAndStructuredMode(t *testing.T) {
	var ready error
	var got []event.Event
	srv := testServer(t, io.Discard, &ready, &got)
	binary := map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "ev-1", "Ce-Source": "/test", "Ce-Type": "job.state.changed", "Ce-Jobid": "4242"}
	resp, raw := post(t, srv.URL+"/", "application/json", strings.NewReader(`{"state":"RUNNING"}`), withMonitor(binary))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("binary event: %d %s", resp.StatusCode, raw)
	}
	ev := cloudevents.NewEvent()
	ev.SetID("ev-2")
	ev.SetSource("/test")
	ev.SetType("job.state.changed")
	ev.SetExtension("jobid", "4243")
	_ = ev.SetData(cloudevents.ApplicationJSON, map[string]string{"state": "SUCCESS"})
	structured, _ := json.Marshal(ev)
	resp, raw = post(t, srv.URL+"/", "application/cloudevents+json", bytes.NewReader(structured), asMonitor)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("structured event: %d %s", resp.StatusCode, raw)
	}
	if len(got) < 2 || got[0].ID() != "ev-1" || got[1].ID() != "ev-2" {
		t.Fatalf("handler got %v", got)
	}
	if jobID, _ := got[0].Extensions()["jobid"].(string); jobID != "4242" {
		t.Fatalf("extension jobid lost: %v", got[0].Extensions())
	}
	if !strings.Contains(string(got[1].Data()), "SUCCESS") {
		t.Fatalf("structured data lost: %s", got[1].Data())
	}
	// An event can be answered with a reply event, in binary mode.
	ask := map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "q1", "Ce-Source": "/test", "Ce-Type": "ask"}
	resp, raw = post(t, srv.URL+"/", "application/json", strings.NewReader(`{}`), withMonitor(ask))
	if resp.StatusCode != 200 || resp.Header.Get("Ce-Type") != "answer" || resp.Header.Get("Ce-Id") != "reply-q1" || !strings.Contains(string(raw), "42") {
		t.Fatalf("reply event: %d %v %s", resp.StatusCode, resp.Header, raw)
	}
	// An invalid event (no id) and a rejected one get error bodies, not acknowledgements.
	bad := map[string]string{"Ce-Specversion": "1.0", "Ce-Source": "/test", "Ce-Type": "x"}
	if resp, raw := post(t, srv.URL+"/", "application/json", strings.NewReader(`{}`), withMonitor(bad)); resp.StatusCode != 400 {
		t.Fatalf("event without id: %d %s", resp.StatusCode, raw)
	}
	reject := map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "3", "Ce-Source": "/test", "Ce-Type": "reject"}
	if resp, raw := post(t, srv.URL+"/", "application/json", strings.NewReader(`{}`), withMonitor(reject)); resp.StatusCode != 400 || !strings.Contains(string(raw), "Rejected") {
		t.Fatalf("rejected event: %d %s", resp.StatusCode, raw)
	}
	// A plain POST from the monitor is still no CloudEvent.
	if resp, raw := post(t, srv.URL+"/", "application/json", strings.NewReader(`{}`), asMonitor); resp.StatusCode != 415 || !strings.Contains(string(raw), "Only CloudEvents") {
		t.Fatalf("plain POST: %d %s", resp.StatusCode, raw)
	}
}

// Events never bypass Core's token: only "/" takes them, and a Core path with CloudEvent headers is a Core call.
func TestCloudEventOnACorePathNeedsCoreToken(t *testing.T) {
	core := fakecore.Start(t)
	srv := authedServer(t, core)
	binary := map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "ev-1", "Ce-Source": "/x", "Ce-Type": "x"}
	resp, _ := post(t, srv.URL+"/ucloud/k8s/jobs", "application/json", strings.NewReader(`{}`), binary)
	if resp.StatusCode != 401 {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
}

func TestLoadEnvNamesTheBadVariable(t *testing.T) {
	var spec struct {
		fn.ListenEnv
		fn.ProviderEnv
	}
	t.Setenv("PORT", "eighty")
	t.Setenv("UCLOUD_PROVIDER_ID", "k8s")
	if err := fn.LoadEnv(&spec); err == nil || !strings.Contains(err.Error(), `PORT="eighty"`) {
		t.Fatalf("bad PORT: %v", err)
	}
	t.Setenv("PORT", "9000")
	os.Unsetenv("UCLOUD_PROVIDER_ID")
	if err := fn.LoadEnv(&spec); err == nil || !strings.Contains(err.Error(), "UCLOUD_PROVIDER_ID is required") {
		t.Fatalf("missing UCLOUD_PROVIDER_ID: %v", err)
	}
	t.Setenv("UCLOUD_PROVIDER_ID", "k8s")
	if err := fn.LoadEnv(&spec); err != nil || spec.Port != 9000 {
		t.Fatalf("good config refused: %v %+v", err, spec)
	}
}

func TestForProviderRefusesOtherProviders(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("POST /ucloud/{provider}/x", fn.ForProvider("k8s", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fn.WriteJSON(w, http.StatusOK, map[string]string{})
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for provider, want := range map[string]int{"k8s": 200, "slurm": 404} {
		resp, raw := post(t, srv.URL+"/ucloud/"+provider+"/x", "application/json", strings.NewReader(`{}`), nil)
		if resp.StatusCode != want || (want == 404 && !strings.Contains(string(raw), `provider \"k8s\", not \"slurm\"`)) {
			t.Errorf("%s: %d %s", provider, resp.StatusCode, raw)
		}
	}
}
