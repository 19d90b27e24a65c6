// Package isolation builds what fences a job's pods in: the NetworkPolicy of a job (or integrated
// application) and the hardened security context of its pods, from the operator's description of the
// cluster's address ranges. Job pods run any user's code, so everything here assumes they are hostile.
package isolation

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PrivateRanges are the address ranges every usual cluster takes its pod and service addresses from
// (RFC 1918, RFC 6598 shared space, IPv6 unique local). They are the default of the cluster ranges: an
// operator who does not say where the cluster is gets jobs that reach no private address at all, rather
// than jobs that reach the cluster. Narrow the settings to let jobs reach private addresses outside it.
var PrivateRanges = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"}

// Defaults of the settings that name pods.
const (
	DefaultMetadataCIDR   = "169.254.169.254/32"
	DefaultDNSNamespace   = "kube-system"
	DefaultDNSSelector    = "k8s-app=kube-dns"
	DefaultProxyNamespace = "ucloud-im"
	// DefaultProxySelector is the app-auth Knative Service's pods: the authorizing proxy in front of every
	// job's web port.
	DefaultProxySelector = "serving.knative.dev/service=app-auth"
)

// Env is the operator's description of the cluster, read by every function that builds job or
// integrated-application pods (job-create, config-update/reset/restart, monitor). A variable left unset
// (or empty) takes the default; a malformed one stops the function at start-up with the variable named.
type Env struct {
	// PodCIDRs and ServiceCIDRs are the cluster's pod and service ranges: job pods may not reach them
	// except for their own job's pods and DNS.
	PodCIDRs     CIDRs `envconfig:"CLUSTER_POD_CIDRS"`
	ServiceCIDRs CIDRs `envconfig:"CLUSTER_SERVICE_CIDRS"`
	// MetadataCIDRs are further addresses outside the cluster that jobs may not reach: the cloud's
	// metadata service (which hands out the node's credentials), and any node or storage network not
	// already in the ranges above.
	MetadataCIDRs CIDRs `envconfig:"METADATA_CIDRS"`
	// DNSNamespace and DNSSelector find the cluster's DNS server pods (port 53, UDP and TCP).
	DNSNamespace string   `envconfig:"CLUSTER_DNS_NAMESPACE"`
	DNSSelector  Selector `envconfig:"CLUSTER_DNS_SELECTOR"`
	// ProxyNamespace and ProxySelector find the pods that may reach a job's web port: the authorizing
	// proxy app-auth, which serves the application domain (an empty selector: every pod of the namespace).
	ProxyNamespace string   `envconfig:"APP_PROXY_NAMESPACE"`
	ProxySelector  Selector `envconfig:"APP_PROXY_SELECTOR"`
}

// CIDRs is a comma-separated list of address ranges in canonical form (10.244.0.0/16, fd00::/8).
type CIDRs []netip.Prefix

// Decode implements envconfig.Decoder.
func (c *CIDRs) Decode(value string) error {
	var out CIDRs
	for _, s := range strings.Split(value, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := parseCIDR(s)
		if err != nil {
			return err
		}
		out = append(out, p)
	}
	*c = out
	return nil
}

func parseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address range like 10.244.0.0/16 or fd00::/8", s)
	}
	if p.Masked() != p {
		// The apiserver refuses such an ipBlock, and the operator may have meant either of two ranges.
		return netip.Prefix{}, fmt.Errorf("%q has bits set beyond its /%d; the range is %s", s, p.Bits(), p.Masked())
	}
	return p, nil
}

func mustCIDRs(ss []string) CIDRs {
	out := make(CIDRs, len(ss))
	for i, s := range ss {
		p, err := parseCIDR(s)
		if err != nil {
			panic(err)
		}
		out[i] = p
	}
	return out
}

// Selector is a label selector in kubectl's syntax (k8s-app=kube-dns,tier in (a,b)).
type Selector struct {
	set bool
	sel *metav1.LabelSelector
}

// Decode implements envconfig.Decoder. An empty value selects every pod of the namespace.
func (s *Selector) Decode(value string) error {
	sel, err := metav1.ParseToLabelSelector(value)
	if err != nil {
		return fmt.Errorf("%q is not a label selector like k8s-app=kube-dns: %w", value, err)
	}
	// The same selector must build the same policy (job-create compares a hash of it on retries).
	if len(sel.MatchLabels) == 0 {
		sel.MatchLabels = nil
	}
	if len(sel.MatchExpressions) == 0 {
		sel.MatchExpressions = nil
	}
	*s = Selector{set: true, sel: sel}
	return nil
}

// MustSelector parses a selector that is known to be good (defaults, tests).
func MustSelector(value string) Selector {
	var s Selector
	if err := s.Decode(value); err != nil {
		panic(err)
	}
	return s
}

// withDefaults fills what the operator left unset, so a zero Env is the safe default too.
func (e Env) withDefaults() Env {
	if len(e.PodCIDRs) == 0 {
		e.PodCIDRs = mustCIDRs(PrivateRanges)
	}
	if len(e.ServiceCIDRs) == 0 {
		e.ServiceCIDRs = mustCIDRs(PrivateRanges)
	}
	if len(e.MetadataCIDRs) == 0 {
		e.MetadataCIDRs = mustCIDRs([]string{DefaultMetadataCIDR})
	}
	if e.DNSNamespace == "" {
		e.DNSNamespace = DefaultDNSNamespace
	}
	if !e.DNSSelector.set {
		e.DNSSelector = MustSelector(DefaultDNSSelector)
	}
	if e.ProxyNamespace == "" {
		e.ProxyNamespace = DefaultProxyNamespace
	}
	if !e.ProxySelector.set {
		e.ProxySelector = MustSelector(DefaultProxySelector)
	}
	return e
}

// internal is every range a job may not reach by address, per family, with ranges inside another dropped
// (the except list of an ipBlock must lie inside its cidr, so the families are kept apart).
func (e Env) internal() (v4, v6 []string) {
	all := slices.Concat(e.PodCIDRs, e.ServiceCIDRs, e.MetadataCIDRs)
	for i, p := range all {
		covered := false
		for j, q := range all {
			if i != j && q.Bits() <= p.Bits() && q.Contains(p.Addr()) && (q.Bits() < p.Bits() || j < i) {
				covered = true
				break
			}
		}
		if covered {
			continue
		}
		if p.Addr().Is4() {
			v4 = append(v4, p.String())
		} else {
			v6 = append(v6, p.String())
		}
	}
	slices.Sort(v4)
	slices.Sort(v6)
	return v4, v6
}
