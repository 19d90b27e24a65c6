package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/util/yaml"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/ucloud-im/knative-im/knative"
)

// deployedRuntimeEnv is the Go runtime's settings (GOMAXPROCS, GOMEMLIMIT, GOGC, GODEBUG) that knative/<function>.yaml
// gives the function, so the benchmark runs it as it is deployed rather than with this machine's defaults.
func deployedRuntimeEnv(function string) ([]string, error) {
	raw, err := knative.Manifests.ReadFile(function + ".yaml")
	if err != nil {
		return nil, err
	}
	dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(string(raw)), 4096)
	for {
		var ksvc servingv1.Service
		if err := dec.Decode(&ksvc); errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("knative/%s.yaml has no Knative Service", function)
		} else if err != nil {
			return nil, fmt.Errorf("knative/%s.yaml: %w", function, err)
		}
		if ksvc.Kind != "Service" || len(ksvc.Spec.Template.Spec.Containers) == 0 {
			continue
		}
		var vars []string
		for _, e := range ksvc.Spec.Template.Spec.Containers[0].Env {
			switch e.Name {
			case "GOMAXPROCS", "GOMEMLIMIT", "GOGC", "GODEBUG":
				vars = append(vars, e.Name+"="+e.Value)
			}
		}
		return vars, nil
	}
}
