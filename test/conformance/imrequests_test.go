package conformance_test

import (
	"context"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/conformance"
)

// What the IM sends to Core must decode into core2's types, not only into the fake Core's (which decodes
// strictly against the project's own types): every request the IM made while serving Core's calls and
// reporting a job is checked against core2's request type, and GET queries against what core2 reads.
func TestIMRequestsFitCore2(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()

	// A Syncthing update registers the application's job (auth.providers.refresh, jobs.control.register).
	r.fits(r.send(r.fixture("iapps.syncthing.update")))
	// A job created through Core is reported and read back.
	r.fits(r.send(r.fixture("jobs.create")))
	running := ucloud.StateRunning
	status := "The job is running"
	if err := r.client.UpdateJobs(ctx, []ucloud.ResourceUpdateAndID[ucloud.JobUpdate]{{ID: fixtureJob,
		Update: ucloud.JobUpdate{State: &running, Status: &status, Timestamp: time.Now().UnixMilli()}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.client.RetrieveJob(ctx, fixtureJob); err != nil {
		t.Fatal(err)
	}
	if _, err := r.client.FindJobByProviderID(ctx, "syncthing-nobody"); err != nil {
		t.Fatal(err)
	}

	seen := map[string]bool{}
	for _, s := range r.toCore.requests() {
		c, ok := providerCall(r.ref, s.Method, s.Path)
		if !ok {
			t.Errorf("the IM calls %s %s, which is not a core2 call in the reference", s.Method, s.Path)
			continue
		}
		seen[c.Name] = true
		if c.Method == "GET" {
			if bad := conformance.Only(conformance.CheckQuery(c, s.Query), conformance.Mismatch, conformance.Unknown); len(bad) > 0 {
				t.Errorf("%s?%s does not fit core2's %s: %v", s.Path, s.Query.Encode(), c.RequestType, bad)
			}
		} else {
			r.check(c.Name+" request", c.RequestType, s.Body)
		}
		// The fake Core stands in for core2, so what it answers must be what core2 would.
		if s.Status/100 == 2 {
			r.check("fake Core's "+c.Name+" answer", c.ResponseType, s.Answer)
		}
	}
	for _, c := range r.ref.ProviderToCore {
		if !seen[c.Name] {
			t.Errorf("the IM never made %s here, so it is not checked", c.Name)
		}
	}
}

func providerCall(ref *conformance.Reference, method, path string) (conformance.Call, bool) {
	for _, c := range ref.ProviderToCore {
		if c.Method == method && c.Path == path {
			return c, true
		}
	}
	return conformance.Call{}, false
}
