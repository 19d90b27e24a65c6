package appdomain_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"

	"github.com/ucloud-im/knative-im/shared/appdomain"
)

func rankPod(name, ns, uid string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID(uid)}}
}

func TestAppServiceTable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pod     *corev1.Pod
		jobID   string
		rank    int
		webPort int
		want    *corev1.Service
	}{{
		name: "rank 0", pod: rankPod("j-9-job-0", "jobs", "uid-0"), jobID: "9", rank: 0, webPort: 8080,
		want: &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{
				Name: "app-9-0", Namespace: "jobs",
				Labels:          map[string]string{"ucloud.dk/jobId": "9", "ucloud.dk/rank": "0", "app.kubernetes.io/managed-by": "ucloud-im"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "j-9-job-0", UID: "uid-0"}},
			},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"ucloud.dk/jobId": "9", "ucloud.dk/rank": "0"},
				Ports:    []corev1.ServicePort{{Name: "web", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
			},
		},
	}, {
		name: "rank 3 selects only its own rank", pod: rankPod("j-77-job-3", "other", "uid-3"), jobID: "77", rank: 3, webPort: 443,
		want: &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{
				Name: "app-77-3", Namespace: "other",
				Labels:          map[string]string{"ucloud.dk/jobId": "77", "ucloud.dk/rank": "3", "app.kubernetes.io/managed-by": "ucloud-im"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "j-77-job-3", UID: "uid-3"}},
			},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"ucloud.dk/jobId": "77", "ucloud.dk/rank": "3"},
				Ports:    []corev1.ServicePort{{Name: "web", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(443)}},
			},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := appdomain.AppService(tc.pod, tc.jobID, tc.rank, tc.webPort)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Unexpected Service (-want, +got):\n%s", diff)
			}
		})
	}
}

func TestAppIngressTable(t *testing.T) {
	typeMeta := metav1.TypeMeta{APIVersion: "networking.internal.knative.dev/v1alpha1", Kind: "Ingress"}
	for _, tc := range []struct {
		name  string
		pod   *corev1.Pod
		jobID string
		rank  int
		s     appdomain.Settings
		want  *netv1alpha1.Ingress
	}{{
		name: "defaults: Kourier class, app- prefix", pod: rankPod("j-9-job-0", "jobs", "uid-0"), jobID: "9", rank: 0,
		s: appdomain.Settings{Provider: "k8s", AppsDomain: "apps.example.org", Namespace: "jobs",
			AuthService: "ucloud-im-auth", AuthHost: "app-auth.ucloud-im.svc.cluster.local"},
		want: &netv1alpha1.Ingress{
			TypeMeta: typeMeta,
			ObjectMeta: metav1.ObjectMeta{
				Name: "app-9-0", Namespace: "jobs",
				Labels:          map[string]string{"ucloud.dk/jobId": "9", "ucloud.dk/rank": "0", "app.kubernetes.io/managed-by": "ucloud-im"},
				Annotations:     map[string]string{"networking.knative.dev/ingress.class": "kourier.ingress.networking.knative.dev"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "j-9-job-0", UID: "uid-0"}},
			},
			Spec: netv1alpha1.IngressSpec{Rules: []netv1alpha1.IngressRule{{
				Hosts:      []string{"app-9-0.apps.example.org"},
				Visibility: netv1alpha1.IngressVisibilityExternalIP,
				HTTP: &netv1alpha1.HTTPIngressRuleValue{Paths: []netv1alpha1.HTTPIngressPath{{
					RewriteHost: "app-auth.ucloud-im.svc.cluster.local",
					Splits: []netv1alpha1.IngressBackendSplit{{
						Percent:        100,
						AppendHeaders:  map[string]string{"K-Original-Host": "app-9-0.apps.example.org"},
						IngressBackend: netv1alpha1.IngressBackend{ServiceNamespace: "jobs", ServiceName: "ucloud-im-auth", ServicePort: intstr.FromInt32(80)},
					}},
				}}},
			}}},
		},
	}, {
		name: "own class and a mixed-case, trailing-dot domain", pod: rankPod("j-AB-job-2", "jobs2", "uid-2"), jobID: "AB", rank: 2,
		s: appdomain.Settings{Provider: "k8s", AppsDomain: "Apps.Example.org.", Class: "istio.ingress.networking.knative.dev",
			Namespace: "jobs2", AuthService: "auth", AuthHost: "app-auth.fn.svc.cluster.local"},
		want: &netv1alpha1.Ingress{
			TypeMeta: typeMeta,
			ObjectMeta: metav1.ObjectMeta{
				// Only the host is lower-cased; the object's name keeps the job id as given.
				Name: "app-AB-2", Namespace: "jobs2",
				Labels:          map[string]string{"ucloud.dk/jobId": "AB", "ucloud.dk/rank": "2", "app.kubernetes.io/managed-by": "ucloud-im"},
				Annotations:     map[string]string{"networking.knative.dev/ingress.class": "istio.ingress.networking.knative.dev"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "j-AB-job-2", UID: "uid-2"}},
			},
			Spec: netv1alpha1.IngressSpec{Rules: []netv1alpha1.IngressRule{{
				Hosts:      []string{"app-ab-2.apps.example.org"},
				Visibility: netv1alpha1.IngressVisibilityExternalIP,
				HTTP: &netv1alpha1.HTTPIngressRuleValue{Paths: []netv1alpha1.HTTPIngressPath{{
					RewriteHost: "app-auth.fn.svc.cluster.local",
					Splits: []netv1alpha1.IngressBackendSplit{{
						Percent:        100,
						AppendHeaders:  map[string]string{"K-Original-Host": "app-ab-2.apps.example.org"},
						IngressBackend: netv1alpha1.IngressBackend{ServiceNamespace: "jobs2", ServiceName: "auth", ServicePort: intstr.FromInt32(80)},
					}},
				}}},
			}}},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := appdomain.AppIngress(tc.pod, tc.jobID, tc.rank, tc.s)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Unexpected Ingress (-want, +got):\n%s", diff)
			}
		})
	}
}

