package kube

// ClusterEnv is how a function reaches the cluster and which namespace holds the jobs.
type ClusterEnv struct {
	// Kubeconfig is empty in a cluster (in-cluster config); make run and the tests set it.
	Kubeconfig    string `envconfig:"KUBECONFIG"`
	JobsNamespace string `envconfig:"JOBS_NAMESPACE" default:"ucloud-jobs"`
}
