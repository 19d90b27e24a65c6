package fakecore

import (
	"net/url"
	"strconv"
	"time"

	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/apps"
)

// NewJob is a job as core2 sends it to a provider's create: owner, product, replicas, a one-hour
// allocation, the application's parameter values in the specification and, in the status, the
// application core2 resolved from its catalogue (JobCreate). This Core's catalogue is the application
// fixtures of test/apps, named by app (jupyter, batch, web, ...), each with the values of its fixture.
func NewJob(id string, owner ucloud.ResourceOwner, product ucloud.ProductReference, app string, replicas int) ucloud.Job {
	job := ucloud.Job{ID: id, CreatedAt: time.Now().UnixMilli(), Owner: owner,
		Specification: ucloud.JobSpecification{
			Product: product, Replicas: replicas, Resources: []ucloud.AppParameterValue{},
			TimeAllocation: &ucloud.SimpleDuration{Hours: 1},
		},
		Status: ucloud.JobStatus{State: ucloud.StateInQueue}, Updates: []ucloud.JobUpdate{}}
	apps.Load(app).Apply(&job)
	return job
}

// withFlags is job as core2's jobs.control retrieve and browse answer it: the resolved application only
// when the caller asks for it (includeApplication), as core2's jobsProcessFlags clears it otherwise.
func withFlags(job ucloud.Job, q url.Values) ucloud.Job {
	if include, _ := strconv.ParseBool(q.Get("includeApplication")); !include {
		job.Status.ResolvedApplication = nil
	}
	return job
}
