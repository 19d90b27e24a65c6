package localenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

//go:embed stages/pod-exit-on-annotation.yaml
var exitStage []byte

// writeServiceAccountKeys makes the key pair the apiserver signs and checks ServiceAccount tokens with.
func writeServiceAccountKeys(dir string) (keyPath, pubPath string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	keyPath, pubPath = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return "", "", err
	}
	return keyPath, pubPath, os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

// moduleDirs finds, in the Go module cache, the folders of the pinned Knative modules (the versions the
// project's go.mod selects) and of KWOK, downloading them if needed.
func moduleDirs(ctx context.Context, projectDir string) (map[string]string, error) {
	dirs := map[string]string{}
	run := func(dir string, args ...string) error {
		cmd := exec.CommandContext(ctx, "go", append([]string{"mod", "download", "-json"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("go mod download %v: %w: %s", args, err, stderr.String())
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		for dec.More() {
			var m struct{ Path, Dir, Error string }
			if err := dec.Decode(&m); err != nil {
				return err
			}
			if m.Error != "" || m.Dir == "" {
				return fmt.Errorf("module %s: %s", m.Path, m.Error)
			}
			dirs[m.Path] = m.Dir
		}
		return nil
	}
	if err := run(projectDir, "knative.dev/serving", "knative.dev/networking", "knative.dev/eventing"); err != nil {
		return nil, err
	}
	// KWOK is not a dependency of the project; resolve it outside the module at the version build.sh built.
	if err := run(os.TempDir(), "sigs.k8s.io/kwok@"+KwokVersion); err != nil {
		return nil, err
	}
	return dirs, nil
}

// writeStages concatenates KWOK's stock node and pod stages with our exit-code stage. The stock pod stages
// wait 1 s plus up to 5 s of jitter at each step; shortened so tests see Running within about a second.
// The stock pod-delete stage also waits a random part of the grace period (30 s by default), as a container
// that ignores SIGTERM would; a KWOK pod has no process to stop, so it goes after the short delay.
func writeStages(dir, kwokDir string) (string, error) {
	files := []string{
		"kustomize/stage/node/fast/node-initialize.yaml",
		"kustomize/stage/node/heartbeat/node-heartbeat.yaml",
	}
	pods, err := filepath.Glob(filepath.Join(kwokDir, "kustomize/stage/pod/general/*.yaml"))
	if err != nil || len(pods) == 0 {
		return "", fmt.Errorf("no KWOK pod stages in %s", kwokDir)
	}
	var buf bytes.Buffer
	for _, f := range files {
		pods = append(pods, filepath.Join(kwokDir, f))
	}
	for _, f := range pods {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		if strings.Contains(f, "/pod/general/") {
			raw = bytes.ReplaceAll(raw, []byte("durationMilliseconds: 1000"), []byte("durationMilliseconds: 100"))
			raw = bytes.ReplaceAll(raw, []byte("jitterDurationMilliseconds: 5000"), []byte("jitterDurationMilliseconds: 200"))
			raw = bytes.ReplaceAll(raw, []byte("    jitterDurationFrom:\n      expressionFrom: '.metadata.deletionTimestamp'\n"), nil)
		}
		buf.WriteString("---\n")
		buf.Write(raw)
		buf.WriteString("\n")
	}
	buf.WriteString("---\n")
	buf.Write(exitStage)
	path := filepath.Join(dir, "kwok-stages.yaml")
	return path, os.WriteFile(path, buf.Bytes(), 0o644)
}
