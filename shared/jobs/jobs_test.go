package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	netclient "knative.dev/networking/pkg/client/clientset/versioned"

	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/appsession"
	"github.com/ucloud-im/knative-im/shared/coreauth"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/env/localenv"
	"github.com/ucloud-im/knative-im/test/envtest"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

var env *envtest.Env

var sessions = appsession.Sessions{Key: []byte("a test key that is long enough for hmac-sha256")}

func TestMain(m *testing.M) { envtest.Main(m, &env) }

type rig struct {
	t    *testing.T
	net  netclient.Interface
	svc  *jobs.Service
	ns   string
	url  string
	core *fakecore.Core
}

func newRig(t *testing.T) *rig {
	t.Helper()
	catalog, err := jobs.LoadCatalog("")
	if err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t)
	// As deploy/ makes the jobs namespace: the apiserver enforces Pod Security baseline on what job-create makes.
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": localenv.PodSecurityLabels}})
	if _, err := env.Clientset.CoreV1().Namespaces().Patch(context.Background(), ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	nc := netclient.NewForConfigOrDie(env.Config)
	svc := &jobs.Service{Provider: "k8s", Catalog: catalog, Kube: env.Clientset, AppsDomain: "apps.example.org",
		Settings: jobs.Settings{Namespace: ns},
		Apps: &appdomain.Apps{Kube: env.Clientset, Net: nc, Settings: appdomain.Settings{Provider: "k8s", AppsDomain: "apps.example.org",
			Namespace: ns, AuthService: appdomain.AuthServiceName, AuthHost: "app-auth.ucloud-im.svc.cluster.local"}},
		Sessions: &sessions}
	core := fakecore.Start(t)
	coreClient, err := core.Client(ucloud.ClientOptions{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	svc.Core = coreClient
	key, _ := coreauth.ParsePublicKey(core.PublicKeyPEM())
	routes := http.NewServeMux()
	routes.Handle("/ucloud/k8s/jobs", svc.CreateRoutes())
	routes.Handle("/ucloud/k8s/jobs/", svc.ControlRoutes())
	host := &fn.Server{Routes: routes, Auth: coreauth.NewVerifier(key, 0), Config: fn.Config{MaxBodyBytes: 1 << 20}, Logger: fn.NewLogger(io.Discard, "jobs-test", "info")}
	srv := httptest.NewServer(host.Handler())
	t.Cleanup(srv.Close)
	return &rig{t: t, net: nc, svc: svc, ns: ns, url: srv.URL, core: core}
}

func (r *rig) call(method, path string, body any) (int, []byte) {
	r.t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, r.url+"/ucloud/k8s/jobs"+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.core.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func job(id string, replicas int, product string) ucloud.Job {
	project := "proj-1"
	return fakecore.NewJob(id, ucloud.ResourceOwner{CreatedBy: "alice#1234", Project: &project},
		ucloud.ProductReference{ID: product, Category: strings.TrimSuffix(strings.TrimSuffix(product, "-1"), "-4"), Provider: "k8s"},
		"jupyter", replicas)
}

func TestThreeReplicaJobCreatesItsObjects(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	code, body := r.call(http.MethodPost, "", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{job("4242", 3, "u1-standard-4")}})
	if code != 200 || string(body) != `{"responses":[null]}`+"\n" {
		t.Fatalf("create: %d %s", code, body)
	}
	pods, err := env.Clientset.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelJobID + "=4242"})
	if err != nil || len(pods.Items) != 3 {
		t.Fatalf("pods: %v %d", err, len(pods.Items))
	}
	rank0, err := env.Clientset.CoreV1().Pods(r.ns).Get(ctx, "j-4242-job-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for rank := range 3 {
		p, err := env.Clientset.CoreV1().Pods(r.ns).Get(ctx, fmt.Sprintf("j-4242-job-%d", rank), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Labels[kube.LabelRank] != fmt.Sprint(rank) || p.Labels[kube.LabelWorkspaceID] != "proj-1" {
			t.Errorf("rank %d labels %v", rank, p.Labels)
		}
		req := p.Spec.Containers[0].Resources.Requests
		if req.Cpu().String() != "4" || req.Memory().String() != "16Gi" {
			t.Errorf("rank %d requests %v", rank, req)
		}
		if p.Annotations[jobs.AnnotationTimeAllocation] != "3600000" {
			t.Errorf("rank %d time allocation %q", rank, p.Annotations[jobs.AnnotationTimeAllocation])
		}
		if sc := p.Spec.Containers[0].SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
			t.Errorf("rank %d security context %+v, want no escalation and capabilities dropped", rank, sc)
		}
		if rank > 0 && (len(p.OwnerReferences) != 1 || p.OwnerReferences[0].UID != rank0.UID) {
			t.Errorf("rank %d owner refs %v", rank, p.OwnerReferences)
		}
	}
	svc, err := env.Clientset.CoreV1().Services(r.ns).Get(ctx, "j-4242", metav1.GetOptions{})
	if err != nil || svc.Spec.ClusterIP != corev1.ClusterIPNone || svc.OwnerReferences[0].UID != rank0.UID {
		t.Fatalf("service: %v %+v", err, svc)
	}
	pol, err := env.Clientset.NetworkingV1().NetworkPolicies(r.ns).Get(ctx, "policy-4242", metav1.GetOptions{})
	if err != nil || pol.OwnerReferences[0].UID != rank0.UID || len(pol.Spec.Ingress) != 2 || len(pol.Spec.Egress) != 3 || len(pol.Spec.PolicyTypes) != 2 {
		t.Fatalf("policy: %v %+v", err, pol)
	}
	envtest.Eventually(t, 30*time.Second, func() error {
		pods, err := env.Clientset.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelJobID + "=4242"})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodRunning {
				return fmt.Errorf("%s is %s", p.Name, p.Status.Phase)
			}
		}
		return nil
	})
	// The same request again (Core retries): success, same objects.
	code, body = r.call(http.MethodPost, "", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{job("4242", 3, "u1-standard-4")}})
	if code != 200 || string(body) != `{"responses":[null]}`+"\n" {
		t.Fatalf("repeated create: %d %s", code, body)
	}
	again, _ := env.Clientset.CoreV1().Pods(r.ns).Get(ctx, "j-4242-job-0", metav1.GetOptions{})
	if again.UID != rank0.UID {
		t.Fatal("repeated create replaced the pod")
	}
	// A different job under the same id is a conflict, not a silent success.
	code, body = r.call(http.MethodPost, "", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{job("4242", 3, "u1-standard-1")}})
	if code != 409 || !strings.Contains(string(body), `"statusCode":409`) || !strings.Contains(string(body), `"errorCode":"JOB_CONFLICT"`) {
		t.Fatalf("conflicting create: %d %s", code, body)
	}
}

