package knative_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	eventingv1alpha1 "knative.dev/eventing/pkg/apis/eventing/v1alpha1"
	"knative.dev/eventing/pkg/apis/feature"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/ucloud-im/knative-im/gateway"
	"github.com/ucloud-im/knative-im/knative"
	"github.com/ucloud-im/knative-im/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }

// validatable is a Knative API object: defaults then validation, as Knative's webhook runs them.
type validatable interface {
	runtime.Object
	SetDefaults(context.Context)
	Validate(context.Context) *apis.FieldError
}

func objects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	err := fs.WalkDir(knative.Manifests, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == "kustomization.yaml" {
			return err
		}
		raw, err := knative.Manifests.ReadFile(path)
		if err != nil {
			return err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if len(u.Object) > 0 {
				out = append(out, u)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("knative.Manifests holds no manifest") // every test reading them would check nothing
	}
	return out
}

// Every manifest passes Knative's own defaulting and validation, and the real apiserver accepts it
// (server-side dry run, with the Knative CRDs installed). Eventing validates with the feature the
// manifests need: sender identity (authentication-oidc), without which EventPolicies are refused.
func TestManifestsAreValidKnative(t *testing.T) {
	ctx := feature.ToContext(context.Background(), feature.Flags{feature.OIDCAuthentication: feature.Enabled})
	objs := objects(t)
	if len(objs) == 0 {
		t.Fatal("no manifests")
	}
	if _, err := env.Cluster(t).Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ucloud-im"}}, metav1.CreateOptions{}); err != nil {
		t.Logf("namespace: %v", err)
	}
	for _, u := range objs {
		t.Run(u.GetKind()+"/"+u.GetName(), func(t *testing.T) {
			var typed validatable
			switch u.GetKind() {
			case "Service":
				typed = &servingv1.Service{}
			case "Trigger":
				typed = &eventingv1.Trigger{}
			case "Broker":
				typed = &eventingv1.Broker{}
			case "SinkBinding":
				typed = &sourcesv1.SinkBinding{}
			case "EventPolicy":
				typed = &eventingv1alpha1.EventPolicy{}
			case "Ingress":
				typed = &netv1alpha1.Ingress{}
			default:
				t.Fatalf("no Knative validation for kind %s", u.GetKind())
			}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, typed, true); err != nil {
				t.Fatalf("decode: %v", err)
			}
			typed.SetDefaults(ctx)
			if err := typed.Validate(apis.WithinCreate(ctx)); err != nil {
				t.Fatalf("Knative validation: %v", err)
			}
			gvr, _ := meta(u)
			data, _ := u.MarshalJSON()
			force := true
			if _, err := env.Dynamic.Resource(gvr).Namespace(u.GetNamespace()).Patch(ctx, u.GetName(), types.ApplyPatchType, data,
				metav1.PatchOptions{FieldManager: "manifest-test", Force: &force, DryRun: []string{metav1.DryRunAll}}); err != nil {
				t.Fatalf("server-side dry run: %v", err)
			}
		})
	}
}

// The API host's KIngress is the one generated from the gateway's path table.
func TestAPIIngressIsGenerated(t *testing.T) {
	want, err := gateway.APIIngressYAML()
	if err != nil {
		t.Fatal(err)
	}
	got, err := knative.Manifests.ReadFile("api-ingress.yaml")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("knative/api-ingress.yaml is not what the path table makes (%v): run go generate ./knative", err)
	}
}

// The monitor never scales to zero and never runs twice.
func TestMonitorRunsExactlyOneReplica(t *testing.T) {
	for _, u := range objects(t) {
		if u.GetKind() == "Service" && u.GetName() == "monitor" {
			a, _, _ := unstructured.NestedStringMap(u.Object, "spec", "template", "metadata", "annotations")
			if a["autoscaling.knative.dev/min-scale"] != "1" || a["autoscaling.knative.dev/max-scale"] != "1" {
				t.Fatalf("monitor scale annotations %v", a)
			}
			return
		}
	}
	t.Fatal("no monitor Service")
}

// Every function under functions/ has its Knative Service, and every Service runs a function that exists.
func TestEveryFunctionHasAService(t *testing.T) {
	fns, err := os.ReadDir("../functions")
	if err != nil || len(fns) == 0 {
		t.Fatalf("no function under functions/ (%v)", err)
	}
	services := map[string]bool{}
	for _, u := range objects(t) {
		if u.GetKind() == "Service" {
			services[u.GetName()] = true
		}
	}
	for _, f := range fns {
		if !services[f.Name()] {
			t.Errorf("functions/%s has no Knative Service", f.Name())
		}
		delete(services, f.Name())
	}
	for s := range services {
		t.Errorf("Knative Service %s runs no function under functions/", s)
	}
}

// No function is exposed at a host of its own: Core reaches them through the API host's KIngress, browsers
// reach app-auth through a job's host, and the rest are called only inside the cluster.
func TestFunctionsAreClusterLocal(t *testing.T) {
	for _, u := range objects(t) {
		if u.GetKind() == "Service" && u.GetLabels()["networking.knative.dev/visibility"] != "cluster-local" {
			t.Errorf("Knative Service %s is publicly visible", u.GetName())
		}
	}
}

// app-auth is in the data path of every application: never scaled to zero (a cold start would stall every
// app), no per-pod cap on requests in flight (each open WebSocket is one), and the activator out of the
// path while it runs.
func TestAppAuthAlwaysRunsAndHoldsWebSockets(t *testing.T) {
	for _, u := range objects(t) {
		if u.GetKind() != "Service" || u.GetName() != "app-auth" {
			continue
		}
		var ksvc servingv1.Service
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &ksvc); err != nil {
			t.Fatal(err)
		}
		ann := ksvc.Spec.Template.Annotations
		spec := ksvc.Spec.Template.Spec
		if n, err := strconv.Atoi(ann["autoscaling.knative.dev/min-scale"]); err != nil || n < 1 {
			t.Errorf("min-scale %q, want >= 1", ann["autoscaling.knative.dev/min-scale"])
		}
		if ann["autoscaling.knative.dev/target-burst-capacity"] != "0" {
			t.Errorf("target-burst-capacity %q, want 0", ann["autoscaling.knative.dev/target-burst-capacity"])
		}
		if spec.ContainerConcurrency == nil || *spec.ContainerConcurrency != 0 {
			t.Errorf("containerConcurrency %v, want 0 (unlimited)", spec.ContainerConcurrency)
		}
		if spec.TimeoutSeconds == nil || *spec.TimeoutSeconds < 600 {
			t.Errorf("timeoutSeconds %v: a WebSocket lives at most this long", spec.TimeoutSeconds)
		}
		return
	}
	t.Fatal("no app-auth Knative Service")
}
