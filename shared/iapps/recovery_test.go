package iapps_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/envtest"
)

var providerID = regexp.MustCompile(`"providerGeneratedId":"([^"]+)"`)

func registerIntents(r *rig) []string {
	var ids []string
	for _, req := range r.core.Received() {
		if req.Path == "/api/jobs/control/register" {
			if m := providerID.FindSubmatch(req.Body); m != nil {
				ids = append(ids, string(m[1]))
			}
		}
	}
	return ids
}

// Core down during the first update: the call fails with a clear error and the intent is kept; once Core is
// back the next update registers with the same provider-generated id and succeeds.
func TestRegistrationSurvivesCoreOutage(t *testing.T) {
	r := newRig(t)
	r.core.Fail("/api/jobs/control/register", http.StatusServiceUnavailable, 100)
	code, body := r.call("syncthing", iapps.OpUpdate, iapps.UpdateRequest{Principal: alice(), Config: syncthingConfig("A")})
	if code != http.StatusBadGateway || !strings.Contains(string(body), "could not be registered") {
		t.Fatalf("update with Core down: %d %s", code, body)
	}
	if got := r.retrieve("syncthing", alice()); got.ETag != iapps.InitialETag {
		t.Fatalf("a failed registration is visible to retrieve: %+v", got)
	}
	r.core.ClearFaults()
	if code, body := r.call("syncthing", iapps.OpUpdate, iapps.UpdateRequest{Principal: alice(), Config: syncthingConfig("A")}); code != 200 {
		t.Fatalf("update after Core came back: %d %s", code, body)
	}
	if n := len(r.core.Registered()); n != 1 {
		t.Fatalf("%d registrations, want 1", n)
	}
	ids := registerIntents(r)
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("retries used different provider-generated ids: %v", ids)
		}
	}
}

// A crash between Core's answer and storing the job id: the next call registers again with the same
// provider-generated id, Core refuses the repeat with 409 (as core2 does: the id is unique per provider),
// and the provider adopts the job Core lists under that id instead of failing forever or registering a
// second one.
func TestCrashAfterRegisteringIsAdoptedNotRepeated(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	key := iapps.KeyOf("syncthing", alice())
	h, _ := r.svc.Registry.Lookup("syncthing")
	crash := errors.New("process died")
	_, _, err := r.svc.Store.Register(ctx, key, h.Default(), func(ctx context.Context, intent string) (string, error) {
		createdBy := key.CreatedBy
		if _, err := r.svc.Core.RegisterJobs(ctx, []ucloud.ProviderRegisteredResource[ucloud.JobSpecification]{{
			Spec: h.JobSpec("k8s"), ProviderGeneratedID: &intent, CreatedBy: &createdBy,
		}}); err != nil {
			return "", err
		}
		return "", crash // Core registered the job; we died before storing its id
	})
	if !errors.Is(err, crash) {
		t.Fatalf("simulated crash: %v", err)
	}
	if code, body := r.call("syncthing", iapps.OpUpdate, iapps.UpdateRequest{Principal: alice(), Config: syncthingConfig("A")}); code != 200 {
		t.Fatalf("update after the crash: %d %s", code, body)
	}
	rec, err := r.svc.Store.Get(ctx, key)
	if err != nil || rec.JobID != "5000" {
		t.Fatalf("stored job %q (%v), want the one Core registered before the crash (5000)", rec.JobID, err)
	}
	if n := len(r.core.Registered()); n != 1 {
		t.Fatalf("Core registered %d jobs for one key", n)
	}
	var calls []string
	for _, req := range r.core.Received() {
		if strings.HasPrefix(req.Path, "/api/jobs/control/") {
			calls = append(calls, req.Path)
		}
	}
	want := []string{"/api/jobs/control/register", "/api/jobs/control/register", "/api/jobs/control/browse"}
	if strings.Join(calls, " ") != strings.Join(want, " ") {
		t.Fatalf("calls to Core %v, want %v (the repeat refused, then the job looked up)", calls, want)
	}
	// Later updates use the adopted job and never register again.
	if code, body := r.call("syncthing", iapps.OpUpdate, iapps.UpdateRequest{Principal: alice(), Config: syncthingConfig("B")}); code != 200 {
		t.Fatalf("second update: %d %s", code, body)
	}
	if n := len(registerIntents(r)); n != 2 {
		t.Fatalf("%d register calls after a further update, want still 2", n)
	}
}

// A job that ended for good: its configuration is cleared and the user is asked to try again; the retry
// registers a fresh job.
func TestUpdateOfEndedJobClearsAndRetries(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if code, body := r.call("syncthing", iapps.OpUpdate, iapps.UpdateRequest{Principal: alice(), Config: syncthingConfig("A")}); code != 200 {
		t.Fatalf("update: %d %s", code, body)
	}
	if _, err := r.db.Pool.Exec(ctx, "INSERT INTO job_state (job_id, last_state, last_seq) VALUES ('5000', 'FAILURE', 3)"); err != nil {
		t.Fatal(err)
	}
	code, body := r.call("syncthing", iapps.OpUpdate, iapps.UpdateRequest{Principal: alice(), Config: syncthingConfig("B")})
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "try again") {
		t.Fatalf("update of an ended job: %d %s", code, body)
	}
	if got := r.retrieve("syncthing", alice()); got.ETag != iapps.InitialETag {
		t.Fatalf("ended job's config still served: %+v", got)
	}
	if code, body := r.call("syncthing", iapps.OpUpdate, iapps.UpdateRequest{Principal: alice(), Config: syncthingConfig("B")}); code != 200 {
		t.Fatalf("retry: %d %s", code, body)
	}
	if n := len(r.core.Registered()); n != 2 {
		t.Fatalf("%d registrations, want a fresh one for the retry (2)", n)
	}
}

// With the apiserver unreachable: an update is stored (the monitor applies it later) and restart, which
// must delete a pod, answers 503.
func TestKubernetesOutage(t *testing.T) {
	r := newRig(t)
	cfg := rest.CopyConfig(env.Config)
	cfg.Host = "https://127.0.0.1:1"
	cfg.Timeout = 2e9
	down, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.svc.Kube = down
	if code, body := r.call("syncthing", iapps.OpUpdate, iapps.UpdateRequest{Principal: alice(), Config: syncthingConfig("A")}); code != 200 {
		t.Fatalf("update with the cluster down: %d %s", code, body)
	}
	if got := r.retrieve("syncthing", alice()); !strings.Contains(string(got.Config), `"A"`) {
		t.Fatalf("update lost: %s", got.Config)
	}
	code, body := r.call("syncthing", iapps.OpRestart, iapps.RestartRequest{Principal: alice()})
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "cluster is unavailable") {
		t.Fatalf("restart with the cluster down: %d %s", code, body)
	}
}

// With the database down every operation answers 503 with a reason.
func TestDatabaseOutage(t *testing.T) {
	r := newRig(t)
	// A pool whose server is gone: every connection attempt is refused.
	dead, err := pgxpool.New(context.Background(), fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable&connect_timeout=2", envtest.FreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	r.svc.Store.Pool = dead
	for _, op := range []iapps.Op{iapps.OpRetrieve, iapps.OpUpdate, iapps.OpReset, iapps.OpRestart} {
		code, body := r.call("syncthing", op, iapps.UpdateRequest{Principal: alice(), Config: syncthingConfig("A")})
		if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "database is unavailable") {
			t.Errorf("%s with the database down: %d %s", op, code, body)
		}
	}
}
