package appdomain

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"knative.dev/networking/pkg/apis/networking"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	netheader "knative.dev/networking/pkg/http/header"

	"github.com/ucloud-im/knative-im/shared/kube"
)

// DefaultIngressClass is Kourier's, the ingress Knative installs by default.
const DefaultIngressClass = "kourier.ingress.networking.knative.dev"

// LabelManagedBy marks the objects the gateway makes, so they can be listed (and a cluster's other
// KIngresses told apart from ours).
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "ucloud-im"
)

// AuthServiceName is the ExternalName Service, in the jobs namespace, that leads to the app-auth function
// (deploy/ makes it).
const AuthServiceName = "ucloud-im-auth"

// ServicePort is the port of the per-rank Services and of the functions' Knative Services.
const ServicePort = 80

// Settings say how the provider's ingress is set up.
type Settings struct {
	Provider string
	// AppsDomain is the wildcard application domain.
	AppsDomain string
	// Class is the KIngress class (the networking.knative.dev/ingress.class annotation).
	Class string
	// Namespace is the jobs namespace: a KIngress may only name Services of its own namespace.
	Namespace string
	// AuthService is the ExternalName Service in the jobs namespace that leads to the app-auth function,
	// and AuthHost that function's cluster host, which the ingress rewrites the Host to (the way Knative's
	// own DomainMapping reaches a Knative Service in another namespace). Every request to an app host goes
	// there first.
	AuthService string
	AuthHost    string
}

func (s Settings) class() string {
	if s.Class == "" {
		return DefaultIngressClass
	}
	return s.Class
}

// AppName is the name of the per-rank Service and KIngress of a job's web interface.
// It starts with HostPrefix, as the host does.
func AppName(jobID string, rank int) string { return HostPrefix + jobID + "-" + strconv.Itoa(rank) }

func ownedBy(pod *corev1.Pod) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}}
}

func labels(jobID string, rank int) map[string]string {
	l := kube.JobLabels(jobID, rank, "")
	l[LabelManagedBy] = ManagedBy
	return l
}

// AppService is the Service of one rank's web port. The job's own Service is headless and selects every
// rank; an ingress needs one that selects exactly this rank.
func AppService(pod *corev1.Pod, jobID string, rank, webPort int) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: AppName(jobID, rank), Namespace: pod.Namespace, Labels: labels(jobID, rank),
			OwnerReferences: ownedBy(pod)},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{kube.LabelJobID: jobID, kube.LabelRank: strconv.Itoa(rank)},
			Ports: []corev1.ServicePort{{Name: "web", Port: ServicePort, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt(webPort)}},
		},
	}
}

// OriginalHostHeader carries an app host to app-auth past the ingress's Host rewrite. It is Knative's own
// (K-Original-Host, as DomainMapping uses it): Knative's queue-proxy in front of app-auth turns it back into
// the request's Host, so app-auth sees the host the browser asked for. The local gateway does the same.
const OriginalHostHeader = netheader.OriginalHostKey

// AppIngress routes every path of app-<job>-<rank>.<domain> to the app-auth function (through the
// ExternalName Service AuthService in the jobs namespace, rewriting the Host to app-auth's as Knative's
// DomainMapping does, the original host in OriginalHostHeader). app-auth decides on each request and
// forwards what it allows to the rank's Service: nothing reaches the application without passing it, on
// any ingress. It is owned by the rank's pod, so it goes when the job does.
func AppIngress(pod *corev1.Pod, jobID string, rank int, s Settings) *netv1alpha1.Ingress {
	host := AppHost(jobID, rank, s.AppsDomain)
	toAuth := split(s.Namespace, s.AuthService)
	toAuth[0].AppendHeaders = map[string]string{OriginalHostHeader: host}
	return &netv1alpha1.Ingress{
		TypeMeta: metav1.TypeMeta{APIVersion: netv1alpha1.SchemeGroupVersion.String(), Kind: "Ingress"},
		ObjectMeta: metav1.ObjectMeta{Name: AppName(jobID, rank), Namespace: s.Namespace, Labels: labels(jobID, rank),
			Annotations:     map[string]string{networking.IngressClassAnnotationKey: s.class()},
			OwnerReferences: ownedBy(pod)},
		Spec: netv1alpha1.IngressSpec{Rules: []netv1alpha1.IngressRule{{
			Hosts:      []string{host},
			Visibility: netv1alpha1.IngressVisibilityExternalIP,
			HTTP: &netv1alpha1.HTTPIngressRuleValue{Paths: []netv1alpha1.HTTPIngressPath{
				{RewriteHost: s.AuthHost, Splits: toAuth},
			}},
		}}},
	}
}

// APIIngress routes the provider's API host to the functions' Knative Services in namespace, path by path
// from routes.
func APIIngress(namespace, host, class string, routes []Route) *netv1alpha1.Ingress {
	if class == "" {
		class = DefaultIngressClass
	}
	paths := make([]netv1alpha1.HTTPIngressPath, 0, len(routes))
	for _, r := range routes {
		paths = append(paths, netv1alpha1.HTTPIngressPath{Path: r.Path,
			RewriteHost: r.Function + "." + namespace + ".svc.cluster.local", Splits: split(namespace, r.Function)})
	}
	return &netv1alpha1.Ingress{
		TypeMeta: metav1.TypeMeta{APIVersion: netv1alpha1.SchemeGroupVersion.String(), Kind: "Ingress"},
		ObjectMeta: metav1.ObjectMeta{Name: "ucloud-im-api", Namespace: namespace,
			Labels:      map[string]string{LabelManagedBy: ManagedBy},
			Annotations: map[string]string{networking.IngressClassAnnotationKey: class}},
		Spec: netv1alpha1.IngressSpec{Rules: []netv1alpha1.IngressRule{{
			Hosts: []string{host}, Visibility: netv1alpha1.IngressVisibilityExternalIP,
			HTTP: &netv1alpha1.HTTPIngressRuleValue{Paths: paths},
		}}},
	}
}

func split(ns, svc string) []netv1alpha1.IngressBackendSplit {
	return []netv1alpha1.IngressBackendSplit{{Percent: 100, IngressBackend: netv1alpha1.IngressBackend{
		ServiceNamespace: ns, ServiceName: svc, ServicePort: intstr.FromInt(ServicePort)}}}
}
