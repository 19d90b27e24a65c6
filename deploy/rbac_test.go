package deploy_test

import (
	"context"
	"fmt"
	"testing"

	authv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// access is one verb on one resource: group/resource, optionally a namespace ("" = cluster-wide) and name.
type access struct {
	verb, group, resource, namespace, name string
}

func (a access) String() string {
	return fmt.Sprintf("%s %s.%s in %q %s", a.verb, a.resource, a.group, a.namespace, a.name)
}

const jobsNS = "ucloud-jobs"

func in(ns string, verbs []string, group, resource string) []access {
	var out []access
	for _, v := range verbs {
		out = append(out, access{verb: v, group: group, resource: resource, namespace: ns})
	}
	return out
}

func join(lists ...[]access) []access {
	var out []access
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// What no function may do: other namespaces, Secrets, anything cluster-wide.
var never = []access{
	{verb: "get", resource: "secrets", namespace: jobsNS}, {verb: "list", resource: "secrets", namespace: "ucloud-im"},
	{verb: "create", resource: "pods", namespace: "default"}, {verb: "delete", resource: "pods", namespace: "kube-system"},
	{verb: "list", resource: "pods"}, {verb: "list", resource: "nodes"}, {verb: "create", resource: "namespaces"},
	{verb: "get", resource: "namespaces", name: "kube-system", namespace: "kube-system"},
	{verb: "create", group: "rbac.authorization.k8s.io", resource: "rolebindings", namespace: jobsNS},
	{verb: "update", group: "apps", resource: "statefulsets", namespace: "ucloud-im"},
	{verb: "impersonate", resource: "serviceaccounts", namespace: "ucloud-im"},
}

// TestEachFunctionHasWhatItNeedsAndNoMore impersonates each function's ServiceAccount on the real apiserver
// (RBAC on) and asks it what it may do, as `kubectl auth can-i --as` does.
func TestEachFunctionHasWhatItNeedsAndNoMore(t *testing.T) {
	apply(t)
	iapp := join(in(jobsNS, []string{"get", "create", "delete"}, "", "pods"), in(jobsNS, []string{"create", "delete"}, "", "configmaps"),
		in(jobsNS, []string{"create", "delete"}, "", "services"), in(jobsNS, []string{"create", "delete"}, "networking.k8s.io", "networkpolicies"),
		[]access{{verb: "get", resource: "namespaces", namespace: jobsNS, name: jobsNS}})
	for _, tc := range []struct {
		fn      string
		needs   []access
		mustNot []access
	}{
		{"job-create",
			join(in(jobsNS, []string{"create", "get"}, "", "pods"), in(jobsNS, []string{"create", "get"}, "", "services"),
				in(jobsNS, []string{"create", "get"}, "networking.k8s.io", "networkpolicies"),
				in(jobsNS, []string{"create", "get"}, "networking.internal.knative.dev", "ingresses"),
				[]access{{verb: "get", resource: "namespaces", namespace: jobsNS, name: jobsNS}}),
			join(in(jobsNS, []string{"delete", "patch", "watch"}, "", "pods"), in(jobsNS, []string{"create"}, "coordination.k8s.io", "leases"))},
		{"job-control",
			join(in(jobsNS, []string{"list", "patch", "deletecollection"}, "", "pods"), in(jobsNS, []string{"list", "delete"}, "", "services"),
				in(jobsNS, []string{"delete"}, "networking.k8s.io", "networkpolicies"),
				in(jobsNS, []string{"deletecollection"}, "networking.internal.knative.dev", "ingresses")),
			join(in(jobsNS, []string{"create"}, "", "pods"), in(jobsNS, []string{"create"}, "networking.internal.knative.dev", "ingresses"))},
		{"config-update", iapp, join(in(jobsNS, []string{"list", "watch", "patch"}, "", "pods"), in(jobsNS, []string{"get"}, "coordination.k8s.io", "leases"))},
		{"config-reset", iapp, in(jobsNS, []string{"deletecollection"}, "", "pods")},
		{"config-restart", iapp, in(jobsNS, []string{"update"}, "", "configmaps")},
		{"monitor",
			join(in(jobsNS, []string{"get", "list", "watch", "create", "delete", "deletecollection"}, "", "pods"),
				in(jobsNS, []string{"create", "delete"}, "", "configmaps"), in(jobsNS, []string{"create", "delete"}, "", "services"),
				in(jobsNS, []string{"create", "delete"}, "networking.k8s.io", "networkpolicies"),
				in(jobsNS, []string{"get", "create", "update"}, "coordination.k8s.io", "leases")),
			join(in(jobsNS, []string{"patch"}, "", "pods"), in(jobsNS, []string{"create"}, "networking.internal.knative.dev", "ingresses"))},
		// It reads job pods, their logs, and execs shells into them; it changes nothing.
		{"job-streams",
			join(in(jobsNS, []string{"get", "list", "watch"}, "", "pods"), in(jobsNS, []string{"get"}, "", "pods/log"),
				in(jobsNS, []string{"create"}, "", "pods/exec")),
			join(in(jobsNS, []string{"create", "delete", "patch", "deletecollection"}, "", "pods"), in(jobsNS, []string{"create"}, "", "pods/portforward"),
				in(jobsNS, []string{"create"}, "", "pods/attach"), in(jobsNS, []string{"get"}, "", "services"))},
		// These never call the apiserver: they may do nothing at all there.
		{"config-retrieve", nil, join(in(jobsNS, []string{"get", "list"}, "", "pods"), []access{{verb: "get", resource: "namespaces", namespace: jobsNS, name: jobsNS}})},
		{"status-report", nil, in(jobsNS, []string{"get", "list"}, "", "pods")},
		// It watches the IM's per-rank Services to know where an app host's requests may go; nothing else.
		{"app-auth", in(jobsNS, []string{"list", "watch"}, "", "services"),
			join(in(jobsNS, []string{"get"}, "", "pods"), in(jobsNS, []string{"create", "update", "delete"}, "", "services"),
				in(jobsNS, []string{"list"}, "networking.internal.knative.dev", "ingresses"), in(jobsNS, []string{"list"}, "discovery.k8s.io", "endpointslices"),
				in("ucloud-im", []string{"list"}, "", "services"))},
	} {
		t.Run(tc.fn, func(t *testing.T) {
			cfg := rest.CopyConfig(env.Config)
			cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:ucloud-im:ucloud-im-" + tc.fn}
			cs := kubernetes.NewForConfigOrDie(cfg)
			for _, a := range tc.needs {
				if !allowed(t, cs, a) {
					t.Errorf("needs %s: denied", a)
				}
			}
			for _, a := range append(tc.mustNot, never...) {
				if allowed(t, cs, a) {
					t.Errorf("must not %s: allowed", a)
				}
			}
		})
	}
}

func allowed(t *testing.T, cs kubernetes.Interface, a access) bool {
	t.Helper()
	r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), &authv1.SelfSubjectAccessReview{
		Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: a.resource, Namespace: a.namespace, Name: a.name}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("access review %s: %v", a, err)
	}
	return r.Status.Allowed
}
