package jobs_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// core2Create is core2's own jobs.create body (one JupyterLab job, nine parameters, 18.5 KB).
func core2Create(b *testing.B) []byte {
	raw, err := os.ReadFile("../../test/conformance/testdata/core-requests/jobs.create.json")
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkDecodeCore2Create is the anchor: decoding the request job-create must decode anyway.
func BenchmarkDecodeCore2Create(b *testing.B) {
	raw := core2Create(b)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		var req ucloud.BulkRequest[ucloud.Job]
		if err := json.Unmarshal(raw, &req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolveAndBuildCore2Job is what the job's container costs on top: the resolved application
// with the user's parameters to a container, and the job's objects built from it.
func BenchmarkResolveAndBuildCore2Job(b *testing.B) {
	var req ucloud.BulkRequest[ucloud.Job]
	if err := json.Unmarshal(core2Create(b), &req); err != nil {
		b.Fatal(err)
	}
	job := req.Items[0]
	p := jobs.Product{ID: "u1-standard-4", Category: "u1-standard", CPU: 4, MemoryGiB: 16}
	for b.Loop() {
		app, err := jobs.ResolveApplication(job, jobs.WorkFolders(job))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := jobs.MakeObjects(job, p, app, jobs.Settings{Namespace: "jobs"}); err != nil {
			b.Fatal(err)
		}
	}
}
