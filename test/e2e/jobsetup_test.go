package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/apps"
)

// gatewayKey writes a gateway key (UCLOUD_GATEWAY_KEY_FILE) for the named test and returns its file.
func gatewayKey(t *testing.T, test string) string {
	t.Helper()
	key := filepath.Join(t.TempDir(), "gateway.key")
	if err := os.WriteFile(key, []byte("a gateway key for the "+test+" test, long enough"), 0o600); err != nil {
		t.Fatal(err)
	}
	return key
}

// jobVars is what job-create, job-control and the monitor (monitor-0) of a job test share: monitorVars,
// the apps domain, and the variables kv (name, value, ...).
func jobVars(t *testing.T, s *stack, kv ...string) map[string]string {
	vars := withVar(withVar(monitorVars(t, s), "UCLOUD_APPS_DOMAIN", "apps.example.org"), "POD_NAME", "monitor-0")
	for i := 0; i+1 < len(kv); i += 2 {
		vars = withVar(vars, kv[i], kv[i+1])
	}
	return vars
}

// submitBatch creates a batch job of alice#1 with replicas ranks through job-create (at createURL), as
// Core does, and returns it as sent.
func submitBatch(ctx context.Context, t *testing.T, s *stack, createURL, id string, replicas int) ucloud.Job {
	t.Helper()
	j := ucloud.Job{ID: id, CreatedAt: time.Now().UnixMilli(), Owner: ucloud.ResourceOwner{CreatedBy: "alice#1"},
		Specification: ucloud.JobSpecification{Product: ucloud.ProductReference{ID: "u1-standard-1", Category: "u1-standard", Provider: "k8s"},
			Replicas: replicas, Resources: []ucloud.AppParameterValue{}},
		Status: ucloud.JobStatus{State: ucloud.StateInQueue}, Updates: []ucloud.JobUpdate{}}
	apps.Load("batch").Apply(&j)
	call, err := s.core.CallProvider(ctx, createURL, http.MethodPost, "/ucloud/k8s/jobs", "alice#1", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{j}})
	if err != nil || call.Status != 200 {
		t.Fatalf("create %s: %+v %v", id, call, err)
	}
	return j
}
