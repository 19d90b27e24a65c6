package appdomain_test

import (
	"reflect"
	"testing"

	"github.com/ucloud-im/knative-im/shared/appdomain"
)

// INGRESS_CLASS's default is the class an ingress without one gets: Kourier's, Knative's own default.
func TestIngressClassDefaultIsKourier(t *testing.T) {
	f, _ := reflect.TypeOf(appdomain.IngressEnv{}).FieldByName("IngressClass")
	if got := f.Tag.Get("default"); got != appdomain.DefaultIngressClass {
		t.Fatalf("INGRESS_CLASS defaults to %q, want %q", got, appdomain.DefaultIngressClass)
	}
}
