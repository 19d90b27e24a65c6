package envtest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	networkingv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/ucloud-im/knative-im/test/env/localenv"
	"github.com/ucloud-im/knative-im/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }

func testPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"sleep", "inf"}}},
		},
	}
}

func waitPhase(t *testing.T, ns, name string, want corev1.PodPhase) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	envtest.Eventually(t, 30*time.Second, func() (err error) {
		pod, err = env.Clientset.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pod.Status.Phase != want {
			return fmt.Errorf("pod %s is %q, want %q", name, pod.Status.Phase, want)
		}
		return nil
	})
	return pod
}

// A pod without a node is placed by the real scheduler, run by KWOK, and garbage-collected with its owner.
func TestPodIsScheduledRunsAndIsCollectedWithItsOwner(t *testing.T) {
	ctx := context.Background()
	began := time.Now()
	ns := env.Namespace(t)
	owner, err := env.Clientset.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod := testPod("owned")
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID}}
	if _, err := env.Clientset.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := waitPhase(t, ns, "owned", corev1.PodRunning)
	if running.Spec.NodeName == "" {
		t.Fatalf("running pod has no node")
	}
	t.Logf("pod running on %s after %s", running.Spec.NodeName, time.Since(began))
	if err := env.Clientset.CoreV1().ConfigMaps(ns).Delete(ctx, owner.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, 30*time.Second, func() error {
		_, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, "owned", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("pod still there after its owner was deleted (err %v)", err)
	})
	t.Logf("pod collected after %s", time.Since(began))
}

// KWOK ends a running pod with the exit code a test asks for.
func TestPodEndsWithRequestedExitCode(t *testing.T) {
	tests := []struct {
		code  string
		phase corev1.PodPhase
		exit  int32
	}{
		{"0", corev1.PodSucceeded, 0},
		{"3", corev1.PodFailed, 3},
	}
	for _, tc := range tests {
		t.Run("exit-"+tc.code, func(t *testing.T) {
			ctx := context.Background()
			ns := env.Namespace(t)
			if _, err := env.Clientset.CoreV1().Pods(ns).Create(ctx, testPod("p"), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			waitPhase(t, ns, "p", corev1.PodRunning)
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, localenv.ExitCodeAnnotation, tc.code)
			if _, err := env.Clientset.CoreV1().Pods(ns).Patch(ctx, "p", "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			pod := waitPhase(t, ns, "p", tc.phase)
			st := pod.Status.ContainerStatuses
			if len(st) != 1 || st[0].State.Terminated == nil || st[0].State.Terminated.ExitCode != tc.exit {
				t.Fatalf("container status %+v, want terminated with exit code %d", st, tc.exit)
			}
		})
	}
}

// RBAC is on: a ServiceAccount with no role binding is refused by the real apiserver.
func TestServiceAccountWithoutRightsIsForbidden(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	sa, err := env.Clientset.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "nobody"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := env.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = tok.Status.Token
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("listing pods as %s/%s: got %v, want 403 Forbidden", ns, sa.Name, err)
	}
	// The same token is authenticated (not 401): the refusal is authorization, not a broken token.
	if apierrors.IsUnauthorized(err) {
		t.Fatalf("token was not authenticated: %v", err)
	}
}

