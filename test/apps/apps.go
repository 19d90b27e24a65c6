// Package apps holds real application definitions for tests: UCloud applications as Core resolves them
// (status.resolvedApplication of a job) with the parameter values a user submits, generated from UCloud's
// own types (see fixtures/README.md).
package apps

import (
	"embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

//go:embed fixtures/*.json
var fixtures embed.FS

// Fixture is an application and the parameter values of a job that runs it.
type Fixture struct {
	Application ucloud.Application                  `json:"application"`
	Parameters  map[string]ucloud.AppParameterValue `json:"parameters"`
}

// Load reads the fixture name (fixtures/<name>.json); an unknown or broken fixture is a bug in the test,
// so it panics.
func Load(name string) Fixture {
	raw, err := fixtures.ReadFile("fixtures/" + name + ".json")
	if err != nil {
		panic(fmt.Sprintf("apps: no fixture %q: %v", name, err))
	}
	var f Fixture
	if err := json.Unmarshal(raw, &f); err != nil {
		panic(fmt.Sprintf("apps: fixture %q: %v", name, err))
	}
	return f
}

// Raw is the fixture's application exactly as generated, for tests that send Core's bytes.
func Raw(name string) json.RawMessage {
	raw, err := fixtures.ReadFile("fixtures/" + name + ".json")
	if err != nil {
		panic(fmt.Sprintf("apps: no fixture %q: %v", name, err))
	}
	var f struct {
		Application json.RawMessage `json:"application"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		panic(fmt.Sprintf("apps: fixture %q: %v", name, err))
	}
	return f.Application
}

// Names lists the fixtures.
func Names() []string {
	entries, _ := fixtures.ReadDir("fixtures")
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Apply makes job run the fixture's application with its parameters, as Core sends it: the
// specification names the application and carries the values, the status the resolved application.
func (f Fixture) Apply(job *ucloud.Job) {
	app := f.Application
	job.Specification.Application = ucloud.NameAndVersion{Name: app.Metadata.Name, Version: app.Metadata.Version}
	job.Specification.Parameters = map[string]ucloud.AppParameterValue{}
	for k, v := range f.Parameters {
		job.Specification.Parameters[k] = v
	}
	if job.Specification.Resources == nil {
		job.Specification.Resources = []ucloud.AppParameterValue{}
	}
	job.Status.ResolvedApplication = &app
}
