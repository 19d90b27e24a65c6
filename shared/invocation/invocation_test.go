package invocation_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"reflect"
	"strings"
	"testing"

	"github.com/ucloud-im/knative-im/shared/invocation"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/apps"
)

// toWork maps a UCloud path as UCloud's Kubernetes IM mounts a job's folders: /work/<name>.
func toWork(p string) (string, error) {
	if p == "" {
		return "", errors.New("no path")
	}
	return "/work/" + path.Base(p), nil
}

// TestRealApplicationsGiveTheOriginalsCommand: for applications built from UCloud's own types, the
// command and environment are what UCloud's Kubernetes IM would run (written out from its rules).
func TestRealApplicationsGiveTheOriginalsCommand(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		want    invocation.Command
	}{
		{"batch", invocation.Command{Args: []string{
			"python3", "/opt/train.py",
			"--name", "baseline 'v2' $(whoami)", // text: one argument, verbatim
			"--epochs=12000000",  // integer, joined to its prefix (UCloud's IM: --epochs=1.2e+07)
			"--batch-size", "32", // default written as a value object
			"--lr=0.0005",        // bare default
			"--no-augment",       // boolean false -> its falseValue
			"--optimizer", "sgd", // enumeration: option name -> value
			// notes: optional, not given: nothing, not even its prefix
			"--tags", "nightly,final", // global prefix, suffix joined to the value
		}}},
		{"web", invocation.Command{
			Args: []string{"/init", "--data-dir", "/work/data", "--threads", "4"},
			Env:  []invocation.EnvVar{{Name: "DISABLE_AUTH", Value: "true"}},
		}},
		{"envflag-on", invocation.Command{
			Args: []string{"blastn", "-query", "/work/query.fasta", "-db", "nt", "-html", "-evalue", "1e-05"},
			Env: []invocation.EnvVar{
				{Name: "BLASTDB", Value: "/work/blastdb"}, {Name: "BLAST_HOME", Value: "$HOME"},
				{Name: "BLAST_USAGE_REPORT", Value: "false"},
			},
		}},
		{"envflag-off", invocation.Command{
			Args: []string{"blastn", "-query", "/work/query.fasta", "-db", "nt", "-evalue", "1e-05"},
			Env: []invocation.EnvVar{
				{Name: "BLASTDB", Value: "/work/blastdb"}, {Name: "BLAST_HOME", Value: "$HOME"},
				{Name: "BLAST_USAGE_REPORT", Value: "false"},
			},
		}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			f := apps.Load(tc.fixture)
			got, err := invocation.Build(f.Application.Invocation, f.Parameters, toWork)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}
}

func word(w string) ucloud.InvocationParameter {
	return ucloud.InvocationParameter{Type: ucloud.InvocationWord, Word: w}
}

func variables(names ...string) ucloud.InvocationParameter {
	return ucloud.InvocationParameter{Type: ucloud.InvocationVar, VariableNames: names}
}

func val(typ, raw string) ucloud.AppParameterValue {
	return ucloud.AppParameterValue{Type: typ, Value: json.RawMessage(raw)}
}

