package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/appsession"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/shellsession"
	"github.com/ucloud-im/knative-im/shared/tracing"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Service carries out Core's job calls against the cluster.
type Service struct {
	Provider string
	Catalog  *Catalog
	Kube     kubernetes.Interface
	Settings Settings
	// AppsDomain is the wildcard application domain (apps.example.org).
	AppsDomain string
	// Apps routes the application domain to web ranks (nil: the job function does not expose them), and
	// Sessions signs the one-time tokens of interactive sessions.
	Apps     *appdomain.Apps
	Sessions *appsession.Sessions
	// Core receives what the provider itself changes in a job (extend's new allocation); nil: not told.
	Core JobUpdater
	// Shells issues shell sessions; nil: SHELL sessions are refused. ShellURL is the provider's public
	// WebSocket base (wss://...), where the browser opens them.
	Shells   *shellsession.Store
	ShellURL string
}

// JobUpdater sends job updates to Core (the Core client).
type JobUpdater interface {
	UpdateJobs(ctx context.Context, items []ucloud.ResourceUpdateAndID[ucloud.JobUpdate]) error
}

// ErrConflict is an object of the job's name that was not made for this job.
var ErrConflict = errors.New("an object with this job's name already exists and differs")

// Create makes every job's objects; it is safe to repeat (Core retries), and one job's failure does not
// undo the others. The result has one entry per job, in order: nil on success.
func (s *Service) Create(ctx context.Context, jobs []ucloud.Job) []error {
	out := make([]error, len(jobs))
	for i, job := range jobs {
		out[i] = s.createOne(ctx, job)
	}
	return out
}

func (s *Service) createOne(ctx context.Context, job ucloud.Job) error {
	if job.ID == "" || !validJobID(job.ID) {
		return fn.Errorf(http.StatusBadRequest, "BAD_JOB_ID", "Job id %q is not valid: it must be letters and digits.", job.ID)
	}
	p, ok := s.Catalog.Product(job.Specification.Product)
	if !ok {
		return fn.Errorf(http.StatusBadRequest, "UNKNOWN_PRODUCT", "This provider has no product %s/%s.", job.Specification.Product.Category, job.Specification.Product.ID)
	}
	app, err := ResolveApplication(job, WorkFolders(job))
	if err != nil {
		return err
	}
	objs, err := MakeObjects(job, p, app, s.Settings)
	if err != nil {
		return fn.Wrap(err, http.StatusBadRequest, "BAD_JOB", "The job cannot be started: "+err.Error()+".")
	}
	charge, err := s.Catalog.Charge(job, s.Provider)
	if err != nil {
		return fn.Wrap(err, http.StatusBadRequest, "UNKNOWN_PRODUCT", "The job cannot be charged: "+err.Error()+".")
	}
	for _, pod := range objs.Pods {
		charge.Annotate(pod.Annotations)
		// The monitor's event about this job comes from a pod change: the create's trace goes with the pod.
		tracing.Annotate(ctx, pod.Annotations)
	}
	ns := s.Settings.Namespace
	pods := s.Kube.CoreV1().Pods(ns)
	// Rank 0 first: it owns everything else, so a crash part-way leaves objects that either belong to it
	// (and a retry completes them) or nothing at all.
	rank0, err := ensure(ctx, objs.Pods[0], pods.Create, pods.Get)
	if err != nil {
		return jobError(job.ID, err)
	}
	if err := s.expose(ctx, job.ID, 0, rank0, app); err != nil {
		return err
	}
	owner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: rank0.Name, UID: rank0.UID}}
	objs.Service.OwnerReferences = owner
	objs.Policy.OwnerReferences = owner
	svcs := s.Kube.CoreV1().Services(ns)
	if _, err := ensure(ctx, objs.Service, svcs.Create, svcs.Get); err != nil {
		return jobError(job.ID, err)
	}
	pols := s.Kube.NetworkingV1().NetworkPolicies(ns)
	if _, err := ensure(ctx, objs.Policy, pols.Create, pols.Get); err != nil {
		return jobError(job.ID, err)
	}
	for i, pod := range objs.Pods[1:] {
		pod.OwnerReferences = owner
		made, err := ensure(ctx, pod, pods.Create, pods.Get)
		if err != nil {
			return jobError(job.ID, err)
		}
		if err := s.expose(ctx, job.ID, i+1, made, app); err != nil {
			return err
		}
	}
	return nil
}

// expose routes the rank's web interface, if the application has one.
func (s *Service) expose(ctx context.Context, jobID string, rank int, pod *corev1.Pod, app Application) error {
	if s.Apps == nil || app.WebPort == 0 {
		return nil
	}
	if err := s.Apps.Expose(ctx, pod, jobID, rank, app.WebPort); err != nil {
		if errors.Is(err, appdomain.ErrTaken) {
			err = fmt.Errorf("%w: %w", ErrConflict, err)
		}
		return jobError(jobID, err)
	}
	return nil
}

