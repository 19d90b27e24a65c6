package status_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucloud-im/knative-im/shared/eventauth"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/status"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/envtest"
)

// postEvent sends a job state event for (jobID, seq) saying state, with the given Authorization header
// (none when empty) and type, in binary or structured mode; it returns the status and the body.
func postEvent(t *testing.T, url, authorization, typ string, structured bool, jobID string, seq int, state ucloud.JobState) (int, []byte) {
	t.Helper()
	msg := "Your job is " + string(state)
	update := ucloud.JobUpdate{State: &state, Status: &msg, Timestamp: time.Now().UnixMilli()}
	var req *http.Request
	if structured {
		raw, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": fmt.Sprintf("%s-%d", jobID, seq), "source": status.EventSource,
			"type": typ, "jobid": jobID, "seq": seq, "datacontenttype": "application/json", "data": update})
		req, _ = http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/cloudevents+json")
	} else {
		raw, _ := json.Marshal(update)
		req, _ = http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": fmt.Sprintf("%s-%d", jobID, seq), "Ce-Source": status.EventSource,
			"Ce-Type": typ, "Ce-Jobid": jobID, "Ce-Seq": fmt.Sprint(seq)} {
			req.Header.Set(k, v)
		}
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// A job pod (any code, in the jobs namespace, with that namespace's default ServiceAccount token mounted)
// tries to report a state for someone else's job, or to squat the (job, seq) pairs the monitor will use.
// Every attempt is refused with 401/403 and UCloud's error body; nothing reaches the outbox or Core. Then
// the monitor's real event for the same (job, seq) is accepted and delivered: only the monitor can send.
func TestForgedJobStateEventsFromAJobPodAreRefused(t *testing.T) {
	r := newRig(t)
	rep, url := r.newReporter()
	jobs := env.Namespace(t) // the job pod's namespace; its 'default' ServiceAccount is the pod's identity
	issuer := env.ServiceAccountIssuer(t)
	mon := r.monitor
	bearer := func(token string) string { return "Bearer " + token }
	claims := func(exp time.Time) jwt.MapClaims {
		return jwt.MapClaims{"iss": issuer, "aud": []string{envtest.EventAudience}, "sub": mon.Subject,
			"iat": time.Now().Add(-time.Minute).Unix(), "nbf": time.Now().Add(-time.Minute).Unix(), "exp": exp.Unix()}
	}
	unsigned := func() string {
		head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		body, _ := json.Marshal(claims(time.Now().Add(time.Hour)))
		return head + "." + base64.RawURLEncoding.EncodeToString(body) + "."
	}
	tenMinutes := 10 * time.Minute
	attempts := []struct {
		name          string
		authorization string
		typ           string
		structured    bool
		status        int
	}{
		{"no token", "", status.EventType, false, 401},
		{"no token, structured mode", "", status.EventType, true, 401},
		{"not a JWT", bearer("not-a-token"), status.EventType, false, 401},
		{"the job pod's own token (the apiserver's audience)", bearer(env.ServiceAccountToken(t, jobs, "default", nil, tenMinutes)), status.EventType, false, 401},
		{"the job pod's token for status-report's audience", bearer(env.ServiceAccountToken(t, jobs, "default", []string{envtest.EventAudience}, tenMinutes)), status.EventType, false, 403},
		{"the same, structured mode", bearer(env.ServiceAccountToken(t, jobs, "default", []string{envtest.EventAudience}, tenMinutes)), status.EventType, true, 403},
		{"a monitor token for another audience (the Broker's)", bearer(env.ServiceAccountToken(t, mon.Namespace, mon.Name, []string{"eventing.knative.dev/broker/ucloud-im/default"}, tenMinutes)), status.EventType, false, 401},
		{"a monitor token for the apiserver's audience", bearer(env.ServiceAccountToken(t, mon.Namespace, mon.Name, nil, tenMinutes)), status.EventType, false, 401},
		{"the monitor's claims signed by another key", bearer(envtest.ForgedToken(t, claims(time.Now().Add(time.Hour)))), status.EventType, false, 401},
		{"the monitor's claims, expired, signed by another key", bearer(envtest.ForgedToken(t, claims(time.Now().Add(-time.Minute)))), status.EventType, false, 401},
		{"the monitor's claims, unsigned (alg none)", bearer(unsigned()), status.EventType, false, 401},
		{"the monitor's token, another event type", bearer(mon.Token(t)), "com.github.ucloud-im.iapp.update", false, 403},
		{"the monitor's token, another event type, structured", bearer(mon.Token(t)), "com.github.ucloud-im.iapp.update", true, 403},
	}
	for seq, a := range attempts {
		code, body := postEvent(t, url, a.authorization, a.typ, a.structured, "77", seq+1, ucloud.StateSuccess)
		var e ucloud.Error
		if code != a.status || json.Unmarshal(body, &e) != nil || e.StatusCode != a.status || e.Why == "" {
			t.Errorf("%s: %d %s, want %d with UCloud's error body", a.name, code, body, a.status)
		}
	}

	// A real token of the monitor is refused once it has expired: the cluster issues none shorter than
	// 10 minutes, so this receiver's clock runs 11 minutes ahead.
	late := env.EventVerifier(t, mon.Policy(status.EventType), eventauth.Options{Now: func() time.Time { return time.Now().Add(11 * time.Minute) }})
	lateSrv := httptest.NewServer((&fn.Server{Events: rep.Handle, EventAuth: late, Logger: fn.NewLogger(io.Discard, "status-report", "info")}).Handler())
	defer lateSrv.Close()
	expired := env.ServiceAccountToken(t, mon.Namespace, mon.Name, []string{envtest.EventAudience}, tenMinutes)
	if code, body := postEvent(t, lateSrv.URL, bearer(expired), status.EventType, false, "77", 1, ucloud.StateSuccess); code != 401 {
		t.Errorf("the monitor's expired token: %d %s, want 401", code, body)
	}

	ctx := context.Background()
	var rows int
	if err := r.db.Pool.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("the forged events left %d outbox rows (%v)", rows, err)
	}
	if _, err := rep.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.core.Updates(); len(got) != 0 {
		t.Fatalf("Core received %d updates from forged events: %+v", len(got), got)
	}

	// The (job, seq) pairs the job pod tried are still the monitor's.
	for seq, s := range []ucloud.JobState{ucloud.StateInQueue, ucloud.StateRunning} {
		if code, body := postEvent(t, url, bearer(mon.Token(t)), status.EventType, seq == 1, "77", seq+1, s); code != http.StatusAccepted {
			t.Fatalf("the monitor's event %d: %d %s", seq+1, code, body)
		}
	}
	if _, err := rep.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(states(r.core, "77")); got != "[IN_QUEUE RUNNING]" {
		t.Fatalf("Core got %s for job 77, want the monitor's [IN_QUEUE RUNNING]", got)
	}
}
