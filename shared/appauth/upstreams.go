package appauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/kube"
)

// Why a rank's traffic has nowhere to go.
var (
	ErrNoApp    = errors.New("no web interface of this job rank was made by the IM")
	ErrNotReady = errors.New("the web interface has no ready endpoint")
)

// Upstreams finds where a rank's traffic goes: its Service app-<job>-<rank> in the jobs namespace, and only
// when job-create made it (the IM's label, the job and rank labels, owned by a pod), so nothing another
// party names can become a target. Services come from an informer: no apiserver call per request.
type Upstreams struct {
	Kube      kubernetes.Interface
	Namespace string
	// Local (make run, tests) reaches a Service through its EndpointSlices, and only at an address on this
	// machine: loopback, or a name under .localhost (RFC 6761), which is how a local server is put behind
	// a Service (KWOK's pod addresses are made up; a request to one would leave the machine). Otherwise the
	// Service's cluster IP, which is what cluster DNS would answer for app-<job>-<rank>.<namespace>.svc.
	Local bool

	services corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister
	synced   []cache.InformerSynced
}

// Start fills the caches and keeps them current until ctx ends.
func (u *Upstreams) Start(ctx context.Context) error {
	onlyOurs := informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = appdomain.LabelManagedBy + "=" + appdomain.ManagedBy
	})
	sf := informers.NewSharedInformerFactoryWithOptions(u.Kube, 0, informers.WithNamespace(u.Namespace), onlyOurs)
	svc := sf.Core().V1().Services()
	u.services = svc.Lister()
	u.synced = append(u.synced, svc.Informer().HasSynced)
	sf.Start(ctx.Done())
	if u.Local {
		ef := informers.NewSharedInformerFactoryWithOptions(u.Kube, 0, informers.WithNamespace(u.Namespace))
		sl := ef.Discovery().V1().EndpointSlices()
		u.slices = sl.Lister()
		u.synced = append(u.synced, sl.Informer().HasSynced)
		ef.Start(ctx.Done())
	}
	if !cache.WaitForCacheSync(ctx.Done(), u.synced...) {
		return fmt.Errorf("app services in %s: caches did not sync", u.Namespace)
	}
	return nil
}

// Ready is the readiness check: the caches are filled.
func (u *Upstreams) Ready(context.Context) error {
	for _, s := range u.synced {
		if !s() {
			return errors.New("app services not synced yet")
		}
	}
	return nil
}

// Addr is host:port of the rank's web interface.
func (u *Upstreams) Addr(jobID string, rank int) (string, error) {
	name := appdomain.AppName(jobID, rank)
	svc, err := u.services.Services(u.Namespace).Get(name)
	if err != nil || !madeByIM(svc, jobID, rank) {
		return "", ErrNoApp
	}
	if u.Local {
		return u.localAddr(name)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return "", ErrNotReady
	}
	return net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(appdomain.ServicePort)), nil
}

func madeByIM(svc *corev1.Service, jobID string, rank int) bool {
	l := svc.Labels
	if l[appdomain.LabelManagedBy] != appdomain.ManagedBy || l[kube.LabelJobID] != jobID || l[kube.LabelRank] != strconv.Itoa(rank) {
		return false
	}
	owned := false
	for _, r := range svc.OwnerReferences {
		owned = owned || (r.Kind == "Pod" && r.APIVersion == "v1")
	}
	hasPort := false
	for _, p := range svc.Spec.Ports {
		hasPort = hasPort || p.Port == appdomain.ServicePort
	}
	return owned && hasPort
}

// localAddr resolves the Service's web port to a ready endpoint on this machine, by port name as
// kube-proxy does.
func (u *Upstreams) localAddr(name string) (string, error) {
	slices, err := u.slices.EndpointSlices(u.Namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name}))
	if err != nil {
		return "", err
	}
	remote := 0
	for _, s := range slices {
		for _, p := range s.Ports {
			if p.Port == nil || (p.Name != nil && *p.Name != "web") {
				continue
			}
			for _, e := range s.Endpoints {
				if (e.Conditions.Ready != nil && !*e.Conditions.Ready) || len(e.Addresses) == 0 {
					continue
				}
				addr := e.Addresses[0]
				if strings.HasSuffix(strings.ToLower(addr), ".localhost") {
					addr = "127.0.0.1"
				}
				if ip := net.ParseIP(addr); ip == nil || !ip.IsLoopback() {
					remote++
					continue
				}
				return net.JoinHostPort(addr, strconv.Itoa(int(*p.Port))), nil
			}
		}
	}
	if remote > 0 {
		return "", fmt.Errorf("%w: %s has only endpoints off this machine (%d; KWOK's pods run no processes): point it at a local server", ErrNotReady, name, remote)
	}
	return "", fmt.Errorf("%w: %s", ErrNotReady, name)
}
