package knative_test

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// meta is the resource of an object: its kind in lower case plural, which holds for every kind here.
func meta(u *unstructured.Unstructured) (schema.GroupVersionResource, bool) {
	gv, err := schema.ParseGroupVersion(u.GetAPIVersion())
	return gv.WithResource(strings.ToLower(u.GetKind()) + "s"), err == nil
}
