package invocation_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/ucloud-im/knative-im/shared/invocation"
	"github.com/ucloud-im/knative-im/test/apps"
)

// FuzzBuild: whatever application and values Core (or a user's values through Core) sends, Build answers a
// command with a program and one value per environment variable, or an error; it never panics (UCloud's IM does on a boolean that
// is not one) and never calls the path mapping for anything but a file or folder value's path.
func FuzzBuild(f *testing.F) {
	for _, name := range apps.Names() {
		fx := apps.Load(name)
		raw, _ := json.Marshal(fx)
		f.Add(raw)
	}
	f.Add([]byte(`{"application":{"invocation":{"invocation":[{"type":"bool_flag","variableName":"b","flag":"-x"},{"type":"var","variableNames":["b","b"],"prefixGlobal":" ","suffixVariable":" "}],
		"parameters":[{"type":"boolean","name":"b","defaultValue":{"value":"x"}}]}},"parameters":{"b":{"type":"boolean","value":[1]}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var fx apps.Fixture
		if json.Unmarshal(raw, &fx) != nil {
			return
		}
		files := map[string]bool{}
		for _, v := range fx.Parameters {
			files[v.Path] = true
		}
		mapPath := func(p string) (string, error) {
			if !files[p] {
				t.Fatalf("mapping asked for %q, which no value carries", p)
			}
			if p == "" {
				return "", errors.New("no path")
			}
			return "/work/x", nil
		}
		cmd, err := invocation.Build(fx.Application.Invocation, fx.Parameters, mapPath)
		if err != nil {
			return
		}
		if len(cmd.Args) == 0 {
			t.Fatal("no program")
		}
		if len(cmd.Env) != len(fx.Application.Invocation.Environment) {
			t.Fatalf("%d variables for %d", len(cmd.Env), len(fx.Application.Invocation.Environment))
		}
	})
}
