package kube

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

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
