package jobs

import (
	"context"
	"errors"
	"maps"
	"net/http"

	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/providerinfo"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Body limits of Core's job calls, from what core2 really sends (test/conformance/testdata/README.md).
const (
	// JobCallMaxBody bounds every call that carries whole jobs (create, terminate, extend,
	// interactiveSession, suspend, unsuspend, onUpdatedLabels, attach/detachResource). One job with one
	// replica and nine parameters is 18.5 KB, about 19 KB with its updates, and each further parameter adds
	// about 900 bytes (its value in the specification, again in jobParametersJson, and its definition in the
	// resolved application), long text values and application descriptions on top; Core also batches
	// several jobs into one terminate when a user selects many. 8 MiB takes a single job with some 9,000
	// parameters or over 400 jobs in one call, so no real job is refused, and it is read only after Core's
	// token is verified.
	JobCallMaxBody = 8 << 20
	// ApplicationCallMaxBody bounds requestDynamicParameters, which carries the owner and one resolved
	// application (6 KB with eight parameters, about 300 bytes per parameter): 1 MiB is some 3,000
	// parameters and long descriptions.
	ApplicationCallMaxBody = 1 << 20
)

// CreateRoutes serves job-create's call of the provider API's path table (appdomain.Calls): the jobs.
func (s *Service) CreateRoutes() http.Handler {
	mux := http.NewServeMux()
	appdomain.Serve(mux, appdomain.FnJobCreate, map[string]http.Handler{"{provider}/jobs": s.jobCall(fn.Handle(func(ctx context.Context, r *http.Request, req ucloud.BulkRequest[ucloud.Job]) (ucloud.BulkResponse[any], error) {
		for _, j := range req.Items {
			fn.WithJobID(ctx, j.ID)
		}
		return bulk(s.Create(ctx, req.Items), func(int) any { return nil })
	}))})
	return mux
}

// ControlRoutes serves job-control's calls of the provider API's path table (appdomain.Calls): every job
// call but create, and the provider-level calls Core polls beside jobs/retrieveProducts
// (shared/providerinfo): Core keeps this function warm with that poll.
func (s *Service) ControlRoutes() http.Handler {
	hs := providerinfo.Handlers(s.Provider)
	maps.Copy(hs, s.otherCalls())
	hs["{provider}/jobs/terminate"] = s.jobCall(fn.Handle(func(ctx context.Context, r *http.Request, req ucloud.BulkRequest[ucloud.Job]) (ucloud.BulkResponse[any], error) {
		errs := make([]error, len(req.Items))
		for i, j := range req.Items {
			errs[i] = s.Terminate(ctx, j)
		}
		return bulk(errs, func(int) any { return struct{}{} })
	}))
	hs["{provider}/jobs/extend"] = s.jobCall(fn.Handle(func(ctx context.Context, r *http.Request, req ucloud.BulkRequest[ExtendRequest]) (ucloud.BulkResponse[any], error) {
		errs := make([]error, len(req.Items))
		for i, it := range req.Items {
			errs[i] = s.Extend(ctx, it)
		}
		return bulk(errs, func(int) any { return struct{}{} })
	}))
	hs["{provider}/jobs/interactiveSession"] = s.jobCall(fn.Handle(func(ctx context.Context, r *http.Request, req ucloud.BulkRequest[SessionRequest]) (ucloud.BulkResponse[any], error) {
		sessions := make([]ucloud.OpenSession, len(req.Items))
		errs := make([]error, len(req.Items))
		for i, it := range req.Items {
			if it.SessionType == "SHELL" {
				sessions[i], errs[i] = s.OpenShell(ctx, it, coreUsername(r))
				continue
			}
			sessions[i], errs[i] = s.OpenSession(it)
		}
		return bulk(errs, func(i int) any { return sessions[i] })
	}))
	hs["{provider}/jobs/retrieveProducts"] = fn.MaxBody(providerinfo.NoBodyMax, s.provider(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fn.WriteJSON(w, http.StatusOK, ucloud.BulkResponse[JobSupport]{Responses: s.Products()})
	})))
	mux := http.NewServeMux()
	appdomain.Serve(mux, appdomain.FnJobControl, hs)
	return mux
}

func (s *Service) provider(next http.Handler) http.Handler { return fn.ForProvider(s.Provider, next) }

// jobCall is a route of a call carrying whole jobs.
func (s *Service) jobCall(next http.Handler) http.Handler {
	return fn.MaxBody(JobCallMaxBody, s.provider(next))
}

// bulk answers one entry per item, ok(i) for each, when every item succeeded. Core reads a bulk answer's
// entries as successes (it sends one item per call and takes responses[0] as done), so a failed item must
// fail the call: the answer is then the first failed item's status and UCloud error body, preferring a
// 503 (the cluster is unavailable) so Core retries. The other items were still carried out; every
// operation is safe to repeat, so Core's retry of the whole call completes them without doing any twice.
func bulk(errs []error, ok func(int) any) (ucloud.BulkResponse[any], error) {
	var first *fn.Error
	for _, err := range errs {
		if err == nil {
			continue
		}
		var e *fn.Error
		if !errors.As(err, &e) {
			e = fn.Wrap(err, http.StatusInternalServerError, "INTERNAL_ERROR", "Internal error in the provider. Please try again later.")
		}
		if first == nil || (e.Status == http.StatusServiceUnavailable && first.Status != http.StatusServiceUnavailable) {
			first = e
		}
	}
	if first != nil {
		return ucloud.BulkResponse[any]{}, first
	}
	resp := ucloud.BulkResponse[any]{Responses: make([]any, len(errs))}
	for i := range errs {
		resp.Responses[i] = ok(i)
	}
	return resp, nil
}