// ensure creates obj; an existing object of that name is success when it was built from the same
// specification (a retry) and ErrConflict otherwise.
func ensure[T metav1.Object](ctx context.Context, obj T,
	create func(context.Context, T, metav1.CreateOptions) (T, error),
	get func(context.Context, string, metav1.GetOptions) (T, error)) (T, error) {
	return kube.Ensure(ctx, obj, create, get, func(existing T) bool {
		return existing.GetAnnotations()[AnnotationSpecHash] == obj.GetAnnotations()[AnnotationSpecHash] && existing.GetDeletionTimestamp() == nil
	}, ErrConflict)
}

// Terminate deletes everything the job has. The monitor sees the pods go and reports the final state; when
// the job has no pods (deleted by hand, never made, or the provider lost them) no pod will go, so Core is
// told the job ended here, once: expectedDifferentState makes Core ignore it when it already holds that
// state, and Core never moves a job out of a final state.
func (s *Service) Terminate(ctx context.Context, job ucloud.Job) error {
	ns := s.Settings.Namespace
	sel := metav1.ListOptions{LabelSelector: kube.LabelJobID + "=" + job.ID}
	pods, err := s.Kube.CoreV1().Pods(ns).List(ctx, sel)
	if err != nil {
		return jobError(job.ID, err)
	}
	grace := int64(1)
	if err := s.Kube.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &grace}, sel); err != nil {
		return jobError(job.ID, err)
	}
	if err := s.Kube.CoreV1().Services(ns).Delete(ctx, kube.ServiceName(job.ID), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return jobError(job.ID, err)
	}
	if err := s.Kube.NetworkingV1().NetworkPolicies(ns).Delete(ctx, kube.PolicyName(job.ID), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return jobError(job.ID, err)
	}
	if s.Apps != nil {
		if err := s.Apps.Remove(ctx, job.ID); err != nil {
			return jobError(job.ID, err)
		}
	}
	if len(pods.Items) > 0 {
		return nil
	}
	success, different := ucloud.StateSuccess, true
	why := "The job was terminated; it had no running containers left at the provider."
	return s.tellCore(ctx, job.ID, ucloud.JobUpdate{State: &success, ExpectedDifferentState: &different, Status: &why}, "terminated")
}

// tellCore sends Core one update of a job the provider itself changed (what, for the user: "extended"); no Core
// configured is nothing to tell. The change is already made, so a failure asks Core to repeat the call, which
// is safe.
func (s *Service) tellCore(ctx context.Context, jobID string, u ucloud.JobUpdate, what string) error {
	if s.Core == nil {
		return nil
	}
	u.Timestamp = time.Now().UnixMilli()
	if err := s.Core.UpdateJobs(ctx, []ucloud.ResourceUpdateAndID[ucloud.JobUpdate]{{ID: jobID, Update: u}}); err != nil {
		return fn.Wrap(err, http.StatusBadGateway, "CORE_UNAVAILABLE", "The job was "+what+", but UCloud could not be told. Please try again.")
	}
	return nil
}

// ExtendRequest is one item of jobs/extend.
type ExtendRequest struct {
	Job           ucloud.Job            `json:"job"`
	RequestedTime ucloud.SimpleDuration `json:"requestedTime"`
}

// Extend raises the job's time allocation to Core's current allocation plus the requested time and tells
// Core the new allocation (jobs.control.update newTimeAllocation), as the original IM does. It is computed
// from the job Core sends, not added to what the pods say, so a retried call extends once. A job without
// an allocation runs unlimited and stays so: nothing changes and nothing is reported.
func (s *Service) Extend(ctx context.Context, req ExtendRequest) error {
	extra := req.RequestedTime.Milliseconds()
	if extra <= 0 {
		return fn.Errorf(http.StatusBadRequest, "BAD_EXTENSION", "The requested extension must be positive.")
	}
	ta := req.Job.Specification.TimeAllocation
	if ta == nil {
		return nil
	}
	allocation := ta.Milliseconds() + extra
	pods, err := s.Kube.CoreV1().Pods(s.Settings.Namespace).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelJobID + "=" + req.Job.ID})
	if err != nil {
		return jobError(req.Job.ID, err)
	}
	if len(pods.Items) == 0 {
		return fn.Errorf(http.StatusNotFound, "JOB_NOT_FOUND", "Job %s is not running at this provider.", req.Job.ID)
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, AnnotationTimeAllocation, strconv.FormatInt(allocation, 10))
	for _, p := range pods.Items {
		if _, err := s.Kube.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return jobError(req.Job.ID, err)
		}
	}
	// The pods already have the new allocation; Core's retry of the call computes the same value.
	return s.tellCore(ctx, req.Job.ID, ucloud.JobUpdate{NewTimeAllocation: &allocation}, "extended")
}

