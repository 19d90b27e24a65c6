package jobs

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// The job calls Core makes that need nothing of the cluster, each answered as the original Kubernetes IM
// answers it for container jobs (its integrations/k8s and controller packages at the UCloud commit of
// test/conformance), except where noted. openTerminalInFolder is config-update's (shared/iapps), which owns
// the terminal's configuration. Every body is decoded first, so a malformed one is a 400.

// jobItem is an item of suspend and unsuspend.
type jobItem struct {
	Job ucloud.Job `json:"job"`
}

// resourceRequest is attachResource's and detachResource's body.
type resourceRequest struct {
	Job      ucloud.Job      `json:"job"`
	Resource json.RawMessage `json:"resource"`
}

// dynamicParametersRequest is requestDynamicParameters' body: who is about to start the application.
type dynamicParametersRequest struct {
	Owner       ucloud.ResourceOwner `json:"owner"`
	Application json.RawMessage      `json:"application"`
}

type dynamicParameters struct {
	Parameters []json.RawMessage `json:"parameters"`
}

// otherCalls are the handlers of the job calls this IM answers without acting, by their path in the
// provider API's path table.
func (s *Service) otherCalls() map[string]http.Handler {
	hs := map[string]http.Handler{}
	// Core asks every provider the user can use on each application's Create page, and shows an error when
	// all of them fail. The original adds one parameter of its own (the job report's sample rate, a
	// feature this IM does not have); with none to add it answers an empty list, as here.
	hs["{provider}/jobs/requestDynamicParameters"] = fn.MaxBody(ApplicationCallMaxBody, s.provider(fn.Handle(
		func(ctx context.Context, r *http.Request, req dynamicParametersRequest) (dynamicParameters, error) {
			return dynamicParameters{Parameters: []json.RawMessage{}}, nil
		})))

	// The original's container backend has no suspension: it answers 200 and does nothing, so the user is
	// told the job is suspended while it runs on. This IM refuses instead, as the original refuses the
	// other operations its backend lacks (attach/detach: 400 "unsupported operation"), and claims no
	// suspension in retrieveProducts, so UCloud's web UI offers no such button.
	for _, op := range []string{"suspend", "unsuspend"} {
		hs["{provider}/jobs/"+op] = s.jobCall(fn.Handle(
			func(ctx context.Context, r *http.Request, req ucloud.BulkRequest[jobItem]) (ucloud.BulkResponse[struct{}], error) {
				return ucloud.BulkResponse[struct{}]{}, fn.Errorf(http.StatusBadRequest, "SUSPEND_NOT_SUPPORTED",
					"This provider runs containers, which cannot be suspended or resumed; stop the job instead.")
			}))
	}

	// Labels change nothing this IM made (pods carry the IM's own labels, not the user's), so they are
	// accepted as the original accepts them for container jobs (no handler of its own: it only records the
	// job).
	hs["{provider}/jobs/onUpdatedLabels"] = s.jobCall(fn.Handle(
		func(ctx context.Context, r *http.Request, req ucloud.BulkRequest[ucloud.Job]) (struct{}, error) {
			return struct{}{}, nil
		}))

	// The original's container backend cannot add or remove a resource of a running job: 400.
	for _, op := range []string{"attachResource", "detachResource"} {
		hs["{provider}/jobs/"+op] = s.jobCall(fn.Handle(
			func(ctx context.Context, r *http.Request, req resourceRequest) (struct{}, error) {
				return struct{}{}, fn.Errorf(http.StatusBadRequest, "RESOURCE_CHANGE_NOT_SUPPORTED",
					"Resources cannot be attached to or detached from a running job at this provider; start a new job with them.")
			}))
	}
	return hs
}
