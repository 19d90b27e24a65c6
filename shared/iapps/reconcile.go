package iapps

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/kube"
)

// Outcome says what Reconcile found or did.
type Outcome string

// The outcomes of Reconcile.
const (
	Unchanged Outcome = "unchanged" // the pod runs the stored configuration
	Created   Outcome = "created"   // the pod (and its objects) were created
	Replaced  Outcome = "replaced"  // a pod with an older configuration was deleted and a new one created
	Stopped   Outcome = "stopped"   // the configuration says the app should not run; no pod is left
)

// podGoneTimeout bounds the wait for a deleted pod's name to become free again.
const podGoneTimeout = 10 * time.Second

// ErrPodTerminating is a replaced pod that did not go away in time; a later reconcile finishes the job.
var ErrPodTerminating = errors.New("the application's previous pod is still terminating")

// Result is what Reconcile found or did, and the folders it left out of the pod because the owner may no
// longer use them (a Syncthing pod without them, or, for the terminal, Stopped).
type Result struct {
	Outcome Outcome
	Dropped []string
}

// Reconcile makes the rank-0 pod of rec's job match the stored configuration (the original's rule: a pod
// whose ETag annotation differs is replaced) and creates it when it is missing and should run. It is the
// step the monitor runs for a deleted pod, and the one update runs to apply a new configuration. Every
// time, the owner's access to the configuration's folders is decided again (access, on the stored facts):
// a folder the owner may no longer use is left out of the pod (its pod is replaced), or the application
// stops when it cannot run without it.
func Reconcile(ctx context.Context, cs kubernetes.Interface, ns string, h App, rec Record, access Access) (Result, error) {
	if !rec.Active() {
		return Result{Outcome: Stopped}, nil
	}
	cfg, dropped, mayRun, err := effective(ctx, access, h, rec)
	if err != nil {
		return Result{}, err
	}
	res := func(o Outcome) (Result, error) { return Result{Outcome: o, Dropped: dropped}, nil }
	pods := cs.CoreV1().Pods(ns)
	name := kube.PodName(rec.JobID, 0)
	shouldRun := mayRun && h.ShouldRun(cfg, rec.Activity())
	replaced := false
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return Result{}, err
	case pod.DeletionTimestamp == nil && pod.Annotations[kube.AnnotationIAppETag] == rec.ETag &&
		pod.Annotations[AnnotationDropped] == strings.Join(dropped, ",") && shouldRun:
		return res(Unchanged)
	default:
		if err := deleteRank0(ctx, cs, ns, rec.JobID); err != nil {
			return Result{}, err
		}
		if err := waitGone(ctx, cs, ns, name); err != nil {
			return Result{}, err
		}
		replaced = true
	}
	if !shouldRun {
		return res(Stopped)
	}
	objs, err := h.MakeObjects(Job{ID: rec.JobID, Key: rec.Key, ETag: rec.ETag, Namespace: ns}, cfg)
	if err != nil {
		return Result{}, err
	}
	if len(dropped) > 0 {
		objs.Pod.Annotations[AnnotationDropped] = strings.Join(dropped, ",")
	}
	if err := createObjects(ctx, cs, ns, objs); err != nil {
		return Result{}, err
	}
	if replaced {
		return res(Replaced)
	}
	return res(Created)
}

// deleteRank0 deletes the job's rank-0 pod at once (grace period 0); its objects follow by garbage
// collection. A pod already gone is fine.
func deleteRank0(ctx context.Context, cs kubernetes.Interface, ns, jobID string) error {
	err := cs.CoreV1().Pods(ns).Delete(ctx, kube.PodName(jobID, 0), metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0), PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func waitGone(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	ctx, cancel := context.WithTimeout(ctx, podGoneTimeout)
	defer cancel()
	for {
		_, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil && ctx.Err() == nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ErrPodTerminating, name)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// createObjects creates the pod, then its objects owned by it. An object left by an earlier pod of the
// same job (its garbage collection still pending) is deleted and created anew for the new pod, so a
// restart never leaves the pod without its service (a bug of the original).
func createObjects(ctx context.Context, cs kubernetes.Interface, ns string, objs Objects) error {
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, objs.Pod, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create pod %s: %w", objs.Pod.Name, err)
	}
	owner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}}
	if cm := objs.ConfigMap; cm != nil {
		cm.OwnerReferences = owner
		c := cs.CoreV1().ConfigMaps(ns)
		if err := recreate(ctx, cm.Name, func() error { _, err := c.Create(ctx, cm, metav1.CreateOptions{}); return err },
			func() error { return c.Delete(ctx, cm.Name, metav1.DeleteOptions{}) }); err != nil {
			return err
		}
	}
	for _, svc := range objs.Services {
		svc.OwnerReferences = owner
		c := cs.CoreV1().Services(ns)
		if err := recreate(ctx, svc.Name, func() error { _, err := c.Create(ctx, svc, metav1.CreateOptions{}); return err },
			func() error { return c.Delete(ctx, svc.Name, metav1.DeleteOptions{}) }); err != nil {
			return err
		}
	}
	if p := objs.Policy; p != nil {
		p.OwnerReferences = owner
		c := cs.NetworkingV1().NetworkPolicies(ns)
		if err := recreate(ctx, p.Name, func() error { _, err := c.Create(ctx, p, metav1.CreateOptions{}); return err },
			func() error { return c.Delete(ctx, p.Name, metav1.DeleteOptions{}) }); err != nil {
			return err
		}
	}
	return nil
}

// recreate creates an object, replacing a leftover of the same name.
func recreate(ctx context.Context, name string, create, del func() error) error {
	for attempt := 0; ; attempt++ {
		err := create()
		if err == nil || !apierrors.IsAlreadyExists(err) {
			if err != nil {
				return fmt.Errorf("create %s: %w", name, err)
			}
			return nil
		}
		if attempt == 20 {
			return fmt.Errorf("create %s: a leftover of an earlier pod is still there", name)
		}
		if err := del(); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("remove leftover %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kubeError maps Kubernetes failures to what the user sees: an unreachable or overloaded apiserver is 503.
func kubeError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrPodTerminating):
		return fn.Wrap(err, http.StatusServiceUnavailable, "RESTARTING", "The application is still restarting. Please try again in a moment.")
	case kube.IsUnavailable(err):
		return fn.Wrap(err, http.StatusServiceUnavailable, "CLUSTER_UNAVAILABLE", "The provider's cluster is unavailable. Please try again later.")
	}
	return fn.Wrap(err, http.StatusInternalServerError, "CLUSTER_ERROR", "The provider could not apply the configuration. Please try again later.")
}
