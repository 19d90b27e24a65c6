package knative_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"knative.dev/pkg/kmeta"

	"github.com/ucloud-im/knative-im/shared/status"
)

// oidcServiceAccount is the ServiceAccount Knative Eventing gives a resource for sender identity, as
// knative.dev/eventing/pkg/auth.GetOIDCServiceAccountNameForResource (v0.50.0) names it:
// kmeta.ChildName(<name>, "-oidc-<group>-<kind>"), lower case. A Trigger delivers with it; a SinkBinding's
// subject sends with it.
func oidcServiceAccount(group, kind, name string) string {
	return strings.ToLower(kmeta.ChildName(name, "-oidc-"+group+"-"+kind))
}

func find(t *testing.T, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, u := range objects(t) {
		if u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	t.Fatalf("no %s %s in knative/", kind, name)
	return nil
}

func containerEnv(t *testing.T, svc *unstructured.Unstructured) map[string]string {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(svc.Object, "spec", "template", "spec", "containers")
	out := map[string]string{}
	for _, c := range containers {
		vars, _, _ := unstructured.NestedSlice(c.(map[string]any), "env")
		for _, v := range vars {
			m := v.(map[string]any)
			if s, ok := m["value"].(string); ok {
				out[m["name"].(string)] = s
			}
		}
	}
	return out
}

// The chain monitor -> Broker -> Trigger -> status-report is closed end to end: the Broker's EventPolicy
// admits only the monitor's SinkBinding, and only job state events; status-report admits exactly the
// identity the job-state Trigger delivers with, for the audience the Trigger names, as its own
// EventPolicy says; the monitor sends the SinkBinding's token. Changing one of them alone fails here.
func TestEventSendersMatchTheEventPolicies(t *testing.T) {
	trigger := find(t, "Trigger", "job-state-to-status-report")
	audience, _, _ := unstructured.NestedString(trigger.Object, "spec", "subscriber", "audience")
	typ, _, _ := unstructured.NestedString(trigger.Object, "spec", "filter", "attributes", "type")
	if typ != status.EventType {
		t.Fatalf("the Trigger filters %q, status-report takes %q", typ, status.EventType)
	}
	sr := containerEnv(t, find(t, "Service", "status-report"))
	if audience == "" || sr["EVENT_AUDIENCE"] != audience {
		t.Errorf("status-report's EVENT_AUDIENCE %q is not the Trigger's subscriber.audience %q", sr["EVENT_AUDIENCE"], audience)
	}
	wantSender := "system:serviceaccount:" + trigger.GetNamespace() + ":" + oidcServiceAccount("eventing.knative.dev", "Trigger", trigger.GetName())
	if sr["EVENT_SENDERS"] != wantSender {
		t.Errorf("status-report's EVENT_SENDERS %q, want only the Trigger's identity %q", sr["EVENT_SENDERS"], wantSender)
	}

	for _, tc := range []struct {
		policy, toKind, toName, fromKind, fromName string
	}{
		{"broker-from-monitor", "Broker", "default", "SinkBinding", "monitor-sink"},
		{"status-report-from-job-state-trigger", "Service", "status-report", "Trigger", trigger.GetName()},
	} {
		p := find(t, "EventPolicy", tc.policy)
		to, _, _ := unstructured.NestedSlice(p.Object, "spec", "to")
		from, _, _ := unstructured.NestedSlice(p.Object, "spec", "from")
		filters, _, _ := unstructured.NestedSlice(p.Object, "spec", "filters")
		if len(to) != 1 || len(from) != 1 || len(filters) != 1 {
			t.Errorf("%s: want exactly one target, one sender and one filter: %v", tc.policy, p.Object["spec"])
			continue
		}
		toRef, _, _ := unstructured.NestedStringMap(to[0].(map[string]any), "ref")
		fromRef, _, _ := unstructured.NestedStringMap(from[0].(map[string]any), "ref")
		exact, _, _ := unstructured.NestedStringMap(filters[0].(map[string]any), "exact")
		if toRef["kind"] != tc.toKind || toRef["name"] != tc.toName || fromRef["kind"] != tc.fromKind || fromRef["name"] != tc.fromName ||
			exact["type"] != status.EventType || len(exact) != 1 {
			t.Errorf("%s: to %v, from %v, filter %v; want %s %s from %s %s, type %s only", tc.policy, toRef, fromRef, exact,
				tc.toKind, tc.toName, tc.fromKind, tc.fromName, status.EventType)
		}
	}

	sb := find(t, "SinkBinding", "monitor-sink")
	subject, _, _ := unstructured.NestedString(sb.Object, "spec", "subject", "name")
	sink, _, _ := unstructured.NestedString(sb.Object, "spec", "sink", "ref", "name")
	if subject != "monitor" || sink != "default" {
		t.Errorf("the SinkBinding binds %q to %q, want the monitor to the Broker", subject, sink)
	}
	if env := containerEnv(t, find(t, "Service", "monitor")); env["EVENT_TOKEN_FILE"] != "/oidc/token" {
		t.Errorf("the monitor sends with %q, not the SinkBinding's OIDC token /oidc/token", env["EVENT_TOKEN_FILE"])
	}
}
