package knative_test

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// meta is the resource of an object: its kind in lower case plural (Ingress -> ingresses), which holds for
// every kind here.
func meta(u *unstructured.Unstructured) (schema.GroupVersionResource, bool) {
	gv, err := schema.ParseGroupVersion(u.GetAPIVersion())
	kind := strings.ToLower(u.GetKind())
	if strings.HasSuffix(kind, "s") {
		return gv.WithResource(kind + "es"), err == nil
	}
	if strings.HasSuffix(kind, "y") {
		return gv.WithResource(strings.TrimSuffix(kind, "y") + "ies"), err == nil
	}
	return gv.WithResource(kind + "s"), err == nil
}
