// Package kube holds what the functions share about Kubernetes: the names, labels and annotations UCloud's
// tooling relies on, client construction, and the object builders.
package kube

import (
	"context"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Labels and annotations, as the original IM names them.
const (
	LabelJobID         = "ucloud.dk/jobId"
	LabelRank          = "ucloud.dk/rank"
	LabelWorkspaceID   = "ucloud.dk/workspaceId"
	AnnotationIAppETag = "ucloud.dk/iapp-etag"
	AnnotationIAppName = "ucloud.dk/iapp-name"
	AnnotationExpiry   = "ucloud.dk/expiry"
	// AnnotationReplicas is the job's number of ranks: the monitor folds a job's state only once it saw them all.
	AnnotationReplicas = "ucloud.dk/replicas"
	// AnnotationTimeAllocation is the job's time allocation in milliseconds; extend raises it.
	AnnotationTimeAllocation = "ucloud.dk/time-allocation-ms"
	// ContainerName is the job's main container.
	ContainerName = "user-job"
)

// PodName is the pod of one rank of a job: j-<jobId>-job-<rank>.
func PodName(jobID string, rank int) string { return fmt.Sprintf("j-%s-job-%d", jobID, rank) }

// ServiceName is the job's headless service: j-<jobId>.
func ServiceName(jobID string) string { return "j-" + jobID }

// PolicyName is the job's network policy: policy-<jobId>.
func PolicyName(jobID string) string { return "policy-" + jobID }

// JobLabels are the labels of every object of a job's rank.
func JobLabels(jobID string, rank int, project string) map[string]string {
	l := map[string]string{LabelJobID: jobID, LabelRank: strconv.Itoa(rank)}
	if project != "" {
		l[LabelWorkspaceID] = project
	}
	return l
}

// Config is the client configuration: from kubeconfig when given (outside a cluster), in-cluster otherwise.
func Config(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("KUBECONFIG %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("no KUBECONFIG and not in a cluster: %w", err)
	}
	return cfg, nil
}

// NewClientset builds a clientset with a bounded per-request timeout, so an unreachable apiserver fails a
// call instead of hanging it.
func NewClientset(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := ClientConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// ClientConfig is Config with the limits every client of this project uses.
func ClientConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := Config(kubeconfig)
	if err != nil {
		return nil, err
	}
	// client-go's default of 5 requests/s would make every configuration change wait its turn.
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 100, 200
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	return cfg, nil
}

// NamespaceReady is a readiness check: the apiserver answers and the jobs namespace is readable.
func NamespaceReady(cs kubernetes.Interface, ns string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return err
	}
}

// Ensure creates obj. When an object of that name already exists it answers that object if same says it is
// the one meant (a retry), and an error wrapping conflict otherwise; a retried call thus succeeds and a
// different object under the name is refused, not silently adopted.
func Ensure[T metav1.Object](ctx context.Context, obj T,
	create func(context.Context, T, metav1.CreateOptions) (T, error),
	get func(context.Context, string, metav1.GetOptions) (T, error),
	same func(existing T) bool, conflict error) (T, error) {
	made, err := create(ctx, obj, metav1.CreateOptions{})
	if err == nil || !apierrors.IsAlreadyExists(err) {
		return made, err
	}
	existing, err := get(ctx, obj.GetName(), metav1.GetOptions{})
	if err != nil {
		return existing, err
	}
	if !same(existing) {
		return existing, fmt.Errorf("%w: %s", conflict, obj.GetName())
	}
	return existing, nil
}
