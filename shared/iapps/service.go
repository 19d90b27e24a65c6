package iapps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"k8s.io/client-go/kubernetes"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// The request and response bodies of Core's iapp calls.
type (
	RetrieveRequest struct {
		ProductID string               `json:"productId"`
		Principal ucloud.ResourceOwner `json:"principal"`
	}
	UpdateRequest struct {
		ProductID    string               `json:"productId"`
		Principal    ucloud.ResourceOwner `json:"principal"`
		Config       json.RawMessage      `json:"config"`
		ExpectedETag *string              `json:"expectedETag"`
	}
	ResetRequest struct {
		ProductID    string               `json:"productId"`
		Principal    ucloud.ResourceOwner `json:"principal"`
		ExpectedETag *string              `json:"expectedETag"`
	}
	RestartRequest struct {
		ProductID string               `json:"productId"`
		Principal ucloud.ResourceOwner `json:"principal"`
	}
)

// Registrar registers provider-made jobs with Core and finds one it registered (the Core client).
type Registrar interface {
	RegisterJobs(ctx context.Context, items []ucloud.ProviderRegisteredResource[ucloud.JobSpecification]) ([]ucloud.FindByStringID, error)
	FindJobByProviderID(ctx context.Context, providerGeneratedID string) (*ucloud.Job, error)
}

// Service carries out the four operations. Core and Kube are needed only by the operations that use them.
type Service struct {
	Provider  string
	Registry  *Registry
	Store     *ConfigStore
	Cache     *Cache
	Core      Registrar
	Kube      kubernetes.Interface
	Namespace string
	// Access decides the owner's access to the folders a configuration mounts (needed by update and
	// reset: a configuration with folders and no Access is refused).
	Access Access
	// Terminal serves openTerminalInFolder beside update (TerminalOpener.Handler); nil refuses it with
	// 400 TERMINAL_NOT_SUPPORTED (no public URL: no browser could reach the shell).
	Terminal http.Handler
}

var errStale = fn.Errorf(http.StatusBadRequest, "ETAG_MISMATCH", "The configuration has changed since you last loaded the page. Please reload it and try again.")

func (s *Service) handler(app string) (App, error) {
	h, ok := s.Registry.Lookup(app)
	if !ok {
		return nil, fn.Errorf(http.StatusNotFound, "UNKNOWN_APPLICATION", "Unknown integrated application %q.", app)
	}
	return h, nil
}

func checkPrincipal(p ucloud.ResourceOwner) error {
	if p.CreatedBy == "" {
		return fn.Errorf(http.StatusBadRequest, "BAD_REQUEST", "Invalid request: principal.createdBy is required.")
	}
	return nil
}

// storeError maps storage failures to what the user sees.
func storeError(err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return fn.Wrap(err, http.StatusServiceUnavailable, "DATABASE_UNAVAILABLE", "The provider's database is unavailable. Please try again later.")
	}
	return err
}

// Retrieve answers the stored configuration and its ETag, or the default with ETag "initial" (storing nothing).
func (s *Service) Retrieve(ctx context.Context, app string, req RetrieveRequest) (Retrieved, error) {
	h, err := s.handler(app)
	if err != nil {
		return Retrieved{}, err
	}
	if err := checkPrincipal(req.Principal); err != nil {
		return Retrieved{}, err
	}
	key := KeyOf(app, req.Principal)
	if s.Cache != nil {
		if r, ok := s.Cache.Get(key); ok {
			return r, nil
		}
	}
	var ticket Ticket
	if s.Cache != nil {
		ticket = s.Cache.Begin()
	}
	rec, err := s.Store.Get(ctx, key)
	var out Retrieved
	switch {
	case err == nil && rec.Active():
		out = Retrieved{ETag: rec.ETag, Config: rec.Config}
	case err == nil || errors.Is(err, store.ErrNotFound):
		out = Retrieved{ETag: InitialETag, Config: h.Default()}
	default:
		return Retrieved{}, storeError(err)
	}
	if s.Cache != nil {
		s.Cache.Put(ticket, key, out)
	}
	return out, nil
}

// Update validates cfg, registers the application's job on the first update, stores cfg when the ETag
// matches, and applies it to the running job.
func (s *Service) Update(ctx context.Context, app string, req UpdateRequest) error {
	h, err := s.handler(app)
	if err != nil {
		return err
	}
	if err := checkPrincipal(req.Principal); err != nil {
		return err
	}
	if len(req.Config) == 0 || string(req.Config) == "null" {
		return fn.Errorf(http.StatusBadRequest, "INVALID_CONFIGURATION", "Invalid request: config is required.")
	}
	cfg, err := h.Validate(req.Config)
	if err != nil {
		return validationError(err)
	}
	// Before anything is registered or stored: a folder the owner may not use is refused (403 naming it).
	if err := checkAccess(ctx, s.Access, h, req.Principal, cfg); err != nil {
		return err
	}
	return s.store(ctx, h, KeyOf(app, req.Principal), cfg, req.ExpectedETag)
}

