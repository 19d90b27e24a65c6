package knative_test

import (
	"net"
	"strconv"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// queueProxyPorts are the ports Knative's queue-proxy listens on in every revision's pod (the user
// container shares its network namespace): the metrics listener must not take one.
var queueProxyPorts = map[string]bool{"8012": true, "8013": true, "8022": true, "8112": true, "9090": true, "9091": true, "8008": true}

// Every function serves its metrics on a listener of its own, named by its revision's annotations for the
// PodMonitor: METRICS_ADDR on all interfaces at the annotated port, which is neither the serving port
// (the only one Knative routes) nor one of the queue-proxy's.
func TestEveryFunctionDeclaresItsMetricsPort(t *testing.T) {
	n := 0
	for _, u := range objects(t) {
		if u.GetKind() != "Service" || u.GetAPIVersion() != "serving.knative.dev/v1" {
			continue
		}
		n++
		ann, _, _ := unstructured.NestedStringMap(u.Object, "spec", "template", "metadata", "annotations")
		if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] == "" {
			t.Errorf("%s: revision annotations %v do not declare the metrics endpoint", u.GetName(), ann)
			continue
		}
		port := ann["prometheus.io/port"]
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		if len(containers) != 1 {
			t.Errorf("%s: %d containers", u.GetName(), len(containers))
			continue
		}
		c := containers[0].(map[string]any)
		addr := ""
		envs, _, _ := unstructured.NestedSlice(c, "env")
		for _, e := range envs {
			if m := e.(map[string]any); m["name"] == "METRICS_ADDR" {
				addr, _ = m["value"].(string)
			}
		}
		host, p, err := net.SplitHostPort(addr)
		if err != nil || p != port || host != "0.0.0.0" {
			t.Errorf("%s: METRICS_ADDR=%q, want 0.0.0.0:%s (the annotated port, reachable by the scraper)", u.GetName(), addr, port)
		}
		if queueProxyPorts[port] {
			t.Errorf("%s: metrics port %s is one the queue-proxy listens on", u.GetName(), port)
		}
		ports, _, _ := unstructured.NestedSlice(c, "ports")
		for _, cp := range ports {
			if v, _, _ := unstructured.NestedFieldNoCopy(cp.(map[string]any), "containerPort"); v != nil && toString(v) == port {
				t.Errorf("%s: the metrics port %s is the serving port Knative routes", u.GetName(), port)
			}
		}
	}
	if n == 0 {
		t.Fatal("no Knative Service found")
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatInt(int64(x), 10)
	case string:
		return x
	}
	return ""
}
