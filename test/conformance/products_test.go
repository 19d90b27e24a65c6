package conformance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/test/conformance"
)

// core2 turns each flag of retrieveProducts into a feature and lets users do exactly what is claimed
// (sessions, extensions, peers, logs); a flag claimed for something the IM does not do gives users a
// button that fails. So every claimed flag is tried here, and every flag not claimed is checked refused.
func TestRetrieveProductsClaimsOnlyWhatWorks(t *testing.T) {
	r := newRig(t)
	a := r.send(r.fixture("jobs.retrieveProducts"))
	r.fits(a)
	var products struct {
		Responses []struct {
			Product struct{ ID, Category, Provider string }
			Docker  map[string]bool `json:"docker"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(a.body, &products); err != nil {
		t.Fatal(err)
	}
	var ids, want []string
	for _, p := range products.Responses {
		ids = append(ids, p.Product.ID)
		if p.Product.Provider != "k8s" || p.Product.Category == "" {
			t.Errorf("product reference %+v", p.Product)
		}
		if !slices.Equal(sortedTrue(p.Docker), sortedTrue(products.Responses[0].Docker)) {
			t.Errorf("%s claims %v, %s claims %v: the probes below assume one set", p.Product.ID, sortedTrue(p.Docker), products.Responses[0].Product.ID, sortedTrue(products.Responses[0].Docker))
		}
	}
	for _, p := range r.jobs.Catalog.Products {
		want = append(want, p.ID)
	}
	sort.Strings(ids)
	sort.Strings(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("retrieveProducts lists %v, the catalogue has %v", ids, want)
	}
	claims := products.Responses[0].Docker
	t.Logf("docker support claimed: %v", sortedTrue(claims))
	if !claims["enabled"] {
		t.Fatal("containers are what this provider runs, but docker.enabled is not claimed")
	}

	// The job the probes act on, created as core2 creates it, after the job it names as its peer.
	r.createPeer(t)
	r.fits(r.send(r.fixture("jobs.create")))

	web := r.send(r.fixture("jobs.interactiveSession.WEB"))
	if claims["web"] && web.status != http.StatusOK {
		t.Errorf("web is claimed but a web session for a web application answers %d %s", web.status, web.body)
	}
	for flag, name := range map[string]string{"terminal": "jobs.interactiveSession.SHELL", "vnc": "jobs.interactiveSession.VNC"} {
		a := r.send(r.fixture(name))
		if claims[flag] != (a.status/100 == 2) {
			t.Errorf("%s claimed %v, but %s answers %d %s", flag, claims[flag], name, a.status, a.body)
		}
	}

	if claims["timeExtension"] {
		a := r.send(r.fixture("jobs.extend"))
		pod, err := env.Clientset.CoreV1().Pods(r.ns).Get(context.Background(), kube.PodName(fixtureJob, 0), metav1.GetOptions{})
		if a.status != http.StatusOK || err != nil || pod.Annotations[jobs.AnnotationTimeAllocation] != fmt.Sprint((5*time.Hour).Milliseconds()) {
			t.Errorf("timeExtension is claimed, but extend answers %d %s and the allocation is %v (%v)", a.status, a.body, pod.Annotations[jobs.AnnotationTimeAllocation], err)
		}
	}

	// logs: core2 follows a job's output over a WebSocket at /ucloud/jobs.provider.<id>/websocket.
	follow := r.send(followCall(), nil)
	if claims["logs"] && follow.status == http.StatusNotFound {
		t.Errorf("logs is claimed, but the follow endpoint answers %d", follow.status)
	}

	if claims["peers"] {
		r.peersWork(t)
	}
	for _, flag := range []string{"bindLinkToPort"} {
		if claims[flag] {
			t.Errorf("%s is claimed but nothing in the IM does it", flag)
		}
	}
}

// peersWork checks what the original IM does for a peer resource (hostname -> another job of the user):
// the job's pods resolve the hostname to the peer's rank 0, and the two jobs' network policies let them
// talk to each other.
func (r *rig) peersWork(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	pod, err := env.Clientset.CoreV1().Pods(r.ns).Get(ctx, kube.PodName(fixtureJob, 0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	aliased := false
	for _, h := range pod.Spec.HostAliases {
		aliased = aliased || slices.Contains(h.Hostnames, "postgres")
	}
	if !aliased {
		t.Errorf("peers is claimed, but job %s's pod does not resolve its peer's hostname %q (host aliases %v)", fixtureJob, "postgres", pod.Spec.HostAliases)
	}
	pol, err := env.Clientset.NetworkingV1().NetworkPolicies(r.ns).Get(ctx, kube.PolicyName(peer), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	admitted := false
	for _, rule := range pol.Spec.Ingress {
		for _, from := range rule.From {
			if from.PodSelector != nil && from.NamespaceSelector == nil {
				sel, err := metav1.LabelSelectorAsSelector(from.PodSelector)
				admitted = admitted || (err == nil && sel.Matches(labels.Set(pod.Labels)))
			}
		}
	}
	if !admitted {
		t.Errorf("peers is claimed, but the peer job's network policy does not admit job %s's pods: %+v", fixtureJob, pol.Spec.Ingress)
	}
}

// peer is the job the create fixture names as its "database" peer, with hostname "postgres".
const peer = "4187100"

// createPeer creates the peer job: the fixture job under the peer's id, without peers of its own.
func (r *rig) createPeer(t *testing.T) {
	t.Helper()
	c, body := r.fixture("jobs.create")
	r.fits(r.send(c, edit(t, body, func(m map[string]any) {
		it := item(m, 0)
		it["id"] = peer
		spec := it["specification"].(map[string]any)
		delete(spec["parameters"].(map[string]any), "database")
		spec["resources"] = []any{}
	})))
}

// followCall is the WebSocket core2 opens to follow a job's output (orchestrators.JobsProviderFollowEndpoint).
func followCall() conformance.Call {
	return conformance.Call{Name: "jobs.follow", Method: http.MethodGet, Path: "/ucloud/jobs.provider.k8s/websocket"}
}

func sortedTrue(m map[string]bool) []string {
	var out []string
	for k, v := range m {
		if v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
