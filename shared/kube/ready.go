package kube

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// NamespaceReady is a readiness check: the apiserver answers and the jobs namespace is readable.
func NamespaceReady(cs kubernetes.Interface, ns string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return err
	}
}
