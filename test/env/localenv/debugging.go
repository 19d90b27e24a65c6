package localenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// KWOK serves pods/exec, pods/log and pods/portforward as the node's kubelet: the apiserver reaches it at the
// node's InternalIP (127.0.0.1) and kubelet port (KWOK's server port), which KWOK's node-initialize stage
// writes into the node's status from --node-ip/--node-port. What a pod's exec, log and port-forward do comes
// from KWOK's debugging objects:
//   - every pod: exec runs the command on THIS machine, as the test's user, in the folder PodWorkDirName (the ClusterExec of
//     kwok-debug.yaml); its log is an empty file that is followed (the ClusterLogs); no port-forward;
//   - per pod, CRD objects named as the pod (kwok.x-k8s.io/v1alpha1 Exec, Logs, PortForward) replace those;
//     KWOK watches them, so a test creates them at any time (envtest's PodLog, PodExec, PodPortForward).
//
// KWOK v0.8.0's limits (see ../shared/reference/k8s-test-env.md): a TTY session has no controlling terminal
// (no SIGWINCH, Ctrl-C does not interrupt, though `stty size` follows resizes), a non-zero exit code comes
// back as an internal error, a non-TTY stdin never reaches end of input, `logs -f` never ends by itself, and
// exec does not look at the pod's phase.
const (
	// DebugCRDs are the per-pod debugging kinds KWOK reads from the apiserver.
	DebugCRDs = "Exec,Logs,PortForward"
	// PodWorkDirName is the folder, under the environment's kube folder, where exec runs for pods
	// without an Exec object of their own.
	PodWorkDirName = "podfs"
)

// KwokGroupVersion is the API group and version of KWOK's debugging objects.
var KwokGroupVersion = schema.GroupVersion{Group: "kwok.x-k8s.io", Version: "v1alpha1"}

// Resources of KWOK's per-pod debugging objects.
var (
	KwokExecs        = KwokGroupVersion.WithResource("execs")
	KwokLogs         = KwokGroupVersion.WithResource("logs")
	KwokPortForwards = KwokGroupVersion.WithResource("portforwards")
)

// kwokCRDFiles are the CRDs of the per-pod debugging kinds, in KWOK's module.
var kwokCRDFiles = []string{
	"kustomize/crd/bases/kwok.x-k8s.io_execs.yaml",
	"kustomize/crd/bases/kwok.x-k8s.io_logs.yaml",
	"kustomize/crd/bases/kwok.x-k8s.io_portforwards.yaml",
}

// writeDebugConfig writes the cluster-wide debugging objects (exec in workDir, an empty followed log) that
// apply to every pod without per-pod objects.
func writeDebugConfig(dir string) (string, error) {
	workDir := filepath.Join(dir, PodWorkDirName)
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return "", err
	}
	emptyLog := filepath.Join(dir, "empty-pod.log")
	if err := os.WriteFile(emptyLog, nil, 0o644); err != nil {
		return "", err
	}
	cfg := fmt.Sprintf(`apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterExec
metadata:
  name: local-exec
spec:
  execs:
  - local:
      workDir: %q
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: empty-logs
spec:
  logs:
  - logsFile: %q
    follow: true
`, workDir, emptyLog)
	path := filepath.Join(dir, "kwok-debug.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o644)
}

// kwokDebugArgs are the KWOK flags that make it the node's kubelet for exec, logs and port-forward.
func kwokDebugArgs(port int, debugConfig string) []string {
	return []string{
		"--node-ip=127.0.0.1", fmt.Sprintf("--node-port=%d", port),
		"--enable-crds=" + DebugCRDs, "-c", debugConfig,
	}
}

// CRILogLine is one line of a container log file in the CRI format KWOK reads (plain text is refused):
// `<RFC3339Nano> <stdout|stderr> F <text>`.
func CRILogLine(at time.Time, stream, text string) string {
	return at.UTC().Format(time.RFC3339Nano) + " " + stream + " F " + strings.TrimSuffix(text, "\n") + "\n"
}

// ApplyPodLog makes KWOK serve the pod's log (every container's) from file, followed.
func ApplyPodLog(ctx context.Context, dyn dynamic.Interface, namespace, pod, file string) error {
	return createDebugObject(ctx, dyn, KwokLogs, "Logs", namespace, pod, map[string]any{
		"logs": []any{map[string]any{"logsFile": file, "follow": true}},
	})
}

// ApplyPodExec makes KWOK run the pod's exec commands on this machine in workDir with the given
// environment.
func ApplyPodExec(ctx context.Context, dyn dynamic.Interface, namespace, pod, workDir string, env map[string]string) error {
	var envs []any
	for k, v := range env {
		envs = append(envs, map[string]any{"name": k, "value": v})
	}
	local := map[string]any{"workDir": workDir}
	if len(envs) > 0 {
		local["envs"] = envs
	}
	return createDebugObject(ctx, dyn, KwokExecs, "Exec", namespace, pod, map[string]any{
		"execs": []any{map[string]any{"local": local}},
	})
}

// ApplyPodPortForward makes KWOK forward the pod's port to 127.0.0.1:target.
func ApplyPodPortForward(ctx context.Context, dyn dynamic.Interface, namespace, pod string, port, target int) error {
	return createDebugObject(ctx, dyn, KwokPortForwards, "PortForward", namespace, pod, map[string]any{
		"forwards": []any{map[string]any{
			"ports":  []any{int64(port)},
			"target": map[string]any{"address": "127.0.0.1", "port": int64(target)},
		}},
	})
}

func createDebugObject(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, kind, namespace, name string, spec map[string]any) error {
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": KwokGroupVersion.String(),
		"kind":       kind,
		"metadata":   map[string]any{"name": name, "namespace": namespace},
		"spec":       spec,
	}}
	if _, err := dyn.Resource(gvr).Namespace(namespace).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create KWOK %s %s/%s: %w", kind, namespace, name, err)
	}
	return nil
}
