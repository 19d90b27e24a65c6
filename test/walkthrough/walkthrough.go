// Package walkthrough drives a running IM the way UCloud/Core and a user would: a 2-rank job from creation
// to SUCCESS, a Syncthing configuration with its ETag and a restart, and an interactive session through the
// gateway. `make demo` runs it against `make run`; an end-to-end test runs it against a stack it starts.
package walkthrough

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ucloud-im/knative-im/gateway/local"
	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/appsession"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/env/localenv"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// Config is what the walkthrough needs of the stack (make run's .run/env).
type Config struct {
	IMURL     string // the local gateway: the one base URL Core uses
	CoreURL   string // the fake Core, for what it received
	Provider  string
	Namespace string
	// Token returns a fresh Core token.
	Token func() (string, error)
	Kube  kubernetes.Interface
	Out   io.Writer
	// JobID makes the job ids unique per run (a second walkthrough against the same stack).
	JobID string
}

// Run walks through; the first step that does not behave as a user expects is the error.
func Run(ctx context.Context, c Config) error {
	w := &walker{Config: c, http: &http.Client{Timeout: 30 * time.Second}}
	for _, step := range []struct {
		name string
		fn   func(context.Context) error
	}{
		{"products: job-control registered the catalogue's and the integrated apps' products with Core", w.products},
		{"job: create a 2-rank job, see its pods run, have KWOK complete it, see Core told", w.job},
		{"syncthing: set a configuration, read it back, a stale ETag, restart", w.syncthing},
		{"interactive session: open it, authorize, reach the app through the gateway", w.session},
		{"streams: follow a 2-rank job's logs as Core does, open a shell in rank 1 as the browser does (through the gateway to job-streams)", w.streams},
		{"terminal: openTerminalInFolder for a fresh user (through the gateway to config-update), the waiting text, a command in the integrated terminal (job-streams)", w.terminal},
	} {
		fmt.Fprintf(c.Out, "\n== %s\n", step.name)
		if err := step.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", step.name, err)
		}
	}
	fmt.Fprintln(c.Out, "\nwalkthrough passed")
	return nil
}

type walker struct {
	Config
	http *http.Client
}

func (w *walker) say(format string, args ...any) { fmt.Fprintf(w.Out, "  "+format+"\n", args...) }

