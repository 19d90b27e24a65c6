// Package knative holds the Knative manifests of the functions (Services, and the eventing objects that
// wire them), embedded so tests load and validate exactly what an operator applies.
package knative

import "embed"

//go:generate go run ../gateway/cmd/gen-api-ingress api-ingress.yaml

// Manifests are the YAML files of this folder.
//
//go:embed *.yaml
var Manifests embed.FS
