package kube

import (
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Config is the client configuration: from kubeconfig when given (outside a cluster), in-cluster otherwise.
func Config(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("KUBECONFIG %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("no KUBECONFIG and not in a cluster: %w", err)
	}
	return cfg, nil
}

// NewClientset builds a clientset with a bounded per-request timeout, so an unreachable apiserver fails a
// call instead of hanging it.
func NewClientset(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := ClientConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// ClientConfig is Config with the limits every client of this project uses.
func ClientConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := Config(kubeconfig)
	if err != nil {
		return nil, err
	}
	// client-go's default of 5 requests/s would make every configuration change wait its turn.
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 100, 200
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	return cfg, nil
}

// ClusterEnv is how a function reaches the cluster and which namespace holds the jobs.
type ClusterEnv struct {
	// Kubeconfig is empty in a cluster (in-cluster config); make run and the tests set it.
	Kubeconfig    string `envconfig:"KUBECONFIG"`
	JobsNamespace string `envconfig:"JOBS_NAMESPACE" default:"ucloud-jobs"`
}
