package isolation_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/isolation"
	"github.com/ucloud-im/knative-im/shared/jobs"
)

// TestSettingsAreValidatedAtStartUp: a malformed setting stops the function with the variable named and
// what is wrong; nothing is guessed.
func TestSettingsAreValidatedAtStartUp(t *testing.T) {
	cases := []struct{ key, value, want string }{
		{"CLUSTER_POD_CIDRS", "10.244.0/16", `CLUSTER_POD_CIDRS="10.244.0/16" is not a valid`},
		{"CLUSTER_POD_CIDRS", "10.244.0.0/16,banana", `"banana" is not an address range`},
		{"CLUSTER_SERVICE_CIDRS", "10.96.0.1/12", `"10.96.0.1/12" has bits set beyond its /12; the range is 10.96.0.0/12`},
		{"METADATA_CIDRS", "169.254.169.254", `"169.254.169.254" is not an address range`},
		{"APP_PROXY_SELECTOR", "serving.knative.dev/service==app auth", `is not a label selector`},
		{"CLUSTER_DNS_SELECTOR", "k8s-app in kube-dns", `is not a label selector`},
	}
	for _, tc := range cases {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			t.Setenv(tc.key, tc.value)
			var env isolation.Env
			err := fn.LoadEnv(&env)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("got %v, want an error naming %s and saying %q", err, tc.key, tc.want)
			}
		})
	}
}

func tcp(p int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(p))}
}

// TestPolicy compares the whole policy built from an operator's settings: ranges of both families, one
// inside another (dropped from the except list), selectors from the environment.
func TestPolicy(t *testing.T) {
	t.Setenv("CLUSTER_POD_CIDRS", "10.244.0.0/16, fd00:10:244::/56")
	t.Setenv("CLUSTER_SERVICE_CIDRS", "10.96.0.0/12,10.96.5.0/24")
	t.Setenv("METADATA_CIDRS", "169.254.169.254/32,fd00:ec2::254/128")
	t.Setenv("APP_PROXY_NAMESPACE", "ucloud-im")
	t.Setenv("APP_PROXY_SELECTOR", "serving.knative.dev/service=app-auth")
	var env isolation.Env
	if err := fn.LoadEnv(&env); err != nil {
		t.Fatal(err)
	}
	got := env.Policy("policy-7", "jobs", map[string]string{"ucloud.dk/jobId": "7"}, "ucloud.dk/jobId", "7", isolation.Ports{Web: 8888, Public: []int32{22000}})
	sameJob := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"ucloud.dk/jobId": "7"}}}
	want := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "policy-7", Namespace: "jobs", Labels: map[string]string{"ucloud.dk/jobId": "7"}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"ucloud.dk/jobId": "7"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{From: []networkingv1.NetworkPolicyPeer{sameJob}},
				{From: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "ucloud-im"}},
					PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"serving.knative.dev/service": "app-auth"}},
				}}, Ports: []networkingv1.NetworkPolicyPort{tcp(8888)}},
				{Ports: []networkingv1.NetworkPolicyPort{tcp(22000)}},
			},
			Egress: []networkingv1.NetworkPolicyEgressRule{
				{To: []networkingv1.NetworkPolicyPeer{sameJob}},
				{To: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
					PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
				}}, Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolUDP), Port: ptr.To(intstr.FromInt32(53))}, tcp(53)}},
				{To: []networkingv1.NetworkPolicyPeer{
					{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.244.0.0/16", "10.96.0.0/12", "169.254.169.254/32"}}},
					{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: []string{"fd00:10:244::/56", "fd00:ec2::254/128"}}},
				}},
			},
		},
	}
	if !equality.Semantic.DeepEqual(want, got) {
		t.Errorf("policy (-want +got):\n%s", diff.Diff(want, got))
	}
}

