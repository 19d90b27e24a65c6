// Package local is the stand-in for Knative's ingress on one machine (make run and the tests): it serves
// the provider's API host by the gateway's path table, and every other host by the KIngress objects on the
// apiserver, proxying to the Service's endpoints they name, with the same session check as in a cluster.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	netclient "knative.dev/networking/pkg/client/clientset/versioned"
	netinformers "knative.dev/networking/pkg/client/informers/externalversions"

	"github.com/ucloud-im/knative-im/shared/appauth"
	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/fn"
)

// indexHost indexes KIngresses by the hosts of their rules.
const indexHost = "host"

// Gateway routes by Host header: the KIngress hosts to their backends, anything else by the API table.
type Gateway struct {
	Kube      kubernetes.Interface
	Net       netclient.Interface
	Namespace string
	// API is the path table and Functions the local address of each function it names.
	API       []appdomain.Route
	Functions map[string]*url.URL
	// Auth decides which requests to app hosts may pass (its Sessions hold the signing key).
	Auth *appauth.Auth
	Log  *slog.Logger

	ingresses cache.Indexer
	services  corelisters.ServiceLister
	slices    discoverylisters.EndpointSliceLister
	api       *http.ServeMux
	transport http.RoundTripper
}

// Start fills the gateway's caches from the apiserver and keeps them current until ctx ends.
func (g *Gateway) Start(ctx context.Context) error {
	nf := netinformers.NewSharedInformerFactoryWithOptions(g.Net, 0, netinformers.WithNamespace(g.Namespace))
	ing := nf.Networking().V1alpha1().Ingresses().Informer()
	if err := ing.AddIndexers(cache.Indexers{indexHost: func(obj any) ([]string, error) {
		var hosts []string
		for _, r := range obj.(*netv1alpha1.Ingress).Spec.Rules {
			for _, h := range r.Hosts {
				hosts = append(hosts, strings.ToLower(h))
			}
		}
		return hosts, nil
	}}); err != nil {
		return err
	}
	kf := informers.NewSharedInformerFactoryWithOptions(g.Kube, 0, informers.WithNamespace(g.Namespace))
	g.services = kf.Core().V1().Services().Lister()
	g.slices = kf.Discovery().V1().EndpointSlices().Lister()
	g.ingresses = ing.GetIndexer()
	nf.Start(ctx.Done())
	kf.Start(ctx.Done())
	for typ, ok := range nf.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("local gateway: %v cache did not sync", typ)
		}
	}
	for typ, ok := range kf.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("local gateway: %v cache did not sync", typ)
		}
	}
	// Connections to upstreams are reused: a browser session and a benchmark both make many requests.
	g.transport = &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
	g.api = http.NewServeMux()
	for _, r := range g.API {
		target, ok := g.Functions[r.Function]
		if !ok {
			name := r.Function
			g.api.HandleFunc(r.Pattern(), func(w http.ResponseWriter, r *http.Request) {
				fn.WriteError(w, r, fn.Errorf(http.StatusBadGateway, "NO_UPSTREAM", "The function %s is not running here.", name))
			})
			continue
		}
		g.api.Handle(r.Pattern(), g.proxy(target, false, "function "+r.Function))
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	objs, _ := g.ingresses.ByIndex(indexHost, strings.ToLower(host))
	if len(objs) == 0 {
		if r.URL.Path == "/healthz" {
			fn.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			return
		}
		if _, pattern := g.api.Handler(r); pattern != "" {
			g.api.ServeHTTP(w, r)
			return
		}
		for _, route := range g.API {
			if route.Path == r.URL.Path {
				fn.WriteError(w, r, fn.Errorf(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "%s takes %s, not %s.", route.Path, route.Method, r.Method))
				return
			}
		}
		fn.WriteError(w, r, fn.Errorf(http.StatusNotFound, "NOT_FOUND", "Nothing is served at %s%s.", host, r.URL.Path))
		return
	}
	ing := objs[0].(*netv1alpha1.Ingress)
	path, ok := match(ing, host, r.URL.Path)
	if !ok {
		fn.WriteError(w, r, fn.Errorf(http.StatusNotFound, "NOT_FOUND", "Nothing is served at %s%s.", host, r.URL.Path))
		return
	}
	if !g.Auth.Allowed(r, r.URL.Path) {
		fn.WriteError(w, r, fn.Errorf(http.StatusUnauthorized, "NO_SESSION", "Open this application from UCloud to use it."))
		return
	}
	if path.RewriteHost != "" {
		// A path to one of the IM's functions (authorize-app): in a cluster the ingress re-enters itself with
		// the function's host; here that host's first label names the local process.
		fnName, _, _ := strings.Cut(path.RewriteHost, ".")
		target, ok := g.Functions[fnName]
		if !ok {
			fn.WriteError(w, r, fn.Errorf(http.StatusBadGateway, "NO_UPSTREAM", "The function %s is not running here.", fnName))
			return
		}
		g.proxy(target, false, "function "+fnName).ServeHTTP(w, r)
		return
	}
	target, err := g.endpoint(ing.Namespace, path.Splits[0].ServiceName, path.Splits[0].ServicePort.IntValue())
	if err != nil {
		g.Log.Info("no upstream", "host", host, "error", err.Error())
		fn.WriteError(w, r, fn.Errorf(http.StatusServiceUnavailable, "NOT_READY", "The application at %s is not ready yet.", host))
		return
	}
	g.proxy(target, true, "the application at "+host).ServeHTTP(w, r)
}

