package netpol_test

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ucloud-im/knative-im/test/netpol"
)

func pod(ns, name, ip string, labels ...string) netpol.Endpoint {
	l := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	return netpol.Endpoint{Name: name, Namespace: ns, Labels: l, IP: netip.MustParseAddr(ip)}
}

func outside(ip string) netpol.Endpoint {
	return netpol.Endpoint{Name: ip, IP: netip.MustParseAddr(ip)}
}

func policy(ns, name string, sel map[string]string, types []networkingv1.PolicyType, in []networkingv1.NetworkPolicyIngressRule, out []networkingv1.NetworkPolicyEgressRule) networkingv1.NetworkPolicy {
	return networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: sel}, PolicyTypes: types, Ingress: in, Egress: out}}
}

func port(proto corev1.Protocol, p int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(proto), Port: ptr.To(intstr.FromInt32(p))}
}

var (
	ingressOnly = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egressOnly  = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	both        = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	tcp         = corev1.ProtocolTCP
	udp         = corev1.ProtocolUDP
)

// TestSemantics checks the evaluator against the NetworkPolicy rules as the API documents them, one rule
// per case, so that the project's policy table rests on a checked reading.
func TestSemantics(t *testing.T) {
	a := pod("a", "a1", "10.0.0.1", "app", "x")
	a2 := pod("a", "a2", "10.0.0.2", "app", "y")
	b := pod("b", "b1", "10.0.1.1", "app", "x")
	c := pod("c", "c1", "10.0.2.1", "app", "x")
	web := outside("93.184.216.34")
	meta := outside("169.254.169.254")
	nsLabels := map[string]map[string]string{"b": {"team": "blue"}}
	denyAll := policy("a", "deny", nil, both, nil, nil)
	cases := []struct {
		name     string
		policies []networkingv1.NetworkPolicy
		from, to netpol.Endpoint
		proto    corev1.Protocol
		port     int32
		want     bool
	}{
		{"no policy: everything allowed", nil, b, a, tcp, 80, true},
		{"default deny: ingress refused", []networkingv1.NetworkPolicy{denyAll}, b, a, tcp, 80, false},
		{"default deny: egress refused", []networkingv1.NetworkPolicy{denyAll}, a, b, tcp, 80, false},
		{"default deny of another namespace does not apply", []networkingv1.NetworkPolicy{denyAll}, b, c, tcp, 80, true},
		{"ingress-only policy leaves egress open", []networkingv1.NetworkPolicy{policy("a", "p", nil, ingressOnly, nil, nil)}, a, b, tcp, 80, true},
		{"policyTypes left out, no egress rules: ingress only", []networkingv1.NetworkPolicy{policy("a", "p", nil, nil, nil, nil)}, a, b, tcp, 80, true},
		{"policyTypes left out, egress rules: egress too", []networkingv1.NetworkPolicy{policy("a", "p", nil, nil, nil,
			[]networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}})}, a, b, tcp, 80, false},
		{"selector that does not match the pod: no policy", []networkingv1.NetworkPolicy{policy("a", "p", map[string]string{"app": "z"}, both, nil, nil)}, b, a, tcp, 80, true},
		{"union: a second policy opens what the first denies", []networkingv1.NetworkPolicy{denyAll, policy("a", "open", nil, ingressOnly,
			[]networkingv1.NetworkPolicyIngressRule{{}}, nil)}, b, a, tcp, 80, true},
		{"podSelector peer: same namespace only", []networkingv1.NetworkPolicy{policy("a", "p", nil, ingressOnly,
			[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}}}}}, nil)}, b, a, tcp, 80, false},
		{"podSelector peer: matching pod of the namespace", []networkingv1.NetworkPolicy{policy("a", "p", map[string]string{"app": "y"}, ingressOnly,
			[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}}}}}, nil)}, a, a2, tcp, 80, true},
		{"namespaceSelector by name", []networkingv1.NetworkPolicy{policy("a", "p", nil, ingressOnly,
			[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{netpol.NamespaceNameLabel: "b"}}}}}}, nil)}, b, a, tcp, 80, true},
		{"namespaceSelector by name, other namespace", []networkingv1.NetworkPolicy{policy("a", "p", nil, ingressOnly,
			[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{netpol.NamespaceNameLabel: "b"}}}}}}, nil)}, c, a, tcp, 80, false},
		{"namespaceSelector by another label", []networkingv1.NetworkPolicy{policy("a", "p", nil, ingressOnly,
			[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "blue"}}}}}}, nil)}, b, a, tcp, 80, true},
		{"namespaceSelector and podSelector: both must match", []networkingv1.NetworkPolicy{policy("a", "p", nil, ingressOnly,
			[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{netpol.NamespaceNameLabel: "b"}},
				PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}}}}}}, nil)}, b, a, tcp, 80, false},
		{"matchExpressions In", []networkingv1.NetworkPolicy{policy("a", "p", nil, ingressOnly,
			[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: netpol.NamespaceNameLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{"b", "c"}}}}}}}}, nil)}, c, a, tcp, 80, true},
		{"empty from: every source", []networkingv1.NetworkPolicy{policy("a", "p", nil, ingressOnly,
			[]networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{port(tcp, 22000)}}}, nil)}, web, a, tcp, 22000, true},
		{"port list: other port refused", []networkingv1.NetworkPolicy{policy("a", "p", nil, ingressOnly,
			[]networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{port(tcp, 22000)}}}, nil)}, web, a, tcp, 22, false},
		{"port list: other protocol refused", []networkingv1.NetworkPolicy{policy("a", "p", nil, ingressOnly,
			[]networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{port(tcp, 53)}}}, nil)}, web, a, udp, 53, false},
		{"port without protocol is TCP", []networkingv1.NetworkPolicy{policy("a", "p", nil, ingressOnly,
			[]networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt32(53))}}}}, nil)}, web, a, tcp, 53, true},
		{"endPort range", []networkingv1.NetworkPolicy{policy("a", "p", nil, ingressOnly,
			[]networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt32(8000)), EndPort: ptr.To[int32](8100)}}}}, nil)}, web, a, tcp, 8080, true},
		{"ipBlock: address inside", []networkingv1.NetworkPolicy{policy("a", "p", nil, egressOnly, nil,
			[]networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8", "169.254.169.254/32"}}}}}})}, a, web, tcp, 443, true},
		{"ipBlock: address in except", []networkingv1.NetworkPolicy{policy("a", "p", nil, egressOnly, nil,
			[]networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8", "169.254.169.254/32"}}}}}})}, a, meta, tcp, 80, false},
		{"ipBlock matches pod addresses too (permissive reading)", []networkingv1.NetworkPolicy{policy("a", "p", nil, egressOnly, nil,
			[]networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}}}}})}, a, b, tcp, 80, true},
		{"ipBlock of one family does not match the other", []networkingv1.NetworkPolicy{policy("a", "p", nil, egressOnly, nil,
			[]networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}}}}})}, a, outside("2001:db8::1"), tcp, 80, false},
		{"selector peers never match an outside address", []networkingv1.NetworkPolicy{policy("a", "p", nil, egressOnly, nil,
			[]networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}}})}, a, web, tcp, 80, false},
		{"both sides must allow: egress open, ingress closed", []networkingv1.NetworkPolicy{policy("b", "deny", nil, ingressOnly, nil, nil)}, a, b, tcp, 80, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &netpol.Cluster{NamespaceLabels: nsLabels, Policies: tc.policies}
			v, err := c.Check(tc.from, tc.to, tc.proto, tc.port)
			if err != nil {
				t.Fatal(err)
			}
			if v.Allowed != tc.want {
				t.Errorf("%s -> %s %s/%d: %s, want allowed=%v", tc.from.Name, tc.to.Name, tc.proto, tc.port, v, tc.want)
			}
		})
	}
}

func TestNamedPortsAreRefusedNotGuessed(t *testing.T) {
	c := &netpol.Cluster{Policies: []networkingv1.NetworkPolicy{policy("a", "p", nil, ingressOnly,
		[]networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromString("web"))}}}}, nil)}}
	_, err := c.Check(outside("1.1.1.1"), pod("a", "a1", "10.0.0.1"), tcp, 80)
	if err == nil || !strings.Contains(err.Error(), "named port") {
		t.Fatalf("got %v, want an error naming the unsupported named port", err)
	}
}