// Core takes any 2xx bulk answer as success for every item, so one failed item fails the call with its own
// status and error body; the other items are still carried out (and a retry of the call repeats them safely).
func TestBulkWithOneUnknownProductFailsTheCall(t *testing.T) {
	r := newRig(t)
	items := []ucloud.Job{job("11", 1, "u1-standard-1"), job("12", 1, "u1-standard-1"), job("13", 1, "u9-huge-1"), job("14", 1, "u1-standard-1"), job("15", 1, "u1-standard-1")}
	code, body := r.call(http.MethodPost, "", ucloud.BulkRequest[ucloud.Job]{Items: items})
	var e ucloud.Error
	if code != 400 || json.Unmarshal(body, &e) != nil || e.StatusCode != 400 || e.ErrorCode != "UNKNOWN_PRODUCT" || !strings.Contains(e.Why, "no product") {
		t.Fatalf("bulk with an unknown product: %d %s", code, body)
	}
	for _, id := range []string{"11", "12", "14", "15"} {
		if _, err := env.Clientset.CoreV1().Pods(r.ns).Get(context.Background(), kube.PodName(id, 0), metav1.GetOptions{}); err != nil {
			t.Errorf("job %s: %v", id, err)
		}
	}
	if _, err := env.Clientset.CoreV1().Pods(r.ns).Get(context.Background(), kube.PodName("13", 0), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("job with unknown product made a pod: %v", err)
	}
	// Core sends one item per create: a refused job is an error status Core sees, never a 200.
	code, body = r.call(http.MethodPost, "", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{job("16", 1, "u9-huge-1")}})
	if code != 400 || !strings.Contains(string(body), `"errorCode":"UNKNOWN_PRODUCT"`) {
		t.Fatalf("single refused create: %d %s", code, body)
	}
}

