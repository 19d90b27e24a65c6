// Package netpol evaluates Kubernetes NetworkPolicies, for tests: no CNI runs on the test machine to
// enforce them, so whether the project's policies allow or deny a connection is decided here, following
// the API's documented semantics for the subset the project uses:
//   - a pod no policy selects (for a direction, by policyTypes) is allowed everything in that direction;
//   - a selected pod is allowed what any rule of any policy selecting it allows (policies are a union);
//   - a connection needs both the sender's egress and the receiver's ingress;
//   - a peer is a podSelector (the policy's namespace), a namespaceSelector (any pod there), both (pods in
//     those namespaces), or an ipBlock (cidr minus except); an empty peer list or port list matches all;
//   - policyTypes left out means Ingress, plus Egress when the policy has egress rules.
//
// Whether an ipBlock matches pod addresses is left to each network plugin by the API; the evaluator says
// it does, the permissive reading, so a policy passes only if it is safe under both.
package netpol

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// NamespaceNameLabel is set by the apiserver on every namespace to its name.
const NamespaceNameLabel = "kubernetes.io/metadata.name"

// Endpoint is one end of a connection: a pod (Namespace set), or an address outside the cluster.
type Endpoint struct {
	Name      string
	Namespace string
	Labels    map[string]string
	IP        netip.Addr
}

func (e Endpoint) isPod() bool { return e.Namespace != "" }

// Cluster is the policies in force and the namespaces' labels.
type Cluster struct {
	// NamespaceLabels are each namespace's labels beyond kubernetes.io/metadata.name, which every
	// namespace has.
	NamespaceLabels map[string]map[string]string
	Policies        []networkingv1.NetworkPolicy
}

// Verdict says whether a connection is allowed, and why each side decided as it did.
type Verdict struct {
	Allowed         bool
	Egress, Ingress string
}

func (v Verdict) String() string {
	word := "denied"
	if v.Allowed {
		word = "allowed"
	}
	return fmt.Sprintf("%s (egress: %s; ingress: %s)", word, v.Egress, v.Ingress)
}

// Check decides a connection from one endpoint to another on a port (TCP, UDP or SCTP).
func (c *Cluster) Check(from, to Endpoint, proto corev1.Protocol, port int32) (Verdict, error) {
	out, outWhy, err := c.side(networkingv1.PolicyTypeEgress, from, to, proto, port)
	if err != nil {
		return Verdict{}, err
	}
	in, inWhy, err := c.side(networkingv1.PolicyTypeIngress, to, from, proto, port)
	if err != nil {
		return Verdict{}, err
	}
	return Verdict{Allowed: out && in, Egress: outWhy, Ingress: inWhy}, nil
}

// side decides one direction: may self send to (egress) or receive from (ingress) peer.
func (c *Cluster) side(dir networkingv1.PolicyType, self, peer Endpoint, proto corev1.Protocol, port int32) (bool, string, error) {
	if !self.isPod() {
		return true, "outside the cluster, no policy applies", nil
	}
	selected := 0
	for i := range c.Policies {
		p := &c.Policies[i]
		if p.Namespace != self.Namespace || !hasType(p, dir) {
			continue
		}
		ok, err := matches(&p.Spec.PodSelector, self.Labels)
		if err != nil {
			return false, "", fmt.Errorf("policy %s/%s: %w", p.Namespace, p.Name, err)
		}
		if !ok {
			continue
		}
		selected++
		var rules []rule
		if dir == networkingv1.PolicyTypeEgress {
			for _, r := range p.Spec.Egress {
				rules = append(rules, rule{r.To, r.Ports})
			}
		} else {
			for _, r := range p.Spec.Ingress {
				rules = append(rules, rule{r.From, r.Ports})
			}
		}
		for i, r := range rules {
			ok, err := c.ruleMatches(p.Namespace, r, peer, proto, port)
			if err != nil {
				return false, "", fmt.Errorf("policy %s/%s: %w", p.Namespace, p.Name, err)
			}
			if ok {
				return true, fmt.Sprintf("%s rule %d of %s/%s", dir, i, p.Namespace, p.Name), nil
			}
		}
	}
	if selected == 0 {
		return true, "no " + string(dir) + " policy selects " + self.Name, nil
	}
	return false, fmt.Sprintf("none of the %d %s policies selecting %s allows it", selected, dir, self.Name), nil
}

type rule struct {
	peers []networkingv1.NetworkPolicyPeer
	ports []networkingv1.NetworkPolicyPort
}

func hasType(p *networkingv1.NetworkPolicy, dir networkingv1.PolicyType) bool {
	if len(p.Spec.PolicyTypes) == 0 {
		return dir == networkingv1.PolicyTypeIngress || (dir == networkingv1.PolicyTypeEgress && len(p.Spec.Egress) > 0)
	}
	for _, t := range p.Spec.PolicyTypes {
		if t == dir {
			return true
		}
	}
	return false
}

func (c *Cluster) ruleMatches(policyNS string, r rule, peer Endpoint, proto corev1.Protocol, port int32) (bool, error) {
	ok, err := portMatches(r.ports, proto, port)
	if err != nil || !ok {
		return false, err
	}
	if len(r.peers) == 0 {
		return true, nil
	}
	for _, p := range r.peers {
		ok, err := c.peerMatches(policyNS, p, peer)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func (c *Cluster) peerMatches(policyNS string, p networkingv1.NetworkPolicyPeer, e Endpoint) (bool, error) {
	if p.IPBlock != nil {
		if p.PodSelector != nil || p.NamespaceSelector != nil {
			return false, fmt.Errorf("a peer with ipBlock and a selector is invalid")
		}
		return inBlock(p.IPBlock, e.IP)
	}
	if !e.isPod() {
		return false, nil
	}
	if p.NamespaceSelector == nil {
		if e.Namespace != policyNS {
			return false, nil
		}
	} else {
		nsLabels := map[string]string{NamespaceNameLabel: e.Namespace}
		for k, v := range c.NamespaceLabels[e.Namespace] {
			nsLabels[k] = v
		}
		ok, err := matches(p.NamespaceSelector, nsLabels)
		if err != nil || !ok {
			return false, err
		}
	}
	if p.PodSelector == nil {
		return true, nil
	}
	return matches(p.PodSelector, e.Labels)
}

func inBlock(b *networkingv1.IPBlock, ip netip.Addr) (bool, error) {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return false, fmt.Errorf("ipBlock cidr %q: %w", b.CIDR, err)
	}
	if !ip.IsValid() || !cidr.Contains(ip) {
		return false, nil
	}
	for _, ex := range b.Except {
		p, err := netip.ParsePrefix(ex)
		if err != nil {
			return false, fmt.Errorf("ipBlock except %q: %w", ex, err)
		}
		if p.Contains(ip) {
			return false, nil
		}
	}
	return true, nil
}

func portMatches(ports []networkingv1.NetworkPolicyPort, proto corev1.Protocol, port int32) (bool, error) {
	if len(ports) == 0 {
		return true, nil
	}
	for _, p := range ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pp != proto {
			continue
		}
		if p.Port == nil {
			return true, nil
		}
		if p.Port.StrVal != "" {
			return false, fmt.Errorf("named port %q: the evaluator knows no pod's port names", p.Port.StrVal)
		}
		lo, hi := p.Port.IntVal, p.Port.IntVal
		if p.EndPort != nil {
			hi = *p.EndPort
		}
		if port >= lo && port <= hi {
			return true, nil
		}
	}
	return false, nil
}

func matches(sel *metav1.LabelSelector, l map[string]string) (bool, error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	return s.Matches(labels.Set(l)), nil
}
