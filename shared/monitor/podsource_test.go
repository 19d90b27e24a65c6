package monitor

import (
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"
)

// A clientset without a real REST client (client-go's fake) cannot lend the source its connection: the monitor
// must say so at start rather than watch through an anonymous client.
func TestPodSourceNeedsTheClientsetsConnection(t *testing.T) {
	_, err := PodSource(fake.NewClientset(), "ucloud-jobs")
	if err == nil || !strings.Contains(err.Error(), "not a *rest.RESTClient with an HTTP client") {
		t.Fatalf("PodSource(fake clientset) = %v; want the error naming the missing REST client", err)
	}
}