// The Knative CRDs are served: typed objects round-trip through the real apiserver.
func TestKnativeResourcesAreServed(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	ksvc := &servingv1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "serving.knative.dev/v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: ns},
	}
	ksvc.Spec.Template.Spec.Containers = []corev1.Container{{Image: "example.org/hello"}}
	ing := &networkingv1alpha1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.internal.knative.dev/v1alpha1", Kind: "Ingress"},
		ObjectMeta: metav1.ObjectMeta{Name: "app-1-0", Namespace: ns},
		Spec: networkingv1alpha1.IngressSpec{Rules: []networkingv1alpha1.IngressRule{{
			Hosts:      []string{"app-1-0.apps.example.org"},
			Visibility: networkingv1alpha1.IngressVisibilityExternalIP,
			HTTP: &networkingv1alpha1.HTTPIngressRuleValue{Paths: []networkingv1alpha1.HTTPIngressPath{{
				Splits: []networkingv1alpha1.IngressBackendSplit{{Percent: 100, IngressBackend: networkingv1alpha1.IngressBackend{
					ServiceName: "j-1", ServiceNamespace: ns, ServicePort: intstr.FromInt32(8080),
				}}}},
			}},
		}}},
	}
	tests := []struct {
		name string
		gvr  schema.GroupVersionResource
		obj  runtime.Object
		path []string
		want any
	}{
		{"knative service", servingv1.SchemeGroupVersion.WithResource("services"), ksvc,
			[]string{"spec", "template", "spec", "containers"}, nil},
		{"kingress", networkingv1alpha1.SchemeGroupVersion.WithResource("ingresses"), ing,
			[]string{"spec", "rules"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{Object: raw}
			if _, err := env.Dynamic.Resource(tc.gvr).Namespace(ns).Create(ctx, u, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create %s: %v", tc.name, err)
			}
			got, err := env.Dynamic.Resource(tc.gvr).Namespace(ns).Get(ctx, u.GetName(), metav1.GetOptions{})
			if err != nil {
				t.Fatalf("read back %s: %v", tc.name, err)
			}
			val, found, err := unstructured.NestedFieldNoCopy(got.Object, tc.path...)
			if err != nil || !found {
				t.Fatalf("%s read back without %v: %v", tc.name, tc.path, got.Object)
			}
			wantVal, _, _ := unstructured.NestedFieldNoCopy(raw, tc.path...)
			if fmt.Sprint(val) != fmt.Sprint(wantVal) {
				t.Fatalf("%s %v = %v, want %v", tc.name, tc.path, val, wantVal)
			}
		})
	}
}

// The eventing CRDs the project deploys are served too: a Broker and a Trigger round-trip, and the
// remaining Serving CRDs are registered.
func TestEventingResourcesAreServed(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	broker := &eventingv1.Broker{
		TypeMeta:   metav1.TypeMeta{APIVersion: "eventing.knative.dev/v1", Kind: "Broker"},
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns},
	}
	trigger := &eventingv1.Trigger{
		TypeMeta:   metav1.TypeMeta{APIVersion: "eventing.knative.dev/v1", Kind: "Trigger"},
		ObjectMeta: metav1.ObjectMeta{Name: "status", Namespace: ns},
		Spec: eventingv1.TriggerSpec{Broker: "default", Filter: &eventingv1.TriggerFilter{
			Attributes: eventingv1.TriggerFilterAttributes{"type": "example.job.state.changed"}}},
	}
	for _, obj := range []runtime.Object{broker, trigger} {
		raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: raw}
		gvr := eventingv1.SchemeGroupVersion.WithResource(strings.ToLower(u.GetKind()) + "s")
		if _, err := env.Dynamic.Resource(gvr).Namespace(ns).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", u.GetKind(), err)
		}
		if _, err := env.Dynamic.Resource(gvr).Namespace(ns).Get(ctx, u.GetName(), metav1.GetOptions{}); err != nil {
			t.Fatalf("read back %s: %v", u.GetKind(), err)
		}
	}
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, res := range []string{"sinkbindings.sources.knative.dev", "routes.serving.knative.dev",
		"configurations.serving.knative.dev", "revisions.serving.knative.dev", "domainmappings.serving.knative.dev"} {
		if _, err := env.Dynamic.Resource(crds).Get(ctx, res, metav1.GetOptions{}); err != nil {
			t.Errorf("CRD %s: %v", res, err)
		}
	}
}

// The environment's PostgreSQL takes connections and gives each test its own database.
func TestPostgresGivesEachTestADatabase(t *testing.T) {
	ctx := context.Background()
	a, b := env.Database(t), env.Database(t)
	if a == b {
		t.Fatalf("two tests got the same database %s", a)
	}
	conn, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE x (id int primary key)"); err != nil {
		t.Fatal(err)
	}
	other, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	if _, err := other.Exec(ctx, "SELECT * FROM x"); err == nil {
		t.Fatalf("table of one test's database is visible in another's")
	}
}

// The local jobs namespace enforces Pod Security baseline as deploy/'s does: the apiserver's built-in
// PodSecurity admission refuses a privileged pod there and accepts an ordinary one.
func TestJobsNamespaceEnforcesPodSecurityBaseline(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	env.FilesystemClaim(t, ns, "ucloud-filesystem")
	privileged := testPod("privileged")
	privileged.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	_, err := env.Clientset.CoreV1().Pods(ns).Create(ctx, privileged, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
		t.Fatalf("privileged pod: got %v, want refused by PodSecurity", err)
	}
	if _, err := env.Clientset.CoreV1().Pods(ns).Create(ctx, testPod("ordinary"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("ordinary pod: %v", err)
	}
}