func TestAPIIngressTable(t *testing.T) {
	typeMeta := metav1.TypeMeta{APIVersion: "networking.internal.knative.dev/v1alpha1", Kind: "Ingress"}
	routes := []appdomain.Route{
		{Method: "POST", Path: "/ucloud/k8s/jobs/terminate", Function: "job-control"},
		{Method: "POST", Path: "/ucloud/k8s/jobs", Function: "job-create"},
	}
	backend := func(ns, fn string) []netv1alpha1.IngressBackendSplit {
		return []netv1alpha1.IngressBackendSplit{{Percent: 100,
			IngressBackend: netv1alpha1.IngressBackend{ServiceNamespace: ns, ServiceName: fn, ServicePort: intstr.FromInt32(80)}}}
	}
	for _, tc := range []struct {
		name, ns, host, class string
		routes                []appdomain.Route
		want                  *netv1alpha1.Ingress
	}{{
		name: "default class, paths in table order", ns: "ucloud-im", host: "provider.example.org", routes: routes,
		want: &netv1alpha1.Ingress{
			TypeMeta: typeMeta,
			ObjectMeta: metav1.ObjectMeta{Name: "ucloud-im-api", Namespace: "ucloud-im",
				Labels:      map[string]string{"app.kubernetes.io/managed-by": "ucloud-im"},
				Annotations: map[string]string{"networking.knative.dev/ingress.class": "kourier.ingress.networking.knative.dev"}},
			Spec: netv1alpha1.IngressSpec{Rules: []netv1alpha1.IngressRule{{
				Hosts: []string{"provider.example.org"}, Visibility: netv1alpha1.IngressVisibilityExternalIP,
				HTTP: &netv1alpha1.HTTPIngressRuleValue{Paths: []netv1alpha1.HTTPIngressPath{
					{Path: "/ucloud/k8s/jobs/terminate", RewriteHost: "job-control.ucloud-im.svc.cluster.local", Splits: backend("ucloud-im", "job-control")},
					{Path: "/ucloud/k8s/jobs", RewriteHost: "job-create.ucloud-im.svc.cluster.local", Splits: backend("ucloud-im", "job-create")},
				}},
			}}},
		},
	}, {
		name: "own class, no routes", ns: "fn", host: "p.example.org", class: "contour.ingress.networking.knative.dev",
		want: &netv1alpha1.Ingress{
			TypeMeta: typeMeta,
			ObjectMeta: metav1.ObjectMeta{Name: "ucloud-im-api", Namespace: "fn",
				Labels:      map[string]string{"app.kubernetes.io/managed-by": "ucloud-im"},
				Annotations: map[string]string{"networking.knative.dev/ingress.class": "contour.ingress.networking.knative.dev"}},
			Spec: netv1alpha1.IngressSpec{Rules: []netv1alpha1.IngressRule{{
				Hosts: []string{"p.example.org"}, Visibility: netv1alpha1.IngressVisibilityExternalIP,
				HTTP: &netv1alpha1.HTTPIngressRuleValue{Paths: []netv1alpha1.HTTPIngressPath{}},
			}}},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := appdomain.APIIngress(tc.ns, tc.host, tc.class, tc.routes)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Unexpected Ingress (-want, +got):\n%s", diff)
			}
		})
	}
}
