package deploy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/utils/ptr"

	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/test/envtest"
)

// jobsNamespaceReady applies the kustomization (ucloud-jobs with its Pod Security labels and policies) and
// waits until pods can be created there.
func jobsNamespaceReady(t *testing.T) {
	t.Helper()
	apply(t)
	envtest.Eventually(t, 30*time.Second, func() error {
		_, err := env.Clientset.CoreV1().ServiceAccounts(jobsNS).Get(context.Background(), "default", metav1.GetOptions{})
		return err
	})
}

// TestEveryBuiltObjectIsAcceptedInTheJobsNamespace: the pods and NetworkPolicies job-create and the
// applications build (with the manifests' settings) are created for real in ucloud-jobs as deploy/ makes it,
// where the apiserver enforces Pod Security baseline.
func TestEveryBuiltObjectIsAcceptedInTheJobsNamespace(t *testing.T) {
	jobsNamespaceReady(t)
	ctx := context.Background()
	ns, err := env.Clientset.CoreV1().Namespaces().Get(ctx, jobsNS, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "baseline" {
		t.Fatalf("ucloud-jobs enforces %q, want baseline", got)
	}
	// Ids of this run only: a run killed before its clean-up leaves nothing in the way of the next.
	b := buildJobs(t, readShipped(t), jobsNS, int(time.Now().UnixMilli()%1_000_000_000)*10)
	pods := env.Clientset.CoreV1().Pods(jobsNS)
	pols := env.Clientset.NetworkingV1().NetworkPolicies(jobsNS)
	for _, p := range b.pods() {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Errorf("pod %s (%s): the apiserver refused it: %v", p.Name, p.Spec.Containers[0].Image, err)
			continue
		}
		t.Cleanup(func() {
			_ = pods.Delete(context.Background(), p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		})
	}
	for _, p := range b.policies() {
		made, err := pols.Create(ctx, p.DeepCopy(), metav1.CreateOptions{})
		if err != nil {
			t.Errorf("NetworkPolicy %s: the apiserver refused it: %v", p.Name, err)
			continue
		}
		// What the table test evaluates is what the apiserver stores: nothing defaulted or dropped.
		if !equality.Semantic.DeepEqual(p.Spec, made.Spec) {
			t.Errorf("NetworkPolicy %s stored differently from built:\n%s", p.Name, diff.Diff(p.Spec, made.Spec))
		}
		t.Cleanup(func() { _ = pols.Delete(context.Background(), p.Name, metav1.DeleteOptions{}) })
	}
}

// TestPrivilegedPodsAreRefusedInTheJobsNamespace plays a user who gets a pod of their own design into
// ucloud-jobs (a bug in a builder, a compromised function): the apiserver refuses every way out of the
// container, and nothing is created.
func TestPrivilegedPodsAreRefusedInTheJobsNamespace(t *testing.T) {
	jobsNamespaceReady(t)
	ctx := context.Background()
	base := func(name string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: jobsNS, Labels: kube.JobLabels("6601", 0, "")},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, AutomountServiceAccountToken: ptr.To(false),
				Containers: []corev1.Container{{Name: kube.ContainerName, Image: "ubuntu:24.04", Command: []string{"sleep", "infinity"}}}},
		}
	}
	cases := map[string]func(*corev1.Pod){
		"privileged": func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		},
		"sys-admin": func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}}}
		},
		"net-raw-added": func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_RAW"}}}
		},
		"host-network": func(p *corev1.Pod) { p.Spec.HostNetwork = true },
		"host-pid":     func(p *corev1.Pod) { p.Spec.HostPID = true },
		"host-path": func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "root", MountPath: "/host"}}
		},
		"unconfined-seccomp": func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}}
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			p := base(envtest.RandomName("attack-" + name))
			change(p)
			_, err := env.Clientset.CoreV1().Pods(jobsNS).Create(ctx, p, metav1.CreateOptions{})
			if err == nil {
				_ = env.Clientset.CoreV1().Pods(jobsNS).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
				t.Fatal("the apiserver accepted the pod")
			}
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `violates PodSecurity "baseline`) {
				t.Fatalf("refused for another reason than Pod Security baseline: %v", err)
			}
			if _, err := env.Clientset.CoreV1().Pods(jobsNS).Get(ctx, p.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Fatalf("the refused pod exists: %v", err)
			}
		})
	}
	// The same pod without the change is accepted: the refusals are the changes', not the pod's.
	p := base(envtest.RandomName("attack-control"))
	if _, err := env.Clientset.CoreV1().Pods(jobsNS).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("the unchanged pod was refused: %v", err)
	}
	_ = env.Clientset.CoreV1().Pods(jobsNS).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
}
