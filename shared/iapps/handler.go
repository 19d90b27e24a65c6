// Package iapps is the integrated-application framework: the App interface (one integrated application) and its
// registry, the configuration store (PostgreSQL, ETag compare-and-swap in SQL, exactly-once registration of
// the application's job with Core), a retrieve cache kept coherent across instances with LISTEN/NOTIFY,
// and the reconcile step that makes the rank-0 pod match the stored configuration.
package iapps

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Key identifies one instance of an application: the application and its owner. Project is "" for a
// personal workspace.
type Key struct {
	App       string
	CreatedBy string
	Project   string
}

// KeyOf is the key of app for a Core principal.
func KeyOf(app string, owner ucloud.ResourceOwner) Key {
	k := Key{App: app, CreatedBy: owner.CreatedBy}
	if owner.Project != nil {
		k.Project = *owner.Project
	}
	return k
}

// Job is what an App knows of the job it builds objects for.
type Job struct {
	ID        string
	Key       Key
	ETag      string
	Namespace string
}

// Objects are the Kubernetes objects of an application's rank 0. The pod owns the others, so deleting it
// (restart, reconfiguration) removes them too.
type Objects struct {
	Pod       *corev1.Pod
	ConfigMap *corev1.ConfigMap
	Services  []*corev1.Service
	Policy    *networkingv1.NetworkPolicy
}

// App is one integrated application.
type App interface {
	// Name is the application's name in Core's paths: /ucloud/{provider}/iapps/{app}/...
	Name() string
	// Default is the configuration before the user sets any.
	Default() json.RawMessage
	// Validate checks a configuration as Core sends it and returns it normalised; its errors are
	// *ValidationError naming the field.
	Validate(raw json.RawMessage) (json.RawMessage, error)
	// Reset is the configuration after a reset.
	Reset(current json.RawMessage) json.RawMessage
	// ShouldRun says whether the application's pod should exist with cfg, last changed at changed.
	ShouldRun(cfg json.RawMessage, changed time.Time) bool
	// JobSpec is the job registered with Core for the application.
	JobSpec(provider string) ucloud.JobSpecification
	// MakeObjects makes the rank-0 objects for job with cfg.
	MakeObjects(job Job, cfg json.RawMessage) (Objects, error)
}

// ValidationError says which field of a configuration is wrong and why.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("Invalid configuration: %s %s.", e.Field, e.Reason)
}

// Registry holds the applications by name.
type Registry struct {
	handlers map[string]App
}

// NewRegistry registers handlers; a duplicate name is a programming error.
func NewRegistry(handlers ...App) *Registry {
	r := &Registry{handlers: map[string]App{}}
	for _, h := range handlers {
		if _, dup := r.handlers[h.Name()]; dup {
			panic("iapps: two handlers named " + h.Name())
		}
		r.handlers[h.Name()] = h
	}
	return r
}

// Lookup finds the handler of app.
func (r *Registry) Lookup(app string) (App, bool) {
	h, ok := r.handlers[app]
	return h, ok
}

// Names lists the registered applications, sorted.
func (r *Registry) Names() []string {
	var names []string
	for n := range r.handlers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