// match is the first path of the ingress's rule for host whose Path prefixes the request's (as Kourier does).
func match(ing *netv1alpha1.Ingress, host, reqPath string) (netv1alpha1.HTTPIngressPath, bool) {
	for _, rule := range ing.Spec.Rules {
		for _, h := range rule.Hosts {
			if !strings.EqualFold(h, host) || rule.HTTP == nil {
				continue
			}
			for _, p := range rule.HTTP.Paths {
				if strings.HasPrefix(reqPath, p.Path) && len(p.Splits) > 0 {
					return p, true
				}
			}
		}
	}
	return netv1alpha1.HTTPIngressPath{}, false
}

// endpoint resolves a Service port to the address of a ready endpoint, by the port's name, as kube-proxy does.
func (g *Gateway) endpoint(ns, name string, port int) (*url.URL, error) {
	svc, err := g.services.Services(ns).Get(name)
	if err != nil {
		return nil, fmt.Errorf("service %s/%s: %w", ns, name, err)
	}
	var portName string
	found := false
	for _, p := range svc.Spec.Ports {
		if int(p.Port) == port {
			portName, found = p.Name, true
		}
	}
	if !found {
		return nil, fmt.Errorf("service %s/%s has no port %d", ns, name, port)
	}
	slices, err := g.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name}))
	if err != nil {
		return nil, err
	}
	remote := 0
	// FQDN slices count too: the apiserver refuses loopback addresses, so tests and make run point a
	// Service at a process on this machine by a name under .localhost, which is loopback by RFC 6761 (as in
	// browsers; the system resolver here does not know it).
	for _, s := range slices {
		for _, p := range s.Ports {
			if p.Port == nil || (p.Name != nil && *p.Name != portName) || (p.Name == nil && portName != "") {
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
				// Only this machine: KWOK's pod addresses are made up, and a request to one would leave it.
				if ip := net.ParseIP(addr); ip == nil || !ip.IsLoopback() {
					remote++
					continue
				}
				return &url.URL{Scheme: "http", Host: net.JoinHostPort(addr, strconv.Itoa(int(*p.Port)))}, nil
			}
		}
	}
	if remote > 0 {
		return nil, fmt.Errorf("%s/%s has only endpoints off this machine (%d; KWOK's pods run no processes): point it at a local server", ns, name, remote)
	}
	return nil, errors.New("no ready endpoint for " + ns + "/" + name)
}

// proxy forwards to target; keepHost passes the browser's Host on (apps see their own name, as behind
// Kourier), otherwise the function gets its own and the original travels in X-Forwarded-Host. WebSocket
// upgrades are proxied by httputil.ReverseProxy itself.
func (g *Gateway) proxy(target *url.URL, keepHost bool, what string) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			if keepHost {
				pr.Out.Host = pr.In.Host
			}
		},
		Transport: g.transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			g.Log.Warn("upstream failed", "upstream", what, "path", r.URL.Path, "error", err.Error())
			fn.WriteError(w, r, fn.Errorf(http.StatusBadGateway, "UPSTREAM_FAILED", "The provider's %s did not answer. Please try again later.", what))
		},
	}
}

// PointAtLocal makes Service ns/name lead to port on this machine: it removes the Service's selector (so the
// EndpointSlice controller lets it be) and its slices, and gives it one slice naming <label>.localhost:port
// on the Service's "web" port. KWOK's pods run no processes; this is how make run, its walkthrough, the
// tests and the benchmarks put a real server behind a job's address. (The apiserver refuses 127.0.0.1 in an
// EndpointSlice; the local gateway takes names under .localhost as loopback.)
func PointAtLocal(ctx context.Context, cs kubernetes.Interface, ns, name, label string, port int) error {
	if _, err := cs.CoreV1().Services(ns).Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"selector":null}}`), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("service %s/%s: %w", ns, name, err)
	}
	sel := metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name}
	if err := cs.DiscoveryV1().EndpointSlices(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, sel); err != nil {
		return fmt.Errorf("endpoint slices of %s/%s: %w", ns, name, err)
	}
	p := int32(port)
	_, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-" + label, Labels: map[string]string{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "ucloud-im-local"}},
		AddressType: discoveryv1.AddressTypeFQDN,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{label + ".localhost"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("web"), Port: &p, Protocol: ptr.To(corev1.ProtocolTCP)}},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("endpoint slice of %s/%s: %w", ns, name, err)
	}
	return nil
}