// TestZeroSettingsAreTheSafeDefaults: a function given no settings fences jobs off every private range and
// the metadata address, and admits only app-auth to the web port.
func TestZeroSettingsAreTheSafeDefaults(t *testing.T) {
	got := isolation.Env{}.Policy("p", "ns", nil, "ucloud.dk/jobId", "7", isolation.Ports{Web: 80})
	v4 := got.Spec.Egress[2].To[0].IPBlock.Except
	v6 := got.Spec.Egress[2].To[1].IPBlock.Except
	if !equality.Semantic.DeepEqual([]string{"10.0.0.0/8", "100.64.0.0/10", "169.254.169.254/32", "172.16.0.0/12", "192.168.0.0/16"}, v4) {
		t.Errorf("IPv4 except (-want +got):\n%s", diff.Diff([]string{"10.0.0.0/8", "100.64.0.0/10", "169.254.169.254/32", "172.16.0.0/12", "192.168.0.0/16"}, v4))
	}
	if !equality.Semantic.DeepEqual([]string{"fc00::/7"}, v6) {
		t.Errorf("IPv6 except (-want +got):\n%s", diff.Diff([]string{"fc00::/7"}, v6))
	}
	proxy := got.Spec.Ingress[1].From[0]
	if proxy.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "ucloud-im" || proxy.PodSelector.MatchLabels["serving.knative.dev/service"] != "app-auth" {
		t.Errorf("web port admits %+v, want app-auth's pods in ucloud-im", proxy)
	}
}

func TestHarden(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}, InitContainers: []corev1.Container{{Name: "i"}}}}
	isolation.Harden(pod)
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Privileged == nil || *sc.Privileged {
			t.Fatalf("%s: %+v, want no privilege and no escalation", c.Name, sc)
		}
		if !equality.Semantic.DeepEqual([]corev1.Capability{"ALL"}, sc.Capabilities.Drop) {
			t.Errorf("%s drops (-want +got):\n%s", c.Name, diff.Diff([]corev1.Capability{"ALL"}, sc.Capabilities.Drop))
		}
		for _, add := range sc.Capabilities.Add {
			if add == "NET_RAW" || add == "SYS_ADMIN" || add == "NET_ADMIN" {
				t.Errorf("%s adds %s", c.Name, add)
			}
		}
	}
	if pod.Spec.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccomp %v, want RuntimeDefault", pod.Spec.SecurityContext.SeccompProfile)
	}
}

// TestEmptySelectorIsTheWholeNamespace: an operator who sets APP_PROXY_SELECTOR to "" (their ingress
// proxies itself, every pod of its namespace) gets that, not the default.
func TestEmptySelectorIsTheWholeNamespace(t *testing.T) {
	t.Setenv("APP_PROXY_NAMESPACE", "kourier-system")
	t.Setenv("APP_PROXY_SELECTOR", "")
	var env isolation.Env
	if err := fn.LoadEnv(&env); err != nil {
		t.Fatal(err)
	}
	peer := env.Policy("p", "ns", nil, "ucloud.dk/jobId", "7", isolation.Ports{Web: 80}).Spec.Ingress[1].From[0]
	if peer.PodSelector == nil || len(peer.PodSelector.MatchLabels) != 0 || len(peer.PodSelector.MatchExpressions) != 0 ||
		peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "kourier-system" {
		t.Fatalf("web port admits %+v, want every pod of kourier-system", peer)
	}
}

// TestEveryPodBuildingFunctionValidatesTheSettings: job-create's environment and the one the configuration
// functions and the monitor share both carry the settings, so a bad range stops each at start-up.
func TestEveryPodBuildingFunctionValidatesTheSettings(t *testing.T) {
	t.Setenv("CLUSTER_SERVICE_CIDRS", "10.96.0.0/33")
	t.Setenv("UCLOUD_PROVIDER_ID", "k8s")
	t.Setenv("UCLOUD_APPS_DOMAIN", "apps.example.org")
	for name, spec := range map[string]any{"job-create": &jobs.Env{}, "config-*, monitor": &iapps.AppEnv{}} {
		if err := fn.LoadEnv(spec); err == nil || !strings.Contains(err.Error(), "CLUSTER_SERVICE_CIDRS") {
			t.Errorf("%s: got %v, want an error naming CLUSTER_SERVICE_CIDRS", name, err)
		}
	}
}
