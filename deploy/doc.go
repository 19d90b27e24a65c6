// Package deploy holds what an operator applies with `kubectl apply -k deploy/`: namespaces, ServiceAccounts,
// least-privilege RBAC, the ConfigMap, the Secrets (generated from files in deploy/secrets/), PostgreSQL, the
// jobs namespace's extras, and the Knative objects of ../knative. Its tests render that kustomization with
// kustomize's Go API and check every object on a real apiserver.
package deploy
