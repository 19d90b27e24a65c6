package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// Every image the manifests name is a ko:// import path of a main package under functions/ (or the migrate
// command), and each builds
// with CGO_ENABLED=0 (the static binaries ko puts on a distroless base).
func TestEveryImageBuildsWithoutCgo(t *testing.T) {
	var ko struct {
		DefaultBaseImage string   `json:"defaultBaseImage"`
		DefaultEnv       []string `json:"defaultEnv"`
	}
	raw, err := os.ReadFile("../.ko.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &ko); err != nil {
		t.Fatalf(".ko.yaml: %v", err)
	}
	if !slices.Contains(ko.DefaultEnv, "CGO_ENABLED=0") || ko.DefaultBaseImage == "" {
		t.Fatalf(".ko.yaml must build static binaries on a base image: %+v", ko)
	}
	var images []string
	for _, u := range render(t) {
		for _, c := range containers(u.Object) {
			if img, _ := c["image"].(string); strings.HasPrefix(img, "ko://") {
				images = append(images, strings.TrimPrefix(img, "ko://"))
			}
		}
	}
	fns, _ := os.ReadDir("../functions")
	// One image per function, and the migrate Job's.
	if len(images) != len(fns)+1 || !slices.Contains(images, "github.com/ucloud-im/knative-im/shared/store/cmd/migrate") {
		t.Fatalf("%d ko:// images for %d functions and the migrate Job: %v", len(images), len(fns), images)
	}
	out := t.TempDir()
	cmd := exec.Command("go", append([]string{"build", "-o", out + "/"}, images...)...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build %v: %v\n%s", images, err, msg)
	}
	for _, img := range images {
		if _, err := os.Stat(filepath.Join(out, filepath.Base(img))); err != nil {
			t.Errorf("%s built no command: %v", img, err)
		}
	}
}

// containers are the containers of an object with a pod template (a Knative Service, a StatefulSet).
func containers(obj map[string]any) []map[string]any {
	spec, _ := obj["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	pod, _ := tmpl["spec"].(map[string]any)
	list, _ := pod["containers"].([]any)
	var out []map[string]any
	for _, c := range list {
		if m, ok := c.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}
