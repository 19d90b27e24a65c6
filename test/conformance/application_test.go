package conformance_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/kube"
)

// tool is the resolved application's tool description in a job item of Core's bytes.
func tool(job map[string]any) map[string]any {
	app := job["status"].(map[string]any)["resolvedApplication"].(map[string]any)
	return app["invocation"].(map[string]any)["tool"].(map[string]any)["tool"].(map[string]any)["description"].(map[string]any)
}

// TestCore2sJobRunsItsResolvedApplication: core2's own create bytes (JupyterLab with eight parameters)
// give a container running the application Core resolved, with the user's values, as UCloud's Kubernetes
// IM builds it: the image of the tool; the words; the requirements file behind its global prefix, as the
// folder it is mounted at; the collaborative flag (true); nothing for the Jinja part among them; the
// theme variable as the reference UCloud passes ($ doubled for Kubernetes); the working directory and the
// web port; and the job's variables, the URL public (the job has a public link).
func TestCore2sJobRunsItsResolvedApplication(t *testing.T) {
	r := newRig(t)
	create, body := r.fixture("jobs.create")
	r.fits(r.send(create, body))
	pod, err := env.Clientset.CoreV1().Pods(r.ns).Get(context.Background(), kube.PodName(fixtureJob, 0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := pod.Spec.Containers[0]
	want := corev1.Container{
		Image: "quay.io/jupyter/base-notebook:lab-4.0.0",
		Command: []string{"start-notebook.py", "--ServerApp.token=", "--ServerApp.ip=0.0.0.0",
			"--requirements=", "/work/requirements.txt", "--collaborative"},
		WorkingDir: "/work",
		Env: []corev1.EnvVar{{Name: "JUPYTERLAB_THEME", Value: "$$theme"}, {Name: "UCLOUD_JOB_ID", Value: fixtureJob},
			{Name: "UCLOUD_TASK_COUNT", Value: "1"}, {Name: "VC_JOB_NUM", Value: "1"},
			{Name: "VK_TASK_INDEX", Value: "0"}, {Name: "VC_TASK_INDEX", Value: "0"}, {Name: "UCLOUD_RANK", Value: "0"},
			{Name: "UCLOUD_URL_IS_PUBLIC", Value: "true"}},
		Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8888, Protocol: corev1.ProtocolTCP}},
	}
	if diff := cmp.Diff(want, corev1.Container{Image: got.Image, Command: got.Command, Args: got.Args, WorkingDir: got.WorkingDir,
		Env: got.Env, Ports: got.Ports}); diff != "" {
		t.Errorf("container (-want, +got):\n%s", diff)
	}
}

// TestAnApplicationThisProviderCannotRunIsAnErrorCoreSees: core2's create with the application's tool
// on another backend, or its command a Jinja script, is a 400 with UCloud's error body (core2 shows the
// user why and deletes the job), and nothing is created.
func TestAnApplicationThisProviderCannotRunIsAnErrorCoreSees(t *testing.T) {
	r := newRig(t)
	create, body := r.fixture("jobs.create")
	for _, tc := range []struct {
		change func(map[string]any)
		code   string
	}{
		{func(job map[string]any) { tool(job)["backend"] = "VIRTUAL_MACHINE" }, "UNSUPPORTED_TOOL_BACKEND"},
		{func(job map[string]any) { tool(job)["backend"] = "NATIVE" }, "UNSUPPORTED_TOOL_BACKEND"},
		{func(job map[string]any) {
			inv := job["status"].(map[string]any)["resolvedApplication"].(map[string]any)["invocation"].(map[string]any)
			inv["invocation"] = []any{map[string]any{"type": "jinja", "template": "python3 {{ script }}"}}
		}, "UNSUPPORTED_INVOCATION"},
		{func(job map[string]any) { delete(job["status"].(map[string]any), "resolvedApplication") }, "NO_APPLICATION"},
	} {
		r.refused(r.send(create, edit(t, body, func(m map[string]any) { tc.change(item(m, 0)) })), http.StatusBadRequest, tc.code)
		if r.core.KnowsJob(fixtureJob) || r.pods(fixtureJob) != 0 {
			t.Fatalf("%s: Core knows the job %v, %d pods", tc.code, r.core.KnowsJob(fixtureJob), r.pods(fixtureJob))
		}
	}
}
