package ucloud_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// clock is a settable time source for token-expiry decisions.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func setup(t *testing.T, o ucloud.ClientOptions) (*fakecore.Core, *ucloud.Client) {
	t.Helper()
	core := fakecore.Start(t)
	if o.BackoffBase == 0 {
		o.BackoffBase = time.Millisecond
	}
	c, err := core.Client(o)
	if err != nil {
		t.Fatal(err)
	}
	return core, c
}

func update(id string, state ucloud.JobState) []ucloud.ResourceUpdateAndID[ucloud.JobUpdate] {
	status := "Your job is now running."
	return []ucloud.ResourceUpdateAndID[ucloud.JobUpdate]{{ID: id, Update: ucloud.JobUpdate{State: &state, Status: &status, Timestamp: time.Now().UnixMilli()}}}
}

func TestAccessTokenIsCachedAndRenewedOnlyNearExpiry(t *testing.T) {
	clk := &clock{now: time.Now()}
	core, c := setup(t, ucloud.ClientOptions{Now: clk.Now})
	ctx := context.Background()
	for range 3 {
		if err := c.UpdateJobs(ctx, update("1", ucloud.StateRunning)); err != nil {
			t.Fatal(err)
		}
	}
	if n := core.Refreshes(); n != 1 {
		t.Fatalf("%d refreshes for 3 calls with a fresh token, want 1", n)
	}
	clk.Advance(6 * time.Minute) // 4 of the fake's 10 minutes remain: still more than 3
	if err := c.UpdateJobs(ctx, update("1", ucloud.StateRunning)); err != nil {
		t.Fatal(err)
	}
	if n := core.Refreshes(); n != 1 {
		t.Fatalf("renewed with 4 minutes left (%d refreshes)", n)
	}
	clk.Advance(2 * time.Minute) // 2 minutes remain
	if err := c.UpdateJobs(ctx, update("1", ucloud.StateRunning)); err != nil {
		t.Fatal(err)
	}
	if n := core.Refreshes(); n != 2 {
		t.Fatalf("not renewed with 2 minutes left (%d refreshes)", n)
	}
	if got := len(core.Updates()); got != 5 {
		t.Fatalf("Core received %d updates, want 5", got)
	}
}

func TestRetriesServerErrorsButNeverClientErrors(t *testing.T) {
	core, c := setup(t, ucloud.ClientOptions{MaxAttempts: 4})
	ctx := context.Background()
	core.Fail("/api/jobs/control/update", http.StatusBadGateway, 2)
	if err := c.UpdateJobs(ctx, update("7", ucloud.StateSuccess)); err != nil {
		t.Fatalf("two 502s then success: %v", err)
	}
	if n := core.Calls("/api/jobs/control/update"); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}

	core.Fail("/api/jobs/control/update", http.StatusBadRequest, 1)
	err := c.UpdateJobs(ctx, update("8", ucloud.StateSuccess))
	var se *ucloud.StatusError
	if !errors.As(err, &se) || se.Status != 400 {
		t.Fatalf("400: got %v, want a StatusError 400", err)
	}
	if n := core.Calls("/api/jobs/control/update"); n != 4 {
		t.Fatalf("a 400 was retried (%d attempts in all, want 4)", n)
	}

	core.Fail("/api/jobs/control/update", http.StatusServiceUnavailable, 10)
	err = c.UpdateJobs(ctx, update("9", ucloud.StateSuccess))
	if !errors.Is(err, ucloud.ErrUnavailable) {
		t.Fatalf("Core down: got %v, want ErrUnavailable", err)
	}
	if n := core.Calls("/api/jobs/control/update"); n != 8 {
		t.Fatalf("%d attempts in all, want 8 (4 per call)", n)
	}
}

func TestAttemptTimeoutRetriesAndCancellationStops(t *testing.T) {
	core, c := setup(t, ucloud.ClientOptions{AttemptTimeout: 200 * time.Millisecond, MaxAttempts: 3})
	core.Stall("/api/jobs/control/update", 2*time.Second, 1)
	if err := c.UpdateJobs(context.Background(), update("1", ucloud.StateRunning)); err != nil {
		t.Fatalf("one stalled attempt then success: %v", err)
	}
	core.Stall("/api/jobs/control/update", 5*time.Second, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := c.UpdateJobs(ctx, update("2", ucloud.StateRunning))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled call: %v, want context.DeadlineExceeded", err)
	}
	if time.Since(began) > 2*time.Second {
		t.Fatalf("cancelled call returned after %s", time.Since(began))
	}
}

func TestRegisterAndRetrieve(t *testing.T) {
	core, c := setup(t, ucloud.ClientOptions{})
	ctx := context.Background()
	owner := "alice#1234"
	ids, err := c.RegisterJobs(ctx, []ucloud.ProviderRegisteredResource[ucloud.JobSpecification]{{
		Spec: ucloud.JobSpecification{
			Product:     ucloud.ProductReference{ID: "syncthing", Category: "syncthing", Provider: "k8s"},
			Application: ucloud.NameAndVersion{Name: "syncthing", Version: "latest"},
			Replicas:    1, Parameters: map[string]ucloud.AppParameterValue{}, Resources: []ucloud.AppParameterValue{},
		},
		CreatedBy: &owner,
	}})
	if err != nil || len(ids) != 1 || ids[0].ID == "" {
		t.Fatalf("register: %v %v", ids, err)
	}
	job, err := c.RetrieveJob(ctx, ids[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if job.Owner.CreatedBy != owner || job.Specification.Product.ID != "syncthing" {
		t.Fatalf("retrieved %+v", job)
	}
	_, err = c.RetrieveJob(ctx, "999999")
	var se *ucloud.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusNotFound {
		t.Fatalf("unknown job: %v, want 404", err)
	}
	if v := core.Violations(); len(v) != 0 {
		t.Fatalf("wire violations: %v", v)
	}
}

func TestWrongRefreshTokenIsAClearError(t *testing.T) {
	_, c := setup(t, ucloud.ClientOptions{})
	bad, err := ucloud.NewClient(ucloud.ClientOptions{BaseURL: c.BaseURL(), RefreshToken: func() (string, error) { return "wrong", nil }})
	if err != nil {
		t.Fatal(err)
	}
	err = bad.UpdateJobs(context.Background(), update("1", ucloud.StateRunning))
	var se *ucloud.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		t.Fatalf("wrong refresh token: %v, want a 401 StatusError", err)
	}
}
