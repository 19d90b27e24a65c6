package deploy_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/pkg/apis"

	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	eventingv1alpha1 "knative.dev/eventing/pkg/apis/eventing/v1alpha1"
	"knative.dev/eventing/pkg/apis/feature"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

type validatable interface {
	runtime.Object
	SetDefaults(context.Context)
	Validate(context.Context) *apis.FieldError
}

// knativeType is the Go type of a Knative kind, or nil for Kubernetes' own kinds.
func knativeType(u *unstructured.Unstructured) validatable {
	switch u.GroupVersionKind().Group + "/" + u.GetKind() {
	case "serving.knative.dev/Service":
		return &servingv1.Service{}
	case "eventing.knative.dev/Broker":
		return &eventingv1.Broker{}
	case "eventing.knative.dev/Trigger":
		return &eventingv1.Trigger{}
	case "sources.knative.dev/SinkBinding":
		return &sourcesv1.SinkBinding{}
	case "eventing.knative.dev/EventPolicy":
		return &eventingv1alpha1.EventPolicy{}
	case "networking.internal.knative.dev/Ingress":
		return &netv1alpha1.Ingress{}
	}
	return nil
}

func resource(u *unstructured.Unstructured) schema.GroupVersionResource {
	kind := strings.ToLower(u.GetKind())
	switch {
	case strings.HasSuffix(kind, "s"):
		kind += "es"
	case strings.HasSuffix(kind, "y"):
		kind = strings.TrimSuffix(kind, "y") + "ies"
	default:
		kind += "s"
	}
	return u.GroupVersionKind().GroupVersion().WithResource(kind)
}

// apply validates every Knative object with Knative's own SetDefaults and Validate, then applies everything
// (server-side apply, dry run and then for real: the RBAC tests need the objects) to the test apiserver with
// Knative's CRDs. Eventing validates with sender identity (authentication-oidc) on, as the README requires.
func apply(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	env.Cluster(t)
	ctx := feature.ToContext(context.Background(), feature.Flags{feature.OIDCAuthentication: feature.Enabled})
	objs := render(t)
	// Namespaces first, then the rest in the order kustomize gives.
	for _, first := range []bool{true, false} {
		for _, u := range objs {
			if (u.GetKind() == "Namespace") != first {
				continue
			}
			if typed := knativeType(u); typed != nil {
				if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, typed, true); err != nil {
					t.Fatalf("%s %s: decode: %v", u.GetKind(), u.GetName(), err)
				}
				typed.SetDefaults(ctx)
				if err := typed.Validate(apis.WithinCreate(ctx)); err != nil {
					t.Fatalf("%s %s: Knative validation: %v", u.GetKind(), u.GetName(), err)
				}
			}
			data, err := u.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			force := true
			// A server-side dry run first (what an operator's `kubectl apply --dry-run=server` sees; objects of a
			// namespace not made yet are refused then, so namespaces come first), then for real.
			for _, dry := range [][]string{{metav1.DryRunAll}, nil} {
				if _, err := env.Dynamic.Resource(resource(u)).Namespace(u.GetNamespace()).Patch(ctx, u.GetName(), types.ApplyPatchType, data,
					metav1.PatchOptions{FieldManager: "deploy-test", Force: &force, DryRun: dry}); err != nil {
					t.Fatalf("%s %s/%s: the apiserver refused it (dry run %v): %v", u.GetKind(), u.GetNamespace(), u.GetName(), dry != nil, err)
				}
			}
		}
	}
	return objs
}

func TestEverythingAppliesToARealAPIServer(t *testing.T) {
	objs := apply(t)
	kinds := map[string]int{}
	for _, u := range objs {
		kinds[u.GetKind()]++
	}
	t.Logf("applied %d objects: %v", len(objs), kinds)
}
