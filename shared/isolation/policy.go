package isolation

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// NamespaceLabel is the label the apiserver puts on every namespace with its name: the one namespace
// selector that cannot be faked by whoever may label namespaces.
const NamespaceLabel = "kubernetes.io/metadata.name"

// Ports are what a job serves beyond its own job's pods.
type Ports struct {
	// Web is the port the authorizing proxy reaches (0: none).
	Web int32
	// Public are TCP ports open to everyone (Syncthing's sync port).
	Public []int32
}

// Policy is the NetworkPolicy of a job: it selects the pods labelled jobLabel=jobID and lets them talk to
// each other, to the cluster's DNS and to addresses outside the cluster, and nothing else inside it;
// traffic in comes only from the job's own pods, from the authorizing proxy on the web port, and from
// anywhere on the public ports. With the namespace's default-deny (deploy/) this is all a job may do.
func (e Env) Policy(name, namespace string, labels map[string]string, jobLabel, jobID string, ports Ports) *networkingv1.NetworkPolicy {
	e = e.withDefaults()
	sameJob := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{jobLabel: jobID}}}
	ingress := []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{sameJob}}}
	if ports.Web > 0 {
		ingress = append(ingress, networkingv1.NetworkPolicyIngressRule{
			From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: namespaceSelector(e.ProxyNamespace), PodSelector: e.ProxySelector.sel.DeepCopy()}},
			Ports: []networkingv1.NetworkPolicyPort{tcp(ports.Web)},
		})
	}
	if len(ports.Public) > 0 {
		var open []networkingv1.NetworkPolicyPort
		for _, p := range ports.Public {
			open = append(open, tcp(p))
		}
		// No From: any source, inside the cluster or not.
		ingress = append(ingress, networkingv1.NetworkPolicyIngressRule{Ports: open})
	}
	v4, v6 := e.internal()
	outside := []networkingv1.NetworkPolicyPeer{
		{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: v4}},
		{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: v6}},
	}
	egress := []networkingv1.NetworkPolicyEgressRule{
		{To: []networkingv1.NetworkPolicyPeer{sameJob}},
		{
			To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: namespaceSelector(e.DNSNamespace), PodSelector: e.DNSSelector.sel.DeepCopy()}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolUDP), Port: ptr.To(intstr.FromInt32(53))}, tcp(53)},
		},
		{To: outside},
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{jobLabel: jobID}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress:     ingress,
			Egress:      egress,
		},
	}
}

func namespaceSelector(name string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{NamespaceLabel: name}}
}

func tcp(port int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(port))}
}