// TestInvocationRules: each of UCloud's rules on its own, the whole command compared.
func TestInvocationRules(t *testing.T) {
	text := func(name string) ucloud.ApplicationParameter {
		return ucloud.ApplicationParameter{Type: ucloud.ParameterText, Name: name, Optional: true}
	}
	integer := ucloud.ApplicationParameter{Type: ucloud.ParameterInteger, Name: "n", Optional: true}
	boolean := ucloud.ApplicationParameter{Type: ucloud.ParameterBoolean, Name: "b", Optional: true}
	for _, tc := range []struct {
		name   string
		inv    []ucloud.InvocationParameter
		params []ucloud.ApplicationParameter
		values map[string]ucloud.AppParameterValue
		want   []string
	}{
		{"global prefix and suffix around several variables, trimmed",
			[]ucloud.InvocationParameter{word("run"), {Type: ucloud.InvocationVar, VariableNames: []string{"a", "b"},
				PrefixGlobal: "  --in ", SuffixGlobal: " --end", PrefixVariable: " -f ", SuffixVariable: ";"}},
			[]ucloud.ApplicationParameter{text("a"), text("b")},
			map[string]ucloud.AppParameterValue{"a": val("text", `" x "`), "b": val("text", `"y"`)},
			[]string{"run", "--in", "-f", "x", ";", "-f", "y", ";", "--end"}},
		{"no globals: values keep their spaces",
			[]ucloud.InvocationParameter{word("run"), variables("a")}, []ucloud.ApplicationParameter{text("a")},
			map[string]ucloud.AppParameterValue{"a": val("text", `" x "`)}, []string{"run", " x "}},
		{"no value for any variable: not even the global prefix",
			[]ucloud.InvocationParameter{word("run"), {Type: ucloud.InvocationVar, VariableNames: []string{"a"}, PrefixGlobal: "--in"}},
			[]ucloud.ApplicationParameter{text("a")}, nil, []string{"run"}},
		{"boolean without true/false values",
			[]ucloud.InvocationParameter{word("run"), variables("b")}, []ucloud.ApplicationParameter{boolean},
			map[string]ucloud.AppParameterValue{"b": val("boolean", `true`)}, []string{"run", "true"}},
		{"bool_flag off, and one given a text: nothing",
			[]ucloud.InvocationParameter{word("run"), {Type: ucloud.InvocationBoolFlag, VariableName: "b", Flag: "-x"},
				{Type: ucloud.InvocationBoolFlag, VariableName: "t", Flag: "-y"}},
			[]ucloud.ApplicationParameter{boolean, text("t")},
			map[string]ucloud.AppParameterValue{"b": val("boolean", `false`), "t": val("text", `"true"`)}, []string{"run"}},
		{"a value of another type than the parameter's counts as none: the default stays",
			[]ucloud.InvocationParameter{word("run"), variables("n")},
			[]ucloud.ApplicationParameter{{Type: ucloud.ParameterInteger, Name: "n", DefaultValue: json.RawMessage(`{"type":"integer","value":7}`)}},
			map[string]ucloud.AppParameterValue{"n": val("text", `"; rm -rf /"`)}, []string{"run", "7"}},
		{"a default of the wrong kind is none",
			[]ucloud.InvocationParameter{word("run"), variables("n")},
			[]ucloud.ApplicationParameter{{Type: ucloud.ParameterInteger, Name: "n", DefaultValue: json.RawMessage(`"seven"`)}},
			nil, []string{"run"}},
		{"enumeration default by option name, and an unknown choice passed as given",
			[]ucloud.InvocationParameter{word("run"), variables("e", "f")},
			[]ucloud.ApplicationParameter{
				{Type: ucloud.ParameterEnumeration, Name: "e", DefaultValue: json.RawMessage(`{"type":"text","value":"Fast"}`),
					Options: []ucloud.EnumOption{{Name: "Fast", Value: "--fast"}}},
				{Type: ucloud.ParameterEnumeration, Name: "f", Options: []ucloud.EnumOption{{Name: "A", Value: "a"}}}},
			map[string]ucloud.AppParameterValue{"f": val("text", `"Z"`)}, []string{"run", "--fast", "Z"}},
		{"integers in full, a fractional value of an integer parameter as given",
			[]ucloud.InvocationParameter{word("run"), variables("n"), variables("m")},
			[]ucloud.ApplicationParameter{integer, {Type: ucloud.ParameterInteger, Name: "m"}},
			map[string]ucloud.AppParameterValue{"n": val("integer", `-9007199254740993`), "m": val("integer", `1.5`)},
			[]string{"run", "-9007199254740993", "1.5"}},
		{"peer, ingress, network and license values",
			[]ucloud.InvocationParameter{word("run"), variables("p", "i", "ip", "l")},
			[]ucloud.ApplicationParameter{{Type: ucloud.ParameterPeer, Name: "p"}, {Type: ucloud.ParameterIngress, Name: "i"},
				{Type: ucloud.ParameterNetworkIP, Name: "ip"}, {Type: ucloud.ParameterLicenseServer, Name: "l"}},
			map[string]ucloud.AppParameterValue{"p": {Type: "peer", Hostname: "db", JobID: "9"}, "i": {Type: "ingress", ID: "12"},
				"ip": {Type: "network", ID: "13"}, "l": {Type: "license_server", ID: "14"}},
			[]string{"run", "db", "12", "13", "14"}},
		{"a Jinja part among others and an unknown part render to nothing; env is the reference",
			[]ucloud.InvocationParameter{word("run"), {Type: ucloud.InvocationJinja, Template: "{{ x }}"}, {Type: "future"},
				{Type: ucloud.InvocationEnv, Variable: "USER"}},
			nil, nil, []string{"run", "$USER"}},
		{"a value Core injects is kept without a declaration",
			[]ucloud.InvocationParameter{word("run"), {Type: ucloud.InvocationVar, VariableNames: []string{"_injected_x"}, PrefixVariable: "-i"}},
			nil, map[string]ucloud.AppParameterValue{"_injected_x": val("text", `"v"`)}, []string{"run", "-i", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := invocation.Build(ucloud.ApplicationInvocation{Invocation: tc.inv, Parameters: tc.params}, tc.values, toWork)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Args, tc.want) {
				t.Errorf("got %q, want %q", got.Args, tc.want)
			}
		})
	}
}

