// Package conformance checks the IM's wire traffic against real UCloud/Core (core2): the request bodies
// core2 sends and the shapes of the types core2 decodes, generated from UCloud's own Go types (see
// testdata/README.md). Reference loads them; Check and CheckQuery say where a body or query does not fit.
package conformance

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Shape is how encoding/json decodes a JSON value into one UCloud type (testdata/ucloud.json).
type Shape struct {
	Kind     string            `json:"kind"`  // object, map, array, string, integer, number, boolean, any
	Kinds    []string          `json:"kinds"` // a type with its own decoder: the JSON kinds it accepts
	Ref      string            `json:"ref"`   // a struct, described in Reference.Defs
	Fields   map[string]*Field `json:"fields"`
	Items    *Shape            `json:"items"`
	Values   *Shape            `json:"values"`
	Keys     string            `json:"keys"` // map keys: string or integer
	Nullable bool              `json:"nullable"`
	Unsigned bool              `json:"unsigned"`
}

// Field is one field of an object; Optional fields may be absent (omitempty, pointer or util.Option).
type Field struct {
	Shape
	Optional bool   `json:"optional"`
	GoType   string `json:"goType"`
}

// Call is one HTTP call between Core and the provider as UCloud's rpc client makes it.
type Call struct {
	Name         string            `json:"name"`
	UCloudCall   string            `json:"ucloudCall"`
	Method       string            `json:"method"`
	Path         string            `json:"path"`
	Query        map[string]string `json:"query"`
	Body         string            `json:"body"`
	BodyBytes    int               `json:"bodyBytes"`
	Username     string            `json:"username"`
	RequestType  string            `json:"requestType"`
	ResponseType string            `json:"responseType"`
}

// Reference is testdata/ucloud.json.
type Reference struct {
	UCloudRepository string            `json:"ucloudRepository"`
	UCloudCommit     string            `json:"ucloudCommit"`
	CoreToProvider   []Call            `json:"coreToProvider"`
	ProviderToCore   []Call            `json:"providerToCore"`
	ErrorType        string            `json:"errorType"`
	Types            map[string]*Shape `json:"types"`
	Defs             map[string]*Shape `json:"defs"`

	dir string
}

// Dir is this package's testdata folder, wherever the test runs from.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata")
}

// Load reads the reference from dir (Dir() for the checked-in one).
func Load(dir string) (*Reference, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "ucloud.json"))
	if err != nil {
		return nil, err
	}
	var r Reference
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("conformance: %s: %w", filepath.Join(dir, "ucloud.json"), err)
	}
	r.dir = dir
	return &r, nil
}

// Find returns the call named name (e.g. "jobs.create", "jobs.control.update") in either direction.
func (r *Reference) Find(name string) (Call, error) {
	for _, list := range [][]Call{r.CoreToProvider, r.ProviderToCore} {
		for _, c := range list {
			if c.Name == name {
				return c, nil
			}
		}
	}
	return Call{}, fmt.Errorf("conformance: no call %q in the reference", name)
}

// Body is the exact body core2 (or UCloud's client) sent for c; nil for a call without one.
func (r *Reference) Body(c Call) ([]byte, error) {
	if c.Body == "" {
		return nil, nil
	}
	return os.ReadFile(filepath.Join(r.dir, c.Body))
}
