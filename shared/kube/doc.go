// Package kube holds what the functions share about Kubernetes and no more: the names, labels and
// annotations of a job's objects that UCloud's tooling relies on (names.go), the configuration of every
// function's client (client.go: ClusterEnv, Config, NewClientset), the readiness check against the jobs namespace (ready.go), how
// an apiserver error that is the connection's is told apart (connerr.go), and Ensure, the create that a
// retry may repeat (ensure.go). The objects themselves are built by the packages that own them
// (shared/jobs, shared/iapps, shared/appdomain).
package kube
