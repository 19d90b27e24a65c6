package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/ucloud-im/knative-im/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }

// render runs kustomize on the project's deploy/ as `kubectl apply -k deploy/` does, with each Secret file made
// from its committed template (an operator writes real values there).
func render(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	fs := filesys.MakeFsInMemory()
	for _, dir := range []string{"deploy", "deploy/secrets", "knative"} {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".example")) {
				continue
			}
			raw, err := os.ReadFile(filepath.Join(root, dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			name := "/project/" + dir + "/" + strings.TrimSuffix(e.Name(), ".example")
			if err := fs.WriteFile(name, raw); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/project/deploy")
	if err != nil {
		t.Fatalf("kustomize: %v", err)
	}
	var out []*unstructured.Unstructured
	for _, r := range res.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

func TestRenderHasEverything(t *testing.T) {
	objs := render(t)
	got := map[string]bool{}
	for _, u := range objs {
		got[u.GetKind()+"/"+u.GetNamespace()+"/"+u.GetName()] = true
	}
	fns, err := os.ReadDir("../functions")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Namespace//ucloud-im", "Namespace//ucloud-jobs", "ConfigMap/ucloud-im/ucloud-im",
		"Secret/ucloud-im/ucloud-im-core", "Secret/ucloud-im/ucloud-im-database", "Secret/ucloud-im/ucloud-im-gateway",
		"StatefulSet/ucloud-im/ucloud-im-postgres", "Service/ucloud-jobs/ucloud-im-auth", "Ingress/ucloud-im/ucloud-im-api",
		"Broker/ucloud-im/default", "SinkBinding/ucloud-im/monitor-sink", "Trigger/ucloud-im/job-state-to-status-report",
		"EventPolicy/ucloud-im/broker-from-monitor", "EventPolicy/ucloud-im/status-report-from-job-state-trigger"}
	for _, f := range fns {
		want = append(want, "Service/ucloud-im/"+f.Name(), "ServiceAccount/ucloud-im/ucloud-im-"+f.Name())
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("the kustomization renders no %s", w)
		}
	}
	// Every Knative manifest is in the kustomization (a file left out would never be applied).
	entries, err := os.ReadDir("../knative")
	if err != nil {
		t.Fatal(err)
	}
	listed, err := os.ReadFile("../knative/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	manifests := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".yaml") || e.Name() == "kustomization.yaml" {
			continue
		}
		manifests++
		if !strings.Contains(string(listed), "- "+e.Name()) {
			t.Errorf("knative/%s is not in knative/kustomization.yaml", e.Name())
		}
	}
	if manifests == 0 {
		t.Error("knative/ holds no manifest to check")
	}
}

func TestSecretsComeFromTemplatesOnly(t *testing.T) {
	// Every file the kustomization makes a Secret from has its template (without one, the loop below would
	// check nothing and pass).
	kust, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files := regexp.MustCompile(`=secrets/([a-z0-9.-]+)`).FindAllStringSubmatch(string(kust), -1)
	if len(files) == 0 {
		t.Fatal("deploy/kustomization.yaml makes no Secret from secrets/")
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join("secrets", f[1]+".example")); err != nil {
			t.Errorf("secrets/%s has no template secrets/%s.example: %v", f[1], f[1], err)
		}
	}
	entries, err := os.ReadDir("secrets")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".example") {
			continue
		}
		raw, _ := os.ReadFile(filepath.Join("secrets", e.Name()))
		if !strings.Contains(string(raw), "REPLACE") {
			t.Errorf("secrets/%s holds a value, not a template", e.Name())
		}
	}
}
