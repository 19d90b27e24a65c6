package fakecore_test

import (
	"context"
	"testing"

	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// Core sends the job's resolved application with the job, and in jobs.control retrieve and browse only
// when asked for (includeApplication), as core2 does.
func TestJobsCarryTheirResolvedApplicationAsCore2SendsThem(t *testing.T) {
	core := fakecore.Start(t)
	job := fakecore.NewJob("77", ucloud.ResourceOwner{CreatedBy: "alice#1234"},
		ucloud.ProductReference{ID: "u1-standard-1", Category: "u1-standard", Provider: "k8s"}, "web", 1)
	app := job.Status.ResolvedApplication
	if app == nil || app.Metadata.Name != "rstudio" || job.Specification.Application != (ucloud.NameAndVersion{Name: "rstudio", Version: "2024.12.1"}) ||
		app.Invocation.Tool.Tool == nil || app.Invocation.Tool.Tool.Description.Image != "docker.io/rocker/rstudio:4.4.2" ||
		job.Specification.Parameters["threads"].Type != ucloud.ValueInteger {
		t.Fatalf("new job: %+v", job)
	}
	job.ProviderGeneratedID = "web-77"
	core.PutJob(job)
	client, err := core.Client(ucloud.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := client.RetrieveJob(ctx, "77") // includeApplication=true
	if err != nil || got.Status.ResolvedApplication == nil || got.Status.ResolvedApplication.Invocation.Web.Port != 8787 {
		t.Fatalf("retrieve with the application: %+v, %v", got, err)
	}
	found, err := client.FindJobByProviderID(ctx, "web-77") // no includeApplication
	if err != nil || found == nil || found.Status.ResolvedApplication != nil {
		t.Fatalf("browse without the application: %+v, %v", found, err)
	}
}
