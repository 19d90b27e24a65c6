package localenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// crdFiles are the CRDs the project uses, relative to their module's folder.
var crdFiles = map[string][]string{
	"knative.dev/serving": {
		"config/core/300-resources/service.yaml", "config/core/300-resources/route.yaml",
		"config/core/300-resources/configuration.yaml", "config/core/300-resources/revision.yaml",
		"config/core/300-resources/domain-mapping.yaml",
	},
	"knative.dev/networking": {"config/ingress.yaml"},
	"knative.dev/eventing": {
		"config/core/resources/broker.yaml", "config/core/resources/trigger.yaml",
		"config/core/resources/sinkbindings.yaml", "config/core/resources/eventpolicy.yaml",
	},
	// KWOK's per-pod debugging kinds (exec, logs, port-forward): installed before KWOK starts, which
	// watches them.
	"sigs.k8s.io/kwok": kwokCRDFiles,
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs applies the CRDs server-side and waits until each is Established.
func installCRDs(ctx context.Context, cfg *rest.Config, modDirs map[string]string) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var names []string
	for mod, files := range crdFiles {
		if modDirs[mod] == "" {
			return fmt.Errorf("module %s not found in the module cache", mod)
		}
		for _, f := range files {
			raw, err := os.ReadFile(filepath.Join(modDirs[mod], f))
			if err != nil {
				return fmt.Errorf("read CRD: %w", err)
			}
			dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
			for {
				var obj unstructured.Unstructured
				if err := dec.Decode(&obj.Object); err != nil {
					if errors.Is(err, io.EOF) {
						break
					}
					return fmt.Errorf("decode %s: %w", f, err)
				}
				if obj.GetKind() != "CustomResourceDefinition" {
					continue
				}
				data, err := obj.MarshalJSON()
				if err != nil {
					return err
				}
				force := true
				if _, err := dyn.Resource(crdGVR).Patch(ctx, obj.GetName(), types.ApplyPatchType, data,
					metav1.PatchOptions{FieldManager: "ucloud-im-localenv", Force: &force}); err != nil {
					return fmt.Errorf("apply CRD %s: %w", obj.GetName(), err)
				}
				names = append(names, obj.GetName())
			}
		}
	}
	for _, name := range names {
		if err := pollUntil(ctx, func(ctx context.Context) error {
			crd, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return nil
				}
			}
			return fmt.Errorf("CRD %s not established yet", name)
		}); err != nil {
			return err
		}
	}
	return nil
}

// createNode registers the node KWOK pretends to run; it is large (thousands of jobs' worth) so that
// scheduling never fails for room unless a test makes it.
func createNode(ctx context.Context, cfg *rest.Config, name string) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("20000"),
		corev1.ResourceMemory: resource.MustParse("80Ti"),
		corev1.ResourcePods:   resource.MustParse("20000"),
		"nvidia.com/gpu":      resource.MustParse("64"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	_, err = cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// nodeSchedulable checks that the node is Ready and the controller manager removed the not-ready taint
// admission put on it; until then the scheduler places nothing there.
func nodeSchedulable(cfg *rest.Config, name string) func(context.Context) error {
	cs, err := kubernetes.NewForConfig(cfg)
	return func(ctx context.Context) error {
		if err != nil {
			return err
		}
		node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ready := false
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return fmt.Errorf("node %s not Ready yet", name)
		}
		for _, t := range node.Spec.Taints {
			if t.Effect == corev1.TaintEffectNoSchedule {
				return fmt.Errorf("node %s still tainted %s", name, t.Key)
			}
		}
		return nil
	}
}

// serviceAccountExists checks for a ServiceAccount; pods are refused until their namespace has 'default'.
func serviceAccountExists(cfg *rest.Config, namespace, name string) func(context.Context) error {
	cs, err := kubernetes.NewForConfig(cfg)
	return func(ctx context.Context) error {
		if err != nil {
			return err
		}
		_, err := cs.CoreV1().ServiceAccounts(namespace).Get(ctx, name, metav1.GetOptions{})
		return err
	}
}
