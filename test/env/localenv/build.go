package localenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildBinaries runs test/env/build.sh, which builds the control plane once and caches it outside the
// checkout, and returns the folder holding the binaries. Its progress goes to our stderr.
func BuildBinaries(ctx context.Context, projectDir string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(projectDir, "test", "env", "build.sh"))
	cmd.Dir = projectDir
	cmd.Stderr = os.Stderr
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build the control plane (test/env/build.sh): %w", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return lines[len(lines)-1], nil
}

// CachedBinaries is the folder of the control-plane binaries when test/env/build.sh has built them all
// already, and "" when it has not; it never builds.
func CachedBinaries(ctx context.Context, projectDir string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(projectDir, "test", "env", "build.sh"), "--cached")
	cmd.Dir = projectDir
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look for the control plane's binaries (test/env/build.sh --cached): %w", err)
	}
	return strings.TrimSpace(out.String()), nil
}

// ProjectDir finds the project's module root from the working directory (go test runs in the package folder).
func ProjectDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if raw, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(raw, []byte("module github.com/ucloud-im/knative-im\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("not inside the project (no go.mod of github.com/ucloud-im/knative-im above %s)", dir)
		}
		dir = parent
	}
}

// ShellExports is the environment a shell (or a process) needs to use the environment.
func (e *Env) ShellExports() string {
	var b strings.Builder
	if e.Kubeconfig != "" {
		fmt.Fprintf(&b, "export KUBECONFIG=%q\n", e.Kubeconfig)
	}
	if e.DatabaseURL != "" {
		fmt.Fprintf(&b, "export DATABASE_URL=%q\n", e.DatabaseURL)
	}
	return b.String()
}
