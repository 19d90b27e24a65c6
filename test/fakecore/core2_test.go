package fakecore_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

func spec(provider string) ucloud.JobSpecification {
	return ucloud.JobSpecification{Product: ucloud.ProductReference{ID: "syncthing", Category: "syncthing", Provider: provider},
		Application: ucloud.NameAndVersion{Name: "syncthing", Version: "1"}, Replicas: 1,
		Parameters: map[string]ucloud.AppParameterValue{}, Resources: []ucloud.AppParameterValue{}}
}

func register(t *testing.T, c *ucloud.Client, provider, intent string) ([]ucloud.FindByStringID, error) {
	t.Helper()
	user := "alice#1234"
	return c.RegisterJobs(context.Background(), []ucloud.ProviderRegisteredResource[ucloud.JobSpecification]{{
		Spec: spec(provider), ProviderGeneratedID: &intent, CreatedBy: &user}})
}

func statusOf(err error) int {
	var se *ucloud.StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

// As core2: a provider-generated id is unique per provider (a repeat is 409, nothing registered), a job
// for another provider's product is 403, and browse finds a job by its provider-generated id.
func TestRegisterIsUniquePerProviderGeneratedID(t *testing.T) {
	core := fakecore.Start(t)
	c, err := core.Client(ucloud.ClientOptions{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := register(t, c, "k8s", "intent-1")
	if err != nil || len(ids) != 1 {
		t.Fatalf("first register: %v %v", ids, err)
	}
	if _, err := register(t, c, "k8s", "intent-1"); statusOf(err) != http.StatusConflict {
		t.Fatalf("repeated providerGeneratedId: %v, want 409", err)
	}
	if _, err := register(t, c, "other", "intent-2"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("another provider's product: %v, want 403", err)
	}
	if n := len(core.Registered()); n != 1 {
		t.Fatalf("%d jobs registered, want 1", n)
	}
	job, err := c.FindJobByProviderID(context.Background(), "intent-1")
	if err != nil || job == nil || job.ID != ids[0].ID {
		t.Fatalf("browse by provider id: %+v %v, want job %s", job, err, ids[0].ID)
	}
	if job, err := c.FindJobByProviderID(context.Background(), "intent-9"); err != nil || job != nil {
		t.Fatalf("browse for an unknown provider id: %+v %v", job, err)
	}
}

// As core2: one unknown job refuses the whole update batch with 404, and Core stamps updates with its own
// clock.
func TestUpdatesOfUnknownJobsAreRefusedWhole(t *testing.T) {
	core, err := fakecore.New(fakecore.Options{Reporter: t, RequireKnownJobs: true})
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	core.PutJob(ucloud.Job{ID: "1"})
	c, _ := core.Client(ucloud.ClientOptions{MaxAttempts: 1})
	running := ucloud.StateRunning
	sent := time.Now().Add(-time.Hour).UnixMilli()
	item := func(id string) ucloud.ResourceUpdateAndID[ucloud.JobUpdate] {
		return ucloud.ResourceUpdateAndID[ucloud.JobUpdate]{ID: id, Update: ucloud.JobUpdate{State: &running, Timestamp: sent}}
	}
	err = c.UpdateJobs(context.Background(), []ucloud.ResourceUpdateAndID[ucloud.JobUpdate]{item("1"), item("2")})
	if statusOf(err) != http.StatusNotFound || len(core.Updates()) != 0 {
		t.Fatalf("batch with an unknown job: %v, %d updates kept", err, len(core.Updates()))
	}
	before := time.Now().UnixMilli()
	if err := c.UpdateJobs(context.Background(), []ucloud.ResourceUpdateAndID[ucloud.JobUpdate]{item("1")}); err != nil {
		t.Fatal(err)
	}
	if u := core.Updates(); len(u) != 1 || u[0].Update.Timestamp < before {
		t.Fatalf("updates %+v: want one stamped with Core's clock (>= %d), not the sent %d", u, before, sent)
	}
}

// Tokens as core2 signs them: ten minutes, audience all:write, a principal type; the provider's access
// token names the provider.
func TestTokensAsCore2SignsThem(t *testing.T) {
	core := fakecore.Start(t)
	parse := func(tok string) jwt.MapClaims {
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
			t.Fatal(err)
		}
		return claims
	}
	service := parse(core.Token())
	if service["sub"] != "_UCloud" || service["role"] != "SERVICE" || service["principalType"] != "service" ||
		service["exp"].(float64)-service["iat"].(float64) != 600 {
		t.Fatalf("Core -> provider token claims %v", service)
	}
	if aud, _ := service.GetAudience(); len(aud) != 1 || aud[0] != "all:write" {
		t.Fatalf("audience %v", aud)
	}
	resp, err := http.Post(core.URL()+"/auth/providers/refresh", "application/json", strings.NewReader(`{"items":[{"refreshToken":"`+core.RefreshToken()+`"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok ucloud.BulkResponse[ucloud.AccessToken]
	if err := jsonDecode(resp, &tok); err != nil || len(tok.Responses) != 1 {
		t.Fatalf("refresh: %v", err)
	}
	access := parse(tok.Responses[0].AccessToken)
	if access["sub"] != "#P_k8s" || access["role"] != "PROVIDER" || access["principalType"] != "provider" {
		t.Fatalf("provider access token claims %v", access)
	}
}

// Core's calls to a provider carry the user's name and give up after 5 s; a create's job is known while
// the provider handles it (core2 creates it first: the provider's updates during the call apply), and
// only a create Core saw succeed keeps it known.
func TestCallProviderAsCore2(t *testing.T) {
	core := fakecore.Start(t)
	var gotUser string
	var knownDuring bool
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUser = r.Header.Get("ucloud-username")
		knownDuring = core.KnowsJob(r.URL.Query().Get("id"))
		switch r.URL.Query().Get("mode") {
		case "slow":
			select {
			case <-time.After(fakecore.ProviderTimeout + 2*time.Second):
			case <-r.Context().Done():
			}
		case "refuse":
			http.Error(w, `{"why":"no"}`, http.StatusBadRequest)
			return
		}
		w.Write([]byte(`{"responses":[null]}`))
	}))
	defer provider.Close()
	ctx := context.Background()
	create := func(id, mode string) fakecore.ProviderCall {
		t.Helper()
		call, err := core.CallProvider(ctx, provider.URL, http.MethodPost, "/ucloud/k8s/jobs?mode="+mode+"&id="+id, "alice#1234",
			ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{{ID: id}}})
		if err != nil {
			t.Fatal(err)
		}
		if !knownDuring {
			t.Errorf("create %s (%s): the job was unknown to Core while the provider handled the call", id, mode)
		}
		return call
	}
	if call := create("1", "ok"); call.Status != 200 || !core.KnowsJob("1") {
		t.Fatalf("accepted create: %+v, known %v", call, core.KnowsJob("1"))
	}
	if raw, _ := base64.StdEncoding.DecodeString(gotUser); string(raw) != "alice#1234" {
		t.Fatalf("ucloud-username %q", gotUser)
	}
	if call := create("2", "refuse"); call.Status != 400 || core.KnowsJob("2") {
		t.Fatalf("refused create: %+v, known %v", call, core.KnowsJob("2"))
	}
	began := time.Now()
	if call := create("3", "slow"); !call.TimedOut || core.KnowsJob("3") {
		t.Fatalf("slow create: %+v, known %v", call, core.KnowsJob("3"))
	}
	if waited := time.Since(began); waited > fakecore.ProviderTimeout+time.Second {
		t.Fatalf("Core waited %s for a slow provider", waited)
	}
}
