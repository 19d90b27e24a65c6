// Package layers tests test/check-layers.sh, the layering check `make vet` and `make test` run.
package layers

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckLayers runs the check on small modules: shared/ importing gateway/ or test/ (directly or through
// another shared package) fails and names the package; functions/ importing gateway/ and a shared test file
// importing test/ are not its business.
func TestCheckLayers(t *testing.T) {
	script, err := filepath.Abs("../check-layers.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		fails string
	}{
		{"clean", map[string]string{
			"shared/a/a.go":          "package a\nimport _ \"example.com/m/shared/b\"\n",
			"shared/b/b.go":          "package b\n",
			"shared/b/b_test.go":     "package b\nimport _ \"example.com/m/test/env\"\n",
			"test/env/env.go":        "package env\n",
			"gateway/g/g.go":         "package g\nimport _ \"example.com/m/shared/a\"\n",
			"functions/f/main.go":    "package main\nimport _ \"example.com/m/shared/a\"\nfunc main() {}\n",
			"gateway/cmd/x/main.go":  "package main\nimport _ \"example.com/m/gateway/g\"\nfunc main() {}\n",
			"test/env/cmd/y/main.go": "package main\nimport _ \"example.com/m/shared/a\"\nfunc main() {}\n",
		}, ""},
		{"shared imports gateway", map[string]string{
			"shared/a/a.go":  "package a\nimport _ \"example.com/m/gateway/g\"\n",
			"gateway/g/g.go": "package g\n",
		}, "example.com/m/shared/a depends on example.com/m/gateway/g"},
		{"shared imports test through another shared package", map[string]string{
			"shared/a/a.go":   "package a\nimport _ \"example.com/m/shared/b\"\n",
			"shared/b/b.go":   "package b\nimport _ \"example.com/m/test/env\"\n",
			"test/env/env.go": "package env\n",
		}, "example.com/m/shared/a depends on example.com/m/test/env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.files["go.mod"] = "module example.com/m\n\ngo 1.22\n"
			for name, body := range tc.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			out, err := exec.Command("bash", script, dir).CombinedOutput()
			if tc.fails == "" {
				if err != nil {
					t.Fatalf("a clean layout failed: %v\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(string(out), tc.fails) {
				t.Fatalf("want a failure naming %q; got %v\n%s", tc.fails, err, out)
			}
		})
	}
}