// core calls the IM as Core does: JSON, with a Core token, through the gateway.
func (w *walker) core(ctx context.Context, method, path string, body any) (int, []byte, error) {
	tok, err := w.Token()
	if err != nil {
		return 0, nil, err
	}
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequestWithContext(ctx, method, w.IMURL+"/ucloud/"+w.Provider+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := w.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	w.say("%s %s -> %d %s", method, path, resp.StatusCode, clip(out))
	if method == http.MethodPost && path == "/jobs" && resp.StatusCode/100 == 2 {
		// Core confirms a job once the provider accepted it; the monitor removes jobs Core does not know.
		if err := w.confirm(ctx, body); err != nil {
			return 0, nil, err
		}
	}
	return resp.StatusCode, out, nil
}

// confirm tells the fake Core it now knows the jobs of an accepted create, as core2 does.
func (w *walker) confirm(ctx context.Context, body any) error {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.CoreURL+fakecore.InspectPrefix+"jobs", bytes.NewReader(raw))
	resp, err := w.http.Do(req)
	if err != nil {
		return fmt.Errorf("confirm the jobs with the fake Core: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("confirm the jobs with the fake Core: %s", resp.Status)
	}
	return nil
}

func clip(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 160 {
		return s[:160] + "..."
	}
	return s
}

func (w *walker) jobOf(id string, replicas int) ucloud.Job {
	return fakecore.NewJob(id, ucloud.ResourceOwner{CreatedBy: "alice#1234"},
		ucloud.ProductReference{ID: "u1-standard-1", Category: "u1-standard", Provider: w.Provider}, "jupyter", replicas)
}

// eventually retries f every 200 ms until it succeeds or d passes.
func eventually(ctx context.Context, d time.Duration, f func() error) error {
	end := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(end) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// products waits until Core holds the provider's products, which job-control registers when it starts.
func (w *walker) products(ctx context.Context) error {
	return eventually(ctx, 30*time.Second, func() error {
		resp, err := w.http.Get(w.CoreURL + fakecore.InspectPrefix + "products")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var got []ucloud.ProductV2
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			return err
		}
		names := map[string]bool{}
		for _, p := range got {
			names[p.Category.Name+"/"+p.Name] = true
		}
		for _, want := range []string{"u1-standard/u1-standard-1", "syncthing/syncthing", "terminal/terminal"} {
			if !names[want] {
				return fmt.Errorf("Core has no product %s yet (has %d)", want, len(got))
			}
		}
		w.say("Core holds %d products of this provider, among them syncthing/syncthing and terminal/terminal", len(got))
		return nil
	})
}

func (w *walker) job(ctx context.Context) error {
	id := w.JobID + "1"
	job := w.jobOf(id, 2)
	// The user's value for the application's parameter reaches the container's command line.
	page := "/lab/tree/walkthrough-" + id + ".ipynb"
	job.Specification.Parameters["default_url"] = ucloud.AppParameterValue{Type: ucloud.ValueText, Value: json.RawMessage(strconv.Quote(page))}
	// Two of the user's folders: results read-write, reference data read-only (Core says which); their drives
	// are the user's in Core, as the provider checks again while the job runs.
	results, reference := "/124/Home/Results", "/125/Home/Reference"
	for _, d := range []string{"124", "125"} {
		if err := w.giveDrive(ctx, d, job.Owner.CreatedBy); err != nil {
			return err
		}
	}
	job.Specification.Resources = append(job.Specification.Resources,
		ucloud.AppParameterValue{Type: ucloud.ValueFile, Path: results, ReadOnly: ptr.To(false)},
		ucloud.AppParameterValue{Type: ucloud.ValueFile, Path: reference, ReadOnly: ptr.To(true)})
	w.say("job %s runs %s %s (resolved by Core: image %s) with parameter default_url=%q", id, job.Specification.Application.Name,
		job.Specification.Application.Version, job.Status.ResolvedApplication.Invocation.Tool.Tool.Description.Image, page)
	w.say("and folders %s (read-write) and %s (read-only)", results, reference)
	if code, body, err := w.core(ctx, http.MethodPost, "/jobs", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{job}}); err != nil || code != 200 || !bytes.Contains(body, []byte("[null]")) {
		return fmt.Errorf("create: %d %s %v", code, body, err)
	}
	sel := metav1.ListOptions{LabelSelector: kube.LabelJobID + "=" + id}
	if err := eventually(ctx, 30*time.Second, func() error {
		pods, err := w.Kube.CoreV1().Pods(w.Namespace).List(ctx, sel)
		if err != nil {
			return err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		if running != 2 {
			return fmt.Errorf("%d of %d pods running", running, len(pods.Items))
		}
		for _, p := range pods.Items {
			w.say("pod %s %s on %s (kubectl --kubeconfig $KUBECONFIG -n %s get pods -l %s=%s)", p.Name, p.Status.Phase, p.Spec.NodeName, w.Namespace, kube.LabelJobID, id)
		}
		c := pods.Items[0].Spec.Containers[0]
		w.say("its container: image %s, command %q", c.Image, c.Command)
		if !slices.Contains(c.Command, "--LabApp.default_url="+page) {
			return fmt.Errorf("the parameter default_url=%q is not in the pod's command %q", page, c.Command)
		}
		return podShowsFolders(pods.Items[0], w.say)
	}); err != nil {
		return err
	}
	if err := w.waitStates(ctx, id, ucloud.StateRunning); err != nil {
		return err
	}
	w.say("KWOK ends both ranks with exit code 0 (annotation %s)", localenv.ExitCodeAnnotation)
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"0"}}}`, localenv.ExitCodeAnnotation)
	for rank := range 2 {
		if _, err := w.Kube.CoreV1().Pods(w.Namespace).Patch(ctx, kube.PodName(id, rank), types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return err
		}
	}
	return w.waitStates(ctx, id, ucloud.StateSuccess)
}

// waitStates waits until the fake Core has received final for job id, and shows every state it received.
func (w *walker) waitStates(ctx context.Context, id string, final ucloud.JobState) error {
	var states []string
	err := eventually(ctx, 60*time.Second, func() error {
		resp, err := w.http.Get(w.CoreURL + "/_fakecore/updates")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var ups []ucloud.ResourceUpdateAndID[ucloud.JobUpdate]
		if err := json.NewDecoder(resp.Body).Decode(&ups); err != nil {
			return err
		}
		states = states[:0]
		for _, u := range ups {
			if u.ID == id && u.Update.State != nil {
				states = append(states, string(*u.Update.State))
			}
		}
		if len(states) == 0 || states[len(states)-1] != string(final) {
			return fmt.Errorf("Core received states %v for job %s, waiting for %s", states, id, final)
		}
		return nil
	})
	if err == nil {
		w.say("Core received for job %s: %s", id, strings.Join(states, " -> "))
	}
	return err
}

const device = "MFZWI3D-BONSGYC-YLTMRWG-C43ENR5-QXGZDMM-FZWI3DP-BONSGYY-LTMRWAD"

func (w *walker) syncthing(ctx context.Context) error {
	owner := ucloud.ResourceOwner{CreatedBy: "walkthrough-" + w.JobID + "#1234"}
	cfg := json.RawMessage(`{"devices":[{"deviceId":"` + device + `","label":"laptop"}],"folders":[{"id":"x1","ucloudPath":"/123/Home/Sync"}]}`)
	// The folder's drive is the owner's in Core (the provider checks it before storing anything).
	if err := w.giveDrive(ctx, "123", owner.CreatedBy); err != nil {
		return err
	}
	var got iapps.Retrieved
	retrieve := func() error {
		code, body, err := w.core(ctx, http.MethodPost, "/iapps/syncthing/retrieve", iapps.RetrieveRequest{ProductID: "syncthing", Principal: owner})
		if err != nil || code != 200 {
			return fmt.Errorf("retrieve: %d %s %v", code, body, err)
		}
		return json.Unmarshal(body, &got)
	}
	if err := retrieve(); err != nil {
		return err
	}
	initial := got.ETag
	code, body, err := w.core(ctx, http.MethodPost, "/iapps/syncthing/update", iapps.UpdateRequest{ProductID: "syncthing", Principal: owner, Config: cfg, ExpectedETag: &initial})
	if err != nil || code != 200 {
		return fmt.Errorf("update: %d %s %v", code, body, err)
	}
	if err := eventually(ctx, 10*time.Second, func() error {
		if err := retrieve(); err != nil {
			return err
		}
		if got.ETag == initial || !bytes.Contains(got.Config, []byte("laptop")) {
			return fmt.Errorf("retrieve still answers ETag %s", got.ETag)
		}
		return nil
	}); err != nil {
		return err
	}
	w.say("stored with ETag %s", got.ETag)
	code, body, err = w.core(ctx, http.MethodPost, "/iapps/syncthing/update", iapps.UpdateRequest{ProductID: "syncthing", Principal: owner, Config: cfg, ExpectedETag: &initial})
	if err != nil || code != http.StatusBadRequest {
		return fmt.Errorf("a stale ETag must be refused with 400: %d %s %v", code, body, err)
	}
	w.say("the stale ETag %s was refused: %s", initial, clip(body))

	pod, err := w.iappPod(ctx, got.ETag, "")
	if err != nil {
		return err
	}
	w.say("Syncthing runs as pod %s (uid %s)", pod.Name, pod.UID)
	if code, body, err := w.core(ctx, http.MethodPost, "/iapps/syncthing/restart", iapps.RestartRequest{ProductID: "syncthing", Principal: owner}); err != nil || code != 200 {
		return fmt.Errorf("restart: %d %s %v", code, body, err)
	}
	again, err := w.iappPod(ctx, got.ETag, pod.UID)
	if err != nil {
		return err
	}
	w.say("after restart the monitor brought it back: pod %s (uid %s) %s", again.Name, again.UID, again.Status.Phase)
	return nil
}

// iappPod waits for the Syncthing pod running the configuration with etag, with a uid other than not.
func (w *walker) iappPod(ctx context.Context, etag string, not types.UID) (*corev1.Pod, error) {
	var found *corev1.Pod
	err := eventually(ctx, 60*time.Second, func() error {
		pods, err := w.Kube.CoreV1().Pods(w.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for i, p := range pods.Items {
			if p.Annotations[kube.AnnotationIAppName] == "syncthing" && p.Annotations[kube.AnnotationIAppETag] == etag &&
				p.UID != not && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				found = &pods.Items[i]
				return nil
			}
		}
		return fmt.Errorf("no running Syncthing pod with ETag %s yet", etag)
	})
	return found, err
}

func (w *walker) session(ctx context.Context) error {
	id := w.JobID + "2"
	if code, body, err := w.core(ctx, http.MethodPost, "/jobs", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{w.jobOf(id, 1)}}); err != nil || code != 200 {
		return fmt.Errorf("create: %d %s %v", code, body, err)
	}
	app, err := w.standIn(ctx, id)
	if err != nil {
		return err
	}
	defer app.Close()
	code, body, err := w.core(ctx, http.MethodPost, "/jobs/interactiveSession", map[string]any{
		"items": []map[string]any{{"job": w.jobOf(id, 1), "rank": 0, "sessionType": "WEB", "target": nil}}})
	if err != nil || code != 200 {
		return fmt.Errorf("interactiveSession: %d %s %v", code, body, err)
	}
	var opened ucloud.BulkResponse[ucloud.OpenSession]
	if err := json.Unmarshal(body, &opened); err != nil || len(opened.Responses) != 1 {
		return fmt.Errorf("interactiveSession answer %s: %v", body, err)
	}
	link, err := url.Parse(opened.Responses[0].RedirectClientTo)
	if err != nil {
		return err
	}
	w.say("Core sends the browser to %s://%s%s?token=...", link.Scheme, link.Host, link.Path)
	browser := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	fetch := func(path string, cookie *http.Cookie) (*http.Response, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.IMURL+path, nil)
		req.Host = link.Host
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := browser.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b), nil
	}
	if err := eventually(ctx, 10*time.Second, func() error {
		resp, body, err := fetch("/", nil)
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("without the cookie the app must answer 401: %v %v %s", err, resp, body)
		}
		w.say("GET / without the cookie -> 401 %s", clip([]byte(body)))
		return nil
	}); err != nil {
		return err
	}
	resp, body2, err := fetch(link.RequestURI(), nil)
	if err != nil || resp.StatusCode != http.StatusFound {
		return fmt.Errorf("authorize-app: %v %v %s", err, resp, body2)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == appsession.CookieName {
			cookie = &http.Cookie{Name: c.Name, Value: c.Value}
			w.say("authorize-app -> 302 %s, Set-Cookie %s (HttpOnly %v, Secure %v, Path %s, host-only, SameSite Lax, %d days)", resp.Header.Get("Location"), c.Name, c.HttpOnly, c.Secure, c.Path, c.MaxAge/86400)
		}
	}
	if cookie == nil {
		return fmt.Errorf("authorize-app set no session cookie: %v", resp.Header)
	}
	resp, body2, err = fetch("/", cookie)
	if err != nil || resp.StatusCode != 200 || !strings.Contains(body2, link.Host) || !strings.Contains(body2, "IM cookie seen: false") {
		return fmt.Errorf("with the cookie: %v %v %s", err, resp, body2)
	}
	w.say("GET / with the cookie -> 200 %q", body2)
	// A page of another job (same site, other origin) posting with this user's cookie is refused.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.IMURL+"/api/contents", strings.NewReader("{}"))
	req.Host = link.Host
	req.AddCookie(cookie)
	req.Header.Set("Origin", "https://app-"+id+"9-0."+strings.SplitN(link.Host, ".", 2)[1])
	cross, err := browser.Do(req)
	if err != nil {
		return err
	}
	crossBody, _ := io.ReadAll(cross.Body)
	cross.Body.Close()
	if cross.StatusCode != http.StatusForbidden {
		return fmt.Errorf("a POST from another job's origin must be refused: %d %s", cross.StatusCode, crossBody)
	}
	w.say("POST with the cookie from another job's origin (%s) -> 403 %s", req.Header.Get("Origin"), clip(crossBody))
	if code, body, err := w.core(ctx, http.MethodPost, "/jobs/terminate", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{w.jobOf(id, 1)}}); err != nil || code != 200 {
		return fmt.Errorf("terminate: %d %s %v", code, body, err)
	}
	return eventually(ctx, 15*time.Second, func() error {
		resp, body, err := fetch("/", cookie)
		if err != nil || resp.StatusCode != http.StatusNotFound {
			return fmt.Errorf("after terminate the host must answer 404: %v %v %s", err, resp, body)
		}
		w.say("after terminate: GET / -> 404")
		return nil
	})
}

// standIn serves the job's web port from this process: KWOK's pods run nothing, so the rank's Service is
// pointed at a server here.
func (w *walker) standIn(ctx context.Context, jobID string) (*http.Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, err := r.Cookie(appsession.CookieName)
		fmt.Fprintf(rw, "the notebook of job %s, served at %s, IM cookie seen: %v", jobID, r.Host, err == nil)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	name := appdomain.AppName(jobID, 0)
	port := ln.Addr().(*net.TCPAddr).Port
	if err := eventually(ctx, 10*time.Second, func() error { return local.PointAtLocal(ctx, w.Kube, w.Namespace, name, "walkthrough", port) }); err != nil {
		srv.Close()
		return nil, err
	}
	w.say("the app's Service %s points at a stand-in web server on %s (KWOK pods run no processes)", name, ln.Addr())
	return srv, nil
}
