package conformance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/test/conformance"
	"github.com/ucloud-im/knative-im/test/envtest"
)

// fixtureJob is the id of the job in every jobs fixture; its allocation is 4 h and extend asks for 1 h.
const fixtureJob = "4187263"

func (r *rig) pods(jobID string) int {
	r.t.Helper()
	pods, err := env.Clientset.CoreV1().Pods(r.ns).List(context.Background(), metav1.ListOptions{LabelSelector: kube.LabelJobID + "=" + jobID})
	if err != nil {
		r.t.Fatal(err)
	}
	return len(pods.Items)
}

type sessions struct {
	Responses []struct {
		Type             string `json:"type"`
		JobID            string `json:"jobId"`
		Rank             int    `json:"rank"`
		RedirectClientTo string `json:"redirectClientTo"`
	} `json:"responses"`
}

// Every request core2 sends, byte for byte, is decoded by the IM (no 400 for its shape) and answered in
// the shape core2 decodes; the answers' effects are what the user asked for.
func TestEveryCoreRequestDecodesAndEveryAnswerFits(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	covered := map[string]bool{}
	do := func(name string) answer {
		t.Helper()
		covered[name] = true
		return r.send(r.fixture(name))
	}

	a := do("jobs.create")
	r.fits(a)
	var created struct{ Responses []json.RawMessage }
	if err := json.Unmarshal(a.body, &created); err != nil || len(created.Responses) != 1 {
		t.Fatalf("create answered %s: one response per item expected", a.body)
	}
	if !r.core.KnowsJob(fixtureJob) || r.pods(fixtureJob) != 1 {
		t.Fatalf("after create: Core knows the job %v, pods %d", r.core.KnowsJob(fixtureJob), r.pods(fixtureJob))
	}

	a = do("jobs.interactiveSession.WEB")
	r.fits(a)
	var s sessions
	if err := json.Unmarshal(a.body, &s); err != nil || len(s.Responses) != 1 || s.Responses[0].Type != "web" || s.Responses[0].JobID != fixtureJob ||
		!strings.HasPrefix(s.Responses[0].RedirectClientTo, "https://app-"+fixtureJob+"-0.apps.example.org/") {
		t.Fatalf("web session: %s", a.body)
	}
	for _, name := range []string{"jobs.interactiveSession.SHELL", "jobs.interactiveSession.VNC"} {
		// Decoded either way: a session is opened (2xx in core2's shape) or refused for what it is.
		if a := do(name); a.status/100 == 2 {
			r.fits(a)
		} else {
			r.refused(a, a.status, "SESSION_NOT_SUPPORTED")
		}
	}

	r.fits(do("jobs.extend"))
	pod, err := env.Clientset.CoreV1().Pods(r.ns).Get(ctx, kube.PodName(fixtureJob, 0), metav1.GetOptions{})
	if err != nil || pod.Annotations[jobs.AnnotationTimeAllocation] != fmt.Sprint((5*time.Hour).Milliseconds()) {
		t.Fatalf("after extending 4 h by 1 h: %v %v", err, pod.Annotations)
	}

	r.fits(do("jobs.retrieveProducts"))
	// The integrated terminal in core2's folder (alice's drive): a shell session in core2's shape.
	r.fits(do("jobs.openTerminalInFolder"))

	// What the original IM's container backend does not do is refused for what it is, and changes nothing.
	r.refused(do("jobs.suspend"), http.StatusBadRequest, "SUSPEND_NOT_SUPPORTED")
	r.refused(do("jobs.unsuspend"), http.StatusBadRequest, "SUSPEND_NOT_SUPPORTED")
	r.refused(do("jobs.attachResource"), http.StatusBadRequest, "RESOURCE_CHANGE_NOT_SUPPORTED")
	r.refused(do("jobs.detachResource"), http.StatusBadRequest, "RESOURCE_CHANGE_NOT_SUPPORTED")
	r.fits(do("jobs.onUpdatedLabels"))
	if n := r.pods(fixtureJob); n != 1 {
		t.Fatalf("after suspend, attach and labels: %d pods, want the job's 1 untouched", n)
	}
	pod, err = env.Clientset.CoreV1().Pods(r.ns).Get(ctx, kube.PodName(fixtureJob, 0), metav1.GetOptions{})
	if err != nil || pod.DeletionTimestamp != nil || pod.Annotations[jobs.AnnotationTimeAllocation] != fmt.Sprint((5*time.Hour).Milliseconds()) {
		t.Fatalf("after suspend, attach and labels the pod changed: %v %+v", err, pod.ObjectMeta)
	}

	// The Create page's call: no parameter of the provider's own, as an empty list (core2 shows an error
	// only when every provider fails).
	a = do("jobs.requestDynamicParameters")
	r.fits(a)
	if string(a.body) != "{\"parameters\":[]}\n" {
		t.Errorf("requestDynamicParameters answered %s, want no parameters", a.body)
	}

	// The provider-level calls core2 polls every 10 s.
	for _, kind := range []string{"drives", "ingresses", "publicIps", "licenses", "privateNetworks"} {
		a := do(kind + ".retrieveProducts")
		r.fits(a)
		if string(a.body) != "{\"responses\":[]}\n" {
			t.Errorf("%s.retrieveProducts answered %s: this provider offers no such products", kind, a.body)
		}
	}
	a = do("integration.retrieveManifest")
	r.fits(a)
	var manifest map[string]any
	if err := json.Unmarshal(a.body, &manifest); err != nil || manifest["enabled"] != false {
		t.Errorf("manifest %s: this IM serves no connect step, so it must not ask users to connect", a.body)
	}
	r.fits(do("integration.init"))
	a = do("provider.branding.retrieveInfo")
	r.fits(a)
	var branding struct{ ID, Title string }
	if err := json.Unmarshal(a.body, &branding); err != nil || branding.ID != "k8s" || branding.Title == "" {
		t.Errorf("branding %s: want the provider's id and a title", a.body)
	}

	r.fits(do("jobs.terminate"))
	envtest.Eventually(t, 30*time.Second, func() error {
		if n := r.pods(fixtureJob); n != 0 {
			return fmt.Errorf("%d pods left after terminate", n)
		}
		return nil
	})

	a = do("iapps.syncthing.retrieve")
	r.fits(a)
	r.fits(do("iapps.syncthing.update"))
	a = do("iapps.syncthing.retrieve")
	r.fits(a)
	var got struct {
		ETag   string
		Config struct {
			Folders []struct{ UCloudPath string }
			Devices []struct{ DeviceID string }
		}
	}
	if err := json.Unmarshal(a.body, &got); err != nil || len(got.Config.Folders) != 2 || got.Config.Folders[1].UCloudPath != "/51234/Home/thesis" || len(got.Config.Devices) != 1 {
		t.Fatalf("retrieve after update: %s", a.body)
	}
	r.fits(do("iapps.syncthing.restart"))
	r.fits(do("iapps.syncthing.reset"))

	for _, c := range r.ref.CoreToProvider {
		if !covered[c.Name] && !pending[c.Name] {
			t.Errorf("fixture %s is not sent by this test", c.Name)
		}
	}
}

