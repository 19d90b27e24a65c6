package appdomain_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	netclient "knative.dev/networking/pkg/client/clientset/versioned"

	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }

// TestIngressesPassKnativeValidationAndTheAPIServer checks both KIngress kinds with Knative networking's own
// SetDefaults and Validate, and has the real apiserver (with Knative's CRDs) accept them.
func TestIngressesPassKnativeValidationAndTheAPIServer(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "j-9-job-0", Namespace: ns, UID: types.UID("0b7f6f3c-1d3e-4c57-9e0a-3f2b1c4d5e6f")}}
	s := appdomain.Settings{Provider: "k8s", AppsDomain: "apps.example.org", Namespace: ns,
		AuthService: appdomain.AuthServiceName, AuthHost: "app-auth.ucloud-im.svc.cluster.local"}
	app := appdomain.AppIngress(pod, "9", 0, s)
	// Every path of the app's host goes to app-auth, with the host it was asked for; nothing to the app.
	wantRule := netv1alpha1.IngressRule{Hosts: []string{"app-9-0.apps.example.org"}, Visibility: netv1alpha1.IngressVisibilityExternalIP,
		HTTP: &netv1alpha1.HTTPIngressRuleValue{Paths: []netv1alpha1.HTTPIngressPath{{
			RewriteHost: "app-auth.ucloud-im.svc.cluster.local",
			Splits: []netv1alpha1.IngressBackendSplit{{Percent: 100,
				AppendHeaders:  map[string]string{"K-Original-Host": "app-9-0.apps.example.org"},
				IngressBackend: netv1alpha1.IngressBackend{ServiceNamespace: ns, ServiceName: "ucloud-im-auth", ServicePort: intstr.FromInt(80)}}},
		}}}}
	if len(app.Spec.Rules) != 1 || !equality.Semantic.DeepEqual(app.Spec.Rules[0], wantRule) {
		t.Fatalf("app ingress rules %+v", app.Spec.Rules)
	}
	api := appdomain.APIIngress(ns, "provider.example.org", "", appdomain.APIRoutes("k8s", []string{"syncthing", "terminal"}))
	nc := netclient.NewForConfigOrDie(env.Config)
	for _, ing := range []*netv1alpha1.Ingress{app, api} {
		ing.SetDefaults(ctx)
		if err := ing.Validate(ctx); err != nil {
			t.Fatalf("%s: %v", ing.Name, err)
		}
		if _, err := nc.NetworkingV1alpha1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Fatalf("%s refused by the apiserver: %v", ing.Name, err)
		}
	}
	if got := app.Spec.Rules[0].Hosts[0]; got != "app-9-0.apps.example.org" {
		t.Fatalf("app host %s", got)
	}
	if app.Annotations["networking.knative.dev/ingress.class"] != appdomain.DefaultIngressClass || app.OwnerReferences[0].UID != pod.UID {
		t.Fatalf("app ingress metadata %+v", app.ObjectMeta)
	}
	// A backend in another namespace is what Knative refuses: the check is live.
	bad := appdomain.AppIngress(pod, "9", 0, s)
	bad.Spec.Rules[0].HTTP.Paths[0].Splits[0].ServiceNamespace = "elsewhere"
	if err := bad.Validate(ctx); err == nil {
		t.Fatal("Validate accepted a backend in another namespace")
	}
}

// TestPathTableOrder: every path comes before the paths it is a prefix of, since ingresses match by prefix.
func TestPathTableOrder(t *testing.T) {
	routes := appdomain.APIRoutes("k8s", []string{"syncthing"})
	for i, a := range routes {
		for _, b := range routes[i+1:] {
			if strings.HasPrefix(b.Path, a.Path) {
				t.Errorf("%s comes before %s, which it would shadow", a.Path, b.Path)
			}
		}
	}
}

// Expose repeated for its pod succeeds; for another pod under the same name it is refused, not adopted.
func TestExposeIsIdempotentAndRefusesAnotherPod(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	cs := env.Clientset
	apps := &appdomain.Apps{Kube: cs, Net: netclient.NewForConfigOrDie(env.Config), Settings: appdomain.Settings{Provider: "k8s",
		AppsDomain: "apps.example.org", Namespace: ns, AuthService: appdomain.AuthServiceName, AuthHost: "app-auth.ucloud-im.svc.cluster.local"}}
	pod := func(name string) *corev1.Pod {
		p, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first, other := pod("j-9-job-0"), pod("someone-else")
	for range 2 {
		if err := apps.Expose(ctx, first, "9", 0, 8888); err != nil {
			t.Fatalf("expose for its own pod: %v", err)
		}
	}
	if err := apps.Expose(ctx, other, "9", 0, 8888); !errors.Is(err, appdomain.ErrTaken) {
		t.Fatalf("expose for another pod: %v, want ErrTaken", err)
	}
}

// TestHosts: one canonical form of a host, and only the exact host AppHost makes names a job rank.
func TestHosts(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"app-1-0.apps.example.org", "app-1-0.apps.example.org", true},
		{"APP-1-0.Apps.Example.ORG", "app-1-0.apps.example.org", true},
		{"app-1-0.apps.example.org.", "app-1-0.apps.example.org", true},
		{"app-1-0.apps.example.org:8443", "app-1-0.apps.example.org", true},
		{"app-1-0.apps.example.org.:443", "app-1-0.apps.example.org", true},
		{"app-1-0.apps.example.org..", "", false},
		{".app-1-0.apps.example.org", "", false},
		{"app-1-0.apps.example.org:", "", false},
		{"app-1-0.apps.example.org:x", "", false},
		{"app-1-0.apps.example.org:80:80", "", false},
		{"app_1-0.apps.example.org", "", false},
		{"app-1-0.apps.example.org%2e", "", false},
		{"[::1]:80", "", false},
		{"", "", false},
	} {
		got, ok := appdomain.CanonicalHost(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("CanonicalHost(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	for _, tc := range []struct {
		host, job string
		rank      int
		ok        bool
	}{
		{"app-17-0.apps.example.org", "17", 0, true},
		{"app-17-12.apps.example.org", "17", 12, true},
		{"app-17-01.apps.example.org", "", 0, false},
		{"app-17-+1.apps.example.org", "", 0, false},
		{"app-17.apps.example.org", "", 0, false},
		{"app--0.apps.example.org", "", 0, false},
		{"app-17-0.x.apps.example.org", "", 0, false},
		{"app-17-0.apps.example.org.evil.org", "", 0, false},
		{"ucloud-im-auth.apps.example.org", "", 0, false},
		{"apps.example.org", "", 0, false},
	} {
		job, rank, ok := appdomain.ParseAppHost(tc.host, "apps.example.org")
		if job != tc.job || rank != tc.rank || ok != tc.ok {
			t.Errorf("ParseAppHost(%q) = %q, %d, %v", tc.host, job, rank, ok)
		}
		if ok && appdomain.AppHost(job, rank, "apps.example.org") != tc.host {
			t.Errorf("%q does not round-trip", tc.host)
		}
	}
}