func TestTerminateExtendAndSession(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	j := job("77", 2, "u1-standard-1")
	if code, body := r.call(http.MethodPost, "", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{j}}); code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	// Each rank's web interface is routed on the application domain, owned by the rank's pod.
	for rank := range 2 {
		ing, err := r.net.NetworkingV1alpha1().Ingresses(r.ns).Get(ctx, appdomain.AppName("77", rank), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("rank %d ingress: %v", rank, err)
		}
		pod, _ := env.Clientset.CoreV1().Pods(r.ns).Get(ctx, kube.PodName("77", rank), metav1.GetOptions{})
		if host := ing.Spec.Rules[0].Hosts[0]; host != fmt.Sprintf("app-77-%d.apps.example.org", rank) || ing.OwnerReferences[0].UID != pod.UID {
			t.Fatalf("rank %d ingress: host %s, owner %v (pod %s)", rank, host, ing.OwnerReferences, pod.UID)
		}
	}
	code, body := r.call(http.MethodPost, "/extend", ucloud.BulkRequest[jobs.ExtendRequest]{Items: []jobs.ExtendRequest{{Job: j, RequestedTime: ucloud.SimpleDuration{Hours: 2}}}})
	if code != 200 || string(body) != `{"responses":[{}]}`+"\n" {
		t.Fatalf("extend: %d %s", code, body)
	}
	// Twice (Core retried): still one extension.
	r.call(http.MethodPost, "/extend", ucloud.BulkRequest[jobs.ExtendRequest]{Items: []jobs.ExtendRequest{{Job: j, RequestedTime: ucloud.SimpleDuration{Hours: 2}}}})
	for rank := range 2 {
		p, _ := env.Clientset.CoreV1().Pods(r.ns).Get(ctx, kube.PodName("77", rank), metav1.GetOptions{})
		if p.Annotations[jobs.AnnotationTimeAllocation] != "10800000" {
			t.Fatalf("rank %d allocation after extending 1 h by 2 h: %s", rank, p.Annotations[jobs.AnnotationTimeAllocation])
		}
	}
	// Core is told the new allocation (both calls: the same value), as the original IM does.
	updates := r.core.Updates()
	if len(updates) != 2 {
		t.Fatalf("Core got %d updates for two extensions, want 2: %+v", len(updates), updates)
	}
	for _, u := range updates {
		if u.ID != "77" || u.Update.NewTimeAllocation == nil || *u.Update.NewTimeAllocation != 10800000 || u.Update.State != nil {
			t.Fatalf("extension reported as %+v", u)
		}
	}
	// A job without a time allocation runs unlimited: extending it changes nothing and tells Core nothing.
	unlimited := job("78", 1, "u1-standard-1")
	unlimited.Specification.TimeAllocation = nil
	if code, body := r.call(http.MethodPost, "", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{unlimited}}); code != 200 {
		t.Fatalf("create unlimited: %d %s", code, body)
	}
	code, body = r.call(http.MethodPost, "/extend", ucloud.BulkRequest[jobs.ExtendRequest]{Items: []jobs.ExtendRequest{{Job: unlimited, RequestedTime: ucloud.SimpleDuration{Hours: 2}}}})
	p, _ := env.Clientset.CoreV1().Pods(r.ns).Get(ctx, kube.PodName("78", 0), metav1.GetOptions{})
	if _, has := p.Annotations[jobs.AnnotationTimeAllocation]; code != 200 || has || len(r.core.Updates()) != 2 {
		t.Fatalf("extending an unlimited job: %d %s, allocation %q, %d updates", code, body, p.Annotations[jobs.AnnotationTimeAllocation], len(r.core.Updates()))
	}
	code, body = r.call(http.MethodPost, "/interactiveSession", ucloud.BulkRequest[jobs.SessionRequest]{Items: []jobs.SessionRequest{{Job: j, Rank: 1, SessionType: "WEB"}}})
	var opened ucloud.BulkResponse[ucloud.OpenSession]
	if code != 200 || json.Unmarshal(body, &opened) != nil || len(opened.Responses) != 1 {
		t.Fatalf("session: %d %s", code, body)
	}
	web := opened.Responses[0]
	link, err := url.Parse(web.RedirectClientTo)
	if err != nil || link.Scheme != "https" || link.Host != "app-77-1.apps.example.org" || link.Path != "/ucloud/k8s/authorize-app" {
		t.Fatalf("web session: %s", body)
	}
	if tok, err := sessions.ParseToken(link.Query().Get("token")); err != nil || tok.Host != "app-77-1.apps.example.org" {
		t.Fatalf("session token %q: %+v %v", link.Query().Get("token"), tok, err)
	}
	// A session the provider cannot open is an error status, not an empty session in a 200.
	for _, c := range []struct {
		item jobs.SessionRequest
		code string
		why  string
	}{
		{jobs.SessionRequest{Job: j, Rank: 0, SessionType: "VNC"}, "SESSION_NOT_SUPPORTED", "not supported"},
		{jobs.SessionRequest{Job: j, Rank: 5, SessionType: "WEB"}, "BAD_RANK", "no rank 5"},
		{jobs.SessionRequest{Job: j, Rank: 0, SessionType: "WEB"}, "", ""},
	} {
		items := []jobs.SessionRequest{{Job: j, Rank: 0, SessionType: "WEB"}, c.item}
		code, body := r.call(http.MethodPost, "/interactiveSession", ucloud.BulkRequest[jobs.SessionRequest]{Items: items})
		var e ucloud.Error
		switch {
		case c.code == "" && (code != 200 || json.Unmarshal(body, &opened) != nil || len(opened.Responses) != 2):
			t.Errorf("two good sessions: %d %s", code, body)
		case c.code != "" && (code != 400 || json.Unmarshal(body, &e) != nil || e.ErrorCode != c.code || !strings.Contains(e.Why, c.why)):
			t.Errorf("%+v: %d %s", c.item, code, body)
		}
	}
	code, body = r.call(http.MethodPost, "/terminate", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{j}})
	if code != 200 || string(body) != `{"responses":[{}]}`+"\n" {
		t.Fatalf("terminate: %d %s", code, body)
	}
	envtest.Eventually(t, 30*time.Second, func() error {
		pods, _ := env.Clientset.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelJobID + "=77"})
		_, svcErr := env.Clientset.CoreV1().Services(r.ns).Get(ctx, "j-77", metav1.GetOptions{})
		_, polErr := env.Clientset.NetworkingV1().NetworkPolicies(r.ns).Get(ctx, "policy-77", metav1.GetOptions{})
		ings, _ := r.net.NetworkingV1alpha1().Ingresses(r.ns).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelJobID + "=77"})
		if len(pods.Items) > 0 || !apierrors.IsNotFound(svcErr) || !apierrors.IsNotFound(polErr) || len(ings.Items) > 0 {
			return fmt.Errorf("left after terminate: %d pods, service %v, policy %v, %d ingresses", len(pods.Items), svcErr, polErr, len(ings.Items))
		}
		return nil
	})
	code, body = r.call(http.MethodGet, "/retrieveProducts", nil)
	if code != 200 || !strings.Contains(string(body), `"id":"u1-gpu-1","category":"u1-gpu","provider":"k8s"`) {
		t.Fatalf("products: %d %s", code, body)
	}
}

