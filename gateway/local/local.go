// Package local is the stand-in for Knative's ingress on one machine (make run and the tests): it serves
// the provider's API host by the path table, and every other host by the KIngress objects on the apiserver,
// as Kourier would: a path that rewrites the Host goes to that function's local process, with the split's
// headers set and Knative's queue-proxy's host restoration applied. App hosts' KIngresses send every path
// to app-auth, so make run runs app-auth's decision and proxy itself, not a copy of them.
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
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	netclient "knative.dev/networking/pkg/client/clientset/versioned"
	netinformers "knative.dev/networking/pkg/client/informers/externalversions"
	netheader "knative.dev/networking/pkg/http/header"

	"github.com/ucloud-im/knative-im/shared/appauth"
	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/fn"
)

// indexHost indexes KIngresses by the hosts of their rules.
const indexHost = "host"

// DefaultFunctionTimeout is how long the gateway waits for a function to begin its answer before it answers
// 503 itself, as an ingress does for a backend that does not respond.
const DefaultFunctionTimeout = time.Minute

// Gateway routes by Host header: the KIngress hosts to their backends, anything else by the API table.
type Gateway struct {
	Kube      kubernetes.Interface
	Net       netclient.Interface
	Namespace string
	// API is the path table and Functions the local address of each function it names (and of app-auth).
	API       []appdomain.Route
	Functions map[string]*url.URL
	// FunctionTimeout: 0 is DefaultFunctionTimeout.
	FunctionTimeout time.Duration
	Log             *slog.Logger

	ingresses cache.Indexer
	api       *http.ServeMux
	proxies   map[string]*httputil.ReverseProxy
	buffers   *appauth.BufferPool
	timeout   time.Duration
}

// Start fills the gateway's cache from the apiserver and keeps it current until ctx ends.
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
	g.ingresses = ing.GetIndexer()
	nf.Start(ctx.Done())
	for typ, ok := range nf.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("local gateway: %v cache did not sync", typ)
		}
	}
	g.timeout = g.FunctionTimeout
	if g.timeout <= 0 {
		g.timeout = DefaultFunctionTimeout
	}
	// One proxy per function, built once; connections are reused (a page load is many requests).
	transport := &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns: 4096, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second, ResponseHeaderTimeout: g.timeout}
	g.proxies = map[string]*httputil.ReverseProxy{}
	g.buffers = &appauth.BufferPool{}
	for name, target := range g.Functions {
		g.proxies[name] = g.proxy(name, target, transport)
	}
	g.api = http.NewServeMux()
	for _, r := range g.API {
		p, ok := g.proxies[r.Function]
		if !ok {
			name := r.Function
			g.api.HandleFunc(r.Pattern(), func(w http.ResponseWriter, r *http.Request) {
				fn.WriteError(w, r, fn.Errorf(http.StatusBadGateway, "NO_UPSTREAM", "The function %s is not running here.", name))
			})
			continue
		}
		g.api.Handle(r.Pattern(), p)
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Virtual hosts are matched as Envoy does: case-insensitive, port ignored, nothing else normalised.
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	objs, _ := g.ingresses.ByIndex(indexHost, strings.ToLower(host))
	if len(objs) == 0 {
		g.serveAPI(w, r, host)
		return
	}
	ing := objs[0].(*netv1alpha1.Ingress)
	path, ok := match(ing, host, r.URL.EscapedPath())
	if !ok {
		fn.WriteError(w, r, fn.Errorf(http.StatusNotFound, "NOT_FOUND", "Nothing is served at %s%s.", host, r.URL.Path))
		return
	}
	// Only paths to the IM's own functions (the app hosts' app-auth) are served here: in a cluster the
	// ingress re-enters itself with the function's host, whose first label names the local process.
	fnName, _, _ := strings.Cut(path.RewriteHost, ".")
	p, ok := g.proxies[fnName]
	if path.RewriteHost == "" || !ok {
		fn.WriteError(w, r, fn.Errorf(http.StatusBadGateway, "NO_UPSTREAM", "The function %q is not running here.", fnName))
		return
	}
	r = r.Clone(r.Context())
	r.Host = path.RewriteHost
	for k, v := range path.Splits[0].AppendHeaders {
		r.Header.Set(k, v)
	}
	// Knative's queue-proxy in front of the function turns K-Original-Host back into the Host: its code.
	netheader.RewriteHostOut(r)
	if r.Header.Get("Upgrade") != "" {
		// A WebSocket: joined as a raw TCP tunnel, as app-auth does, not held through the reverse proxy.
		appauth.Tunnel(w, appauth.UpgradeRequest(r, g.Functions[fnName].Host), g.timeout, g.fail(fnName))
		return
	}
	p.ServeHTTP(w, r)
}

func (g *Gateway) serveAPI(w http.ResponseWriter, r *http.Request, host string) {
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

// proxy forwards to a function's process, keeping the Host the route set; WebSocket upgrades are proxied
// by httputil.ReverseProxy itself. A function that is down or does not begin answering in time gets 503,
// as from an ingress whose backend is unavailable: the request goes no further.
func (g *Gateway) proxy(name string, target *url.URL, transport http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
		},
		Transport:    transport,
		BufferPool:   g.buffers,
		ErrorHandler: g.fail(name),
	}
}

// fail answers for a function that is down or silent: 503, as an ingress whose backend is unavailable.
func (g *Gateway) fail(name string) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		if errors.Is(err, context.Canceled) {
			return
		}
		g.Log.Warn("function failed", "function", name, "path", r.URL.Path, "error", err.Error())
		fn.WriteError(w, r, fn.Errorf(http.StatusServiceUnavailable, "UNAVAILABLE", "The provider's %s is not available. Please try again later.", name))
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
