package appdomain

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	netclient "knative.dev/networking/pkg/client/clientset/versioned"

	"github.com/ucloud-im/knative-im/shared/kube"
)

// ErrTaken is a Service or KIngress of a job's app name that belongs to another pod.
var ErrTaken = errors.New("the app's Service or Ingress exists and belongs to another pod")

// Apps exposes job ranks on the application domain. The job function calls it right after it creates a
// rank's pod: the route then exists as long as the pod does (the ingress answers 503 until the pod is
// ready), one writer makes it, and the garbage collector removes it with the pod.
type Apps struct {
	Kube     kubernetes.Interface
	Net      netclient.Interface
	Settings Settings
}

// Expose makes the rank's Service and KIngress. Repeating it for the same pod succeeds.
func (a *Apps) Expose(ctx context.Context, pod *corev1.Pod, jobID string, rank, webPort int) error {
	svcs := a.Kube.CoreV1().Services(pod.Namespace)
	if _, err := kube.Ensure(ctx, AppService(pod, jobID, rank, webPort), svcs.Create, svcs.Get,
		func(s *corev1.Service) bool { return ownedByPod(s.OwnerReferences, pod) }, ErrTaken); err != nil {
		return fmt.Errorf("app service: %w", err)
	}
	ings := a.Net.NetworkingV1alpha1().Ingresses(a.Settings.Namespace)
	if _, err := kube.Ensure(ctx, AppIngress(pod, jobID, rank, a.Settings), ings.Create, ings.Get,
		func(i *netv1alpha1.Ingress) bool { return ownedByPod(i.OwnerReferences, pod) }, ErrTaken); err != nil {
		return fmt.Errorf("app ingress: %w", err)
	}
	return nil
}

// Remove deletes the job's routes at once; the garbage collector would too, but only after the pods are
// gone, and a terminated job's address must stop answering when Core is told it is terminated.
func (a *Apps) Remove(ctx context.Context, jobID string) error {
	sel := metav1.ListOptions{LabelSelector: kube.LabelJobID + "=" + jobID + "," + LabelManagedBy + "=" + ManagedBy}
	if err := a.Net.NetworkingV1alpha1().Ingresses(a.Settings.Namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, sel); err != nil {
		return fmt.Errorf("app ingresses of job %s: %w", jobID, err)
	}
	svcs, err := a.Kube.CoreV1().Services(a.Settings.Namespace).List(ctx, sel)
	if err != nil {
		return fmt.Errorf("app services of job %s: %w", jobID, err)
	}
	for _, s := range svcs.Items {
		if err := a.Kube.CoreV1().Services(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("app service %s: %w", s.Name, err)
		}
	}
	return nil
}

func ownedByPod(refs []metav1.OwnerReference, pod *corev1.Pod) bool {
	for _, r := range refs {
		if r.Kind == "Pod" && r.UID == pod.UID {
			return true
		}
	}
	return false
}