// Reset stores the handler's reset configuration, with the same ETag rule as Update. With nothing stored
// there is nothing to reset, and no job is registered for it.
func (s *Service) Reset(ctx context.Context, app string, req ResetRequest) error {
	h, err := s.handler(app)
	if err != nil {
		return err
	}
	if err := checkPrincipal(req.Principal); err != nil {
		return err
	}
	key := KeyOf(app, req.Principal)
	rec, err := s.Store.Get(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && !rec.Active()):
		if req.ExpectedETag != nil && *req.ExpectedETag != InitialETag {
			return errStale
		}
		return nil
	case err != nil:
		return storeError(err)
	}
	return s.store(ctx, h, key, h.Reset(rec.Config), req.ExpectedETag)
}

// Restart deletes the rank-0 pod; the monitor recreates it with the current configuration.
func (s *Service) Restart(ctx context.Context, app string, req RestartRequest) error {
	if _, err := s.handler(app); err != nil {
		return err
	}
	if err := checkPrincipal(req.Principal); err != nil {
		return err
	}
	rec, err := s.Store.Get(ctx, KeyOf(app, req.Principal))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !rec.Active()) {
		return fn.Errorf(http.StatusNotFound, "NOT_CONFIGURED", "%s has not been configured yet, so there is nothing to restart.", app)
	} else if err != nil {
		return storeError(err)
	}
	fn.WithJobID(ctx, rec.JobID)
	return kubeError(deleteRank0(ctx, s.Kube, s.Namespace, rec.JobID))
}

func (s *Service) store(ctx context.Context, h App, key Key, cfg json.RawMessage, expected *string) error {
	// Refuse a stale ETag before registering anything: with nothing stored only "initial" (or none) matches.
	rec, err := s.Store.Get(ctx, key)
	stored := false // cfg stored by the registration itself
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && !rec.Active()):
		if expected != nil && *expected != InitialETag {
			return errStale
		}
		if rec, stored, err = s.Store.Register(ctx, key, cfg, s.registerFunc(h, key)); err != nil {
			return registerError(err)
		}
	case err != nil:
		return storeError(err)
	}
	fn.WithJobID(ctx, rec.JobID)
	if ended, err := s.clearIfEnded(ctx, key, rec.JobID); err != nil {
		return err
	} else if ended {
		return fn.Errorf(http.StatusServiceUnavailable, "JOB_ENDED", "Internal error in %s: its job had ended and has been cleared. Please try again.", key.App)
	}
	if !stored {
		rec, err = s.Store.CompareAndSwap(ctx, key, cfg, expected)
		if errors.Is(err, ErrStaleETag) {
			return errStale
		} else if err != nil {
			return storeError(err)
		}
	}
	// The configuration is stored: the call has succeeded. Applying it now spares the user the monitor's
	// next pass; when the cluster cannot be reached, the monitor applies it later from the stored row.
	if res, err := Reconcile(ctx, s.Kube, s.Namespace, h, rec, s.Access); err != nil {
		fn.Log(ctx).Warn("configuration stored but not applied yet; the monitor will apply it", "err", err.Error())
	} else {
		fn.Log(ctx).Info("configuration applied", "outcome", string(res.Outcome), "etag", rec.ETag)
	}
	return nil
}

func (s *Service) registerFunc(h App, key Key) func(ctx context.Context, intent string) (string, error) {
	return func(ctx context.Context, intent string) (string, error) {
		createdBy := key.CreatedBy
		ids, err := s.Core.RegisterJobs(ctx, []ucloud.ProviderRegisteredResource[ucloud.JobSpecification]{{
			Spec: h.JobSpec(s.Provider), ProviderGeneratedID: &intent, CreatedBy: &createdBy,
		}})
		var refused *ucloud.StatusError
		if errors.As(err, &refused) && refused.Status == http.StatusConflict {
			// Core already holds a job under this intent: an earlier call registered it and its answer was
			// lost (a crash, a timeout). Core refuses a repeat, so adopt that job.
			job, ferr := s.Core.FindJobByProviderID(ctx, intent)
			switch {
			case ferr != nil:
				return "", fmt.Errorf("register %s: Core answered 409 and the job could not be found: %w", intent, ferr)
			case job == nil:
				return "", fmt.Errorf("register %s: %w, but Core lists no job with that provider id", intent, err)
			}
			return job.ID, nil
		}
		if err != nil {
			return "", err
		}
		return ids[0].ID, nil
	}
}

func validationError(err error) error {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return fn.Wrap(err, http.StatusBadRequest, "INVALID_CONFIGURATION", ve.Error())
	}
	return fn.Wrap(err, http.StatusBadRequest, "INVALID_CONFIGURATION", "Invalid configuration.")
}

func registerError(err error) error {
	var se *ucloud.StatusError
	if errors.Is(err, ucloud.ErrUnavailable) || errors.As(err, &se) {
		return fn.Wrap(err, http.StatusBadGateway, "CORE_UNAVAILABLE", "The application could not be registered with UCloud. Please try again later.")
	}
	return storeError(err)
}

// clearIfEnded deletes key's record when its job jobID was last reported in a final state (the monitor's
// job_state), so the next attempt registers a new job; it says whether it did.
func (s *Service) clearIfEnded(ctx context.Context, key Key, jobID string) (bool, error) {
	final, err := s.Store.JobFinal(ctx, jobID)
	if err != nil {
		return false, storeError(err)
	}
	if !final {
		return false, nil
	}
	if err := s.Store.Delete(ctx, key); err != nil {
		return false, storeError(err)
	}
	return true, nil
}