// pending are the calls core2 makes that the IM does not serve yet: none. Whoever leaves one unserved
// lists it here with the reason; whoever serves one removes it, mounts its handler in newRig if it is new,
// and adds it to the test above.
var pending = map[string]bool{}

// Every call core2 makes reaches a handler: answered in JSON, 2xx in the response type or an error in
// UCloud's shape (a 404 too, e.g. restarting an app never configured), never the plain-text 404 of a path
// nothing serves; a call left pending is still unserved, so the list stays true.
func TestEveryCore2CallIsServedUnlessPending(t *testing.T) {
	r := newRig(t)
	for _, c := range r.ref.CoreToProvider {
		_, body := r.fixture(c.Name)
		a := r.send(c, body)
		switch {
		case pending[c.Name]:
			if a.status != http.StatusNotFound || json.Valid(a.body) {
				t.Errorf("%s %s is answered now (%d %s): take it off the pending list and check its answer in TestEveryCoreRequestDecodesAndEveryAnswerFits", c.Method, c.Path, a.status, a.body)
			}
		case !json.Valid(a.body):
			t.Errorf("%s %s: %d %q, want it served in JSON", c.Method, c.Path, a.status, a.body)
		case a.status/100 == 2:
			r.fits(a)
		default:
			r.check(c.Name+" error", r.ref.ErrorType, a.body)
		}
	}
}

// A call whose one item fails is an HTTP error with UCloud's error body, never a 2xx (core2 reads any 2xx
// bulk answer as done), and it changes nothing.
func TestAFailedItemIsAnErrorStatusWithUCloudsErrorBody(t *testing.T) {
	r := newRig(t)
	create, body := r.fixture("jobs.create")

	a := r.send(create, edit(t, body, func(m map[string]any) {
		item(m, 0)["specification"].(map[string]any)["product"].(map[string]any)["id"] = "u1-standard-64"
	}))
	r.refused(a, http.StatusBadRequest, "UNKNOWN_PRODUCT")
	a = r.send(create, edit(t, body, func(m map[string]any) {
		tool(item(m, 0))["backend"] = "VIRTUAL_MACHINE"
	}))
	r.refused(a, http.StatusBadRequest, "UNSUPPORTED_TOOL_BACKEND")
	if r.core.KnowsJob(fixtureJob) || r.pods(fixtureJob) != 0 {
		t.Fatalf("refused creates left: Core knows the job %v, %d pods", r.core.KnowsJob(fixtureJob), r.pods(fixtureJob))
	}

	// The job was never created here, so the provider cannot extend it.
	r.refused(r.send(r.fixture("jobs.extend")), http.StatusNotFound, "JOB_NOT_FOUND")

	session, body := r.fixture("jobs.interactiveSession.WEB")
	r.refused(r.send(session, edit(t, body, func(m map[string]any) { item(m, 0)["rank"] = 3 })), http.StatusBadRequest, "BAD_RANK")

	update, body := r.fixture("iapps.syncthing.update")
	r.refused(r.send(update, edit(t, body, func(m map[string]any) { m["expectedETag"] = "stale" })), http.StatusBadRequest, "ETAG_MISMATCH")
	r.refused(r.send(update, edit(t, body, func(m map[string]any) {
		m["config"].(map[string]any)["devices"].([]any)[0].(map[string]any)["deviceId"] = "NOT-A-DEVICE"
	})), http.StatusBadRequest, "")
	retrieve, body := r.fixture("iapps.syncthing.retrieve")
	a = r.send(retrieve, body)
	r.fits(a)
	if !strings.Contains(string(a.body), `"devices":[]`) {
		t.Fatalf("refused updates changed the configuration: %s", a.body)
	}
}