// TestInvocationRefusals: what cannot be built is an error of the right kind, not a wrong command.
func TestInvocationRefusals(t *testing.T) {
	file := ucloud.ApplicationParameter{Type: ucloud.ParameterInputFile, Name: "f"}
	for _, tc := range []struct {
		name   string
		app    ucloud.ApplicationInvocation
		values map[string]ucloud.AppParameterValue
		want   error
		says   string
	}{
		{"a whole-script Jinja template", ucloud.ApplicationInvocation{Invocation: []ucloud.InvocationParameter{{Type: ucloud.InvocationJinja, Template: "echo"}}},
			nil, invocation.ErrUnsupported, "Jinja"},
		{"an empty command line", ucloud.ApplicationInvocation{Invocation: []ucloud.InvocationParameter{variables("x")}},
			nil, invocation.ErrBadValue, "empty"},
		{"a boolean that is not one", ucloud.ApplicationInvocation{
			Invocation: []ucloud.InvocationParameter{word("run"), variables("b")},
			Parameters: []ucloud.ApplicationParameter{{Type: ucloud.ParameterBoolean, Name: "b"}}},
			map[string]ucloud.AppParameterValue{"b": val("boolean", `"yes"`)}, invocation.ErrBadValue, "parameter b"},
		{"a text that is an object", ucloud.ApplicationInvocation{
			Invocation: []ucloud.InvocationParameter{word("run"), variables("t")},
			Parameters: []ucloud.ApplicationParameter{{Type: ucloud.ParameterText, Name: "t"}}},
			map[string]ucloud.AppParameterValue{"t": val("text", `{"a":1}`)}, invocation.ErrBadValue, "parameter t"},
		{"a file the mapping refuses", ucloud.ApplicationInvocation{
			Invocation: []ucloud.InvocationParameter{word("run"), variables("f")}, Parameters: []ucloud.ApplicationParameter{file}},
			map[string]ucloud.AppParameterValue{"f": {Type: "file"}}, nil, "parameter f: no path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := invocation.Build(tc.app, tc.values, toWork)
			if err == nil {
				t.Fatalf("built %q", got.Args)
			}
			if tc.want != nil && !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q, want %v saying %q", err, tc.want, tc.says)
			}
		})
	}
}

// TestFloatsReadAsUCloudsIMPrintsThem: a floating point value is the text UCloud's IM passes (Go's %v
// of the float64 it decoded).
func TestFloatsReadAsUCloudsIMPrintsThem(t *testing.T) {
	app := ucloud.ApplicationInvocation{Invocation: []ucloud.InvocationParameter{word("run"), variables("x")},
		Parameters: []ucloud.ApplicationParameter{{Type: ucloud.ParameterFloatingPoint, Name: "x"}}}
	for _, raw := range []string{"0", "0.1", "0.0001", "0.00001", "1.5e-7", "3", "123456", "1234567", "1e21", "-2.5", "1e300", "0.30000000000000004"} {
		var f float64
		if err := json.Unmarshal([]byte(raw), &f); err != nil {
			t.Fatal(err)
		}
		got, err := invocation.Build(app, map[string]ucloud.AppParameterValue{"x": val("floating_point", raw)}, toWork)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprint(f); got.Args[1] != want {
			t.Errorf("%s: got %q, want %q", raw, got.Args[1], want)
		}
	}
}