// With the apiserver unreachable the call is 503 with a reason; once it is back the retry completes.
func TestKubernetesOutageIs503AndRetryCompletes(t *testing.T) {
	r := newRig(t)
	cfg := rest.CopyConfig(env.Config)
	cfg.Host = fmt.Sprintf("https://127.0.0.1:%d", envtest.FreePort(t))
	cfg.Timeout = 2 * time.Second
	down, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.svc.Kube = down
	req := ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{job("88", 2, "u1-standard-1")}}
	code, body := r.call(http.MethodPost, "", req)
	if code != 503 || !strings.Contains(string(body), "cluster is unavailable") {
		t.Fatalf("create with the cluster down: %d %s", code, body)
	}
	r.svc.Kube = env.Clientset
	if code, body := r.call(http.MethodPost, "", req); code != 200 || !strings.Contains(string(body), "[null]") {
		t.Fatalf("retry: %d %s", code, body)
	}
	pods, _ := env.Clientset.CoreV1().Pods(r.ns).List(context.Background(), metav1.ListOptions{LabelSelector: kube.LabelJobID + "=88"})
	if len(pods.Items) != 2 {
		t.Fatalf("%d pods after the retry, want 2", len(pods.Items))
	}
}

// A job whose pods were deleted by hand: no pod will go away, so terminate itself tells Core the job ended,
// and Core applies it once however often terminate is repeated.
func TestTerminateWithoutPodsReportsSuccessOnce(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	j := job("79", 2, "u1-standard-1")
	if code, body := r.call(http.MethodPost, "", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{j}}); code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	running := j
	running.Status.State = ucloud.StateRunning
	r.core.PutJob(running)
	zero := int64(0)
	if err := env.Clientset.CoreV1().Pods(r.ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero},
		metav1.ListOptions{LabelSelector: kube.LabelJobID + "=79"}); err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, 30*time.Second, func() error {
		pods, err := env.Clientset.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelJobID + "=79"})
		if err == nil && len(pods.Items) > 0 {
			err = fmt.Errorf("%d pods left", len(pods.Items))
		}
		return err
	})
	for range 2 {
		if code, body := r.call(http.MethodPost, "/terminate", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{running}}); code != 200 {
			t.Fatalf("terminate: %d %s", code, body)
		}
	}
	if got := r.core.Transitions("79"); len(got) != 1 || got[0] != ucloud.StateSuccess {
		t.Fatalf("Core applied %v, want SUCCESS once", got)
	}
	// A job that still has pods is left to the monitor: terminate reports nothing itself.
	live := job("80", 1, "u1-standard-1")
	if code, body := r.call(http.MethodPost, "", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{live}}); code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	before := len(r.core.Updates())
	if code, body := r.call(http.MethodPost, "/terminate", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{live}}); code != 200 || len(r.core.Updates()) != before {
		t.Fatalf("terminate of a job with pods: %d %s, %d updates sent", code, body, len(r.core.Updates())-before)
	}
}