// core2 answers 502 to the user when interactiveSession has fewer sessions than items, and maps them by
// position; so the IM answers one per item, in order.
func TestInteractiveSessionAnswersOneSessionPerItem(t *testing.T) {
	r := newRig(t)
	c, body := r.fixture("jobs.interactiveSession.WEB")
	body = edit(t, body, func(m map[string]any) {
		first := item(m, 0)
		first["job"].(map[string]any)["specification"].(map[string]any)["replicas"] = 3
		items := []any{}
		for _, rank := range []int{2, 0, 1} {
			it := map[string]any{}
			for k, v := range first {
				it[k] = v
			}
			it["rank"] = rank
			items = append(items, it)
		}
		m["items"] = items
	})
	a := r.send(c, body)
	r.fits(a)
	var s sessions
	if err := json.Unmarshal(a.body, &s); err != nil || len(s.Responses) != 3 {
		t.Fatalf("3 items answered with %s", a.body)
	}
	for i, rank := range []int{2, 0, 1} {
		got := s.Responses[i]
		if got.Rank != rank || got.JobID != fixtureJob || !strings.HasPrefix(got.RedirectClientTo, "https://app-"+fixtureJob+"-"+itoa(rank)+".apps.example.org/") {
			t.Errorf("session %d (rank %d): %+v", i, rank, got)
		}
	}
}

// core2 marshals every absent util.Option as null (omitempty does nothing to a struct): a job without a
// time allocation, a personal job (no project), a job whose product Core could not resolve, an application
// without web, VNC or SSH descriptions. The IM must take them all; an unlimited job runs without an
// allocation. Only the application and its tool it cannot do without: a job without them is refused with
// a 400 that says so (core2 always resolves them), and nothing is created.
func TestCreateWithEveryOptionAbsentAsCore2SendsIt(t *testing.T) {
	r := newRig(t)
	c, body := r.fixture("jobs.create")
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	app := item(doc, 0)["status"].(map[string]any)["resolvedApplication"].(map[string]any)
	toolRef := app["invocation"].(map[string]any)["tool"].(map[string]any)
	tool := toolRef["tool"]
	n := nullOptions(r.ref, doc, r.ref.Types[c.RequestType])
	if n < 10 {
		t.Fatalf("only %d options set to null", n)
	}
	raw, _ := json.Marshal(doc)
	r.refused(r.send(c, raw), http.StatusBadRequest, "NO_APPLICATION")
	if r.pods(fixtureJob) != 0 {
		t.Fatal("a job without an application got pods")
	}

	appShape := r.ref.Defs[r.ref.Defs[r.ref.Defs[r.ref.Types[c.RequestType].Ref].Fields["items"].Items.Ref].Fields["status"].Ref].Fields["resolvedApplication"]
	if m := nullOptions(r.ref, app, &appShape.Shape); m < 5 {
		t.Fatalf("only %d options of the application set to null", m)
	}
	toolRef["tool"] = tool
	item(doc, 0)["status"].(map[string]any)["resolvedApplication"] = app
	raw, _ = json.Marshal(doc)
	r.fits(r.send(c, raw))
	pod, err := env.Clientset.CoreV1().Pods(r.ns).Get(context.Background(), kube.PodName(fixtureJob, 0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := pod.Annotations[jobs.AnnotationTimeAllocation]; ok {
		t.Errorf("a job without a time allocation got one: %s ms", v)
	}
}

// nullOptions sets every util.Option field in v to null, as core2 sends an absent one, and counts them.
func nullOptions(ref *conformance.Reference, v any, s *conformance.Shape) int {
	if s == nil {
		return 0
	}
	if s.Ref != "" {
		s = ref.Defs[s.Ref]
	}
	n := 0
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if f, ok := s.Fields[k]; ok {
				if strings.HasPrefix(f.GoType, "util.Option[") {
					v[k] = nil
					n++
					continue
				}
				n += nullOptions(ref, e, &f.Shape)
			} else if s.Kind == "map" {
				n += nullOptions(ref, e, s.Values)
			}
		}
	case []any:
		for _, e := range v {
			n += nullOptions(ref, e, s.Items)
		}
	}
	return n
}
