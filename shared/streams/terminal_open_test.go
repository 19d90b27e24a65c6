package streams_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// A drive the user could edit when it joined the terminal, and may no longer: opening the terminal in
// another folder leaves it behind (the terminal would not run with it), in the same job.
func TestOpeningTheTerminalLeavesARevokedDriveBehind(t *testing.T) {
	r := newTerminalRig(t)
	shared := r.core.PersonalDrive("61", "carol#1")
	shared.Permissions.Others = []ucloud.ResourceAclEntry{{Entity: ucloud.AclEntity{Type: ucloud.AclUser, Username: "alice#1234"}, Permissions: []ucloud.Permission{"READ", "EDIT"}}}
	r.core.PutDrive(shared)
	first := r.session("alice#1234", "/61/Shared")
	r.core.SetDriveACL("61", nil)
	if status, body := r.openTerminal("alice#1234", "/61/Shared"); status != http.StatusForbidden {
		t.Fatalf("the revoked folder again: %d %s", status, body)
	}
	next := r.session("alice#1234", "/1/Home")
	var cfg string
	if err := r.owner.OwnerPool(t).QueryRow(context.Background(), "SELECT config::text FROM iapp_config WHERE app = 'terminal' AND created_by = 'alice#1234'").Scan(&cfg); err != nil {
		t.Fatal(err)
	}
	if next.JobID != first.JobID || cfg != `{"folders":["/1"]}` {
		t.Fatalf("job %s (first %s), configuration %s", next.JobID, first.JobID, cfg)
	}
}

// Eight opens of a fresh user's terminal at once (a user with several tabs, Core's retries): one job is
// registered with Core, and every session is for it.
func TestConcurrentOpensRegisterTheTerminalOnce(t *testing.T) {
	r := newTerminalRig(t)
	jobIDs := make(chan string, 8)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, body := r.openTerminal("alice#1234", fmt.Sprintf("/1/Tab%d", i))
			var resp ucloud.BulkResponse[ucloud.OpenSession]
			if status != http.StatusOK || json.Unmarshal(body, &resp) != nil || len(resp.Responses) != 1 {
				t.Errorf("open %d: %d %s", i, status, body)
				return
			}
			jobIDs <- resp.Responses[0].JobID
		}()
	}
	wg.Wait()
	close(jobIDs)
	seen := map[string]int{}
	for id := range jobIDs {
		seen[id]++
	}
	if reg := r.core.Registered(); len(reg) != 1 || len(seen) != 1 || seen[firstKey(seen)] != 8 {
		t.Fatalf("Core registered %d jobs; sessions per job %v", len(reg), seen)
	}
}

func firstKey(m map[string]int) string {
	for k := range m {
		return k
	}
	return ""
}

// A terminal whose job ended (the user stopped it in UCloud: Core's terminate, the monitor's SUCCESS) is
// cleared by the next open, in the same drive or another, and a new job is registered for it.
func TestOpeningAnEndedTerminalRegistersANewOne(t *testing.T) {
	r := newTerminalRig(t)
	r.core.PersonalDrive("3", "alice#1234") // another of alice's drives
	first := r.session("alice#1234", "/1/Home")
	for i, folder := range []string{"/1/Home", "/3/Elsewhere"} {
		jobID := jobIDOf(t, r)
		if i == 0 && jobID != first.JobID {
			t.Fatalf("stored job %s, opened %s", jobID, first.JobID)
		}
		// As the monitor records a job's end (the state it sent Core last).
		if _, err := r.owner.OwnerPool(t).Exec(context.Background(), `INSERT INTO job_state (job_id, last_state, last_seq) VALUES ($1, 'SUCCESS', 3)
			ON CONFLICT (job_id) DO UPDATE SET last_state = 'SUCCESS'`, jobID); err != nil {
			t.Fatal(err)
		}
		next := r.session("alice#1234", folder)
		if next.JobID == jobID || len(r.core.Registered()) != i+2 {
			t.Fatalf("open %s after job %s ended: job %s, %d registered", folder, jobID, next.JobID, len(r.core.Registered()))
		}
	}
}

// jobIDOf is alice's terminal's current job.
func jobIDOf(t *testing.T, r *terminalRig) string {
	t.Helper()
	var id string
	if err := r.owner.OwnerPool(t).QueryRow(context.Background(), "SELECT job_id FROM iapp_config WHERE app = 'terminal' AND created_by = 'alice#1234'").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}