// SessionRequest is one item of jobs/interactiveSession.
type SessionRequest struct {
	Job         ucloud.Job `json:"job"`
	Rank        int        `json:"rank"`
	SessionType string     `json:"sessionType"`
	Target      *string    `json:"target"`
}

// OpenSession answers a web session with the job's address on the wildcard application domain.
func (s *Service) OpenSession(req SessionRequest) (ucloud.OpenSession, error) {
	if req.SessionType != "WEB" {
		return ucloud.OpenSession{}, fn.Errorf(http.StatusBadRequest, "SESSION_NOT_SUPPORTED", "%s sessions are not supported by this provider; open the web interface instead.", req.SessionType)
	}
	if req.Rank < 0 || req.Rank >= max(req.Job.Specification.Replicas, 1) {
		return ucloud.OpenSession{}, fn.Errorf(http.StatusBadRequest, "BAD_RANK", "Job %s has no rank %d.", req.Job.ID, req.Rank)
	}
	if webPort(req.Job) == 0 {
		return ucloud.OpenSession{}, fn.Errorf(http.StatusBadRequest, "NO_WEB_INTERFACE", "%s has no web interface.", req.Job.Specification.Application.Name)
	}
	if s.Sessions == nil {
		return ucloud.OpenSession{}, fn.Errorf(http.StatusInternalServerError, "NO_GATEWAY_KEY", "This provider cannot open web sessions: its gateway key is not configured.")
	}
	host := appdomain.AppHost(req.Job.ID, req.Rank, s.AppsDomain)
	tok, err := s.Sessions.IssueToken(host)
	if err != nil {
		return ucloud.OpenSession{}, err
	}
	// The original's private link: the browser lands on the app's own host, which trades the one-time
	// token for a cookie of that host and redirects to /.
	return ucloud.OpenSession{Type: "web", JobID: req.Job.ID, Rank: req.Rank,
		RedirectClientTo: "https://" + host + appdomain.AuthorizePath(s.Provider) + "?token=" + url.QueryEscape(tok)}, nil
}

// JobSupport says what a product supports (retrieveProducts).
type JobSupport struct {
	Product ucloud.ProductReference `json:"product"`
	Docker  DockerSupport           `json:"docker"`
}

// DockerSupport are the container features of a product, as core2 reads them
// (orchestrators.UniversalBackendSupport); core2 lets users do exactly what is claimed here.
type DockerSupport struct {
	Enabled       bool `json:"enabled"`
	Web           bool `json:"web"`
	VNC           bool `json:"vnc"`
	Logs          bool `json:"logs"`
	Terminal      bool `json:"terminal"`
	Peers         bool `json:"peers"`
	TimeExtension bool `json:"timeExtension"`
}

// Products lists what the catalogue offers. VNC is not claimed (nothing serves it). Peers are not claimed: a job's peer resources are not wired
// up (no host alias for the peer's hostname, and each job's network policy admits only its own pods), so
// test/conformance checks that a claimed flag works.
func (s *Service) Products() []JobSupport {
	out := make([]JobSupport, 0, len(s.Catalog.Products))
	for _, p := range s.Catalog.Products {
		out = append(out, JobSupport{
			Product: ucloud.ProductReference{ID: p.ID, Category: p.Category, Provider: s.Provider},
			// logs: job-streams serves Core's follow. terminal: only where shells can be issued.
			Docker: DockerSupport{Enabled: true, Web: true, TimeExtension: true, Logs: true, Terminal: s.Shells != nil && s.ShellURL != ""},
		})
	}
	return out
}

func validJobID(id string) bool {
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return len(id) <= 40
}

// jobError maps a Kubernetes failure of one job to what Core sees.
func jobError(jobID string, err error) error {
	switch {
	case errors.Is(err, ErrConflict):
		return fn.Wrap(err, http.StatusConflict, "JOB_CONFLICT", fmt.Sprintf("Job %s conflicts with a different job's objects already in the cluster.", jobID))
	case kube.IsUnavailable(err):
		return fn.Wrap(err, http.StatusServiceUnavailable, "CLUSTER_UNAVAILABLE", "The provider's cluster is unavailable. Please try again later.")
	case apierrors.IsForbidden(err):
		return fn.Wrap(err, http.StatusInternalServerError, "CLUSTER_FORBIDDEN", "The provider is not allowed to manage jobs in its cluster; its operator must fix its permissions.")
	case apierrors.IsInvalid(err):
		return fn.Wrap(err, http.StatusBadRequest, "INVALID_JOB", "The cluster refused the job: "+err.Error())
	}
	return fn.Wrap(err, http.StatusInternalServerError, "CLUSTER_ERROR", fmt.Sprintf("Job %s could not be handled by the cluster.", jobID))
}
