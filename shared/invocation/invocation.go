// Package invocation turns a UCloud application's invocation template and a job's parameter values into
// the command line and environment its process gets, as UCloud defines them: defaults fill what the user
// left out, each invocation part (word, var, bool_flag, env) becomes zero or more arguments, and file and
// directory parameters become paths inside the container through the caller's mapping.
package invocation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// PathMapper maps a UCloud path (/<drive>/folder/file) given as a file or directory parameter to where
// the job's container sees it.
type PathMapper func(ucloudPath string) (containerPath string, err error)

// EnvVar is one environment variable of the application.
type EnvVar struct {
	Name  string
	Value string
}

// Command is what the application's process is started with: its argument vector (Args[0] is the
// program) and the application's own environment variables, sorted by name.
type Command struct {
	Args []string
	Env  []EnvVar
}

// ErrUnsupported is an invocation this package cannot build (a whole-script Jinja template).
var ErrUnsupported = errors.New("unsupported invocation")

// ErrBadValue is a parameter value that does not fit its parameter.
var ErrBadValue = errors.New("bad parameter value")

// Build makes the command of app for the given parameter values (the job's specification.parameters).
func Build(app ucloud.ApplicationInvocation, values map[string]ucloud.AppParameterValue, mapPath PathMapper) (Command, error) {
	if len(app.Invocation) == 1 && app.Invocation[0].Type == ucloud.InvocationJinja {
		// UCloud renders such a template into a script in a sandboxed init container of its own image.
		return Command{}, fmt.Errorf("%w: the application's command is a Jinja template, which this provider does not render", ErrUnsupported)
	}
	b := builder{values: resolve(app.Parameters, values), mapPath: mapPath}
	var cmd Command
	for _, part := range app.Invocation {
		args, err := b.part(part)
		if err != nil {
			return Command{}, err
		}
		cmd.Args = append(cmd.Args, args...)
	}
	if len(cmd.Args) == 0 {
		return Command{}, fmt.Errorf("%w: the application's command line is empty for these parameters", ErrBadValue)
	}
	names := make([]string, 0, len(app.Environment))
	for name := range app.Environment {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		args, err := b.part(app.Environment[name])
		if err != nil {
			return Command{}, err
		}
		cmd.Env = append(cmd.Env, EnvVar{Name: name, Value: strings.Join(args, " ")})
	}
	return cmd, nil
}

// paramValue is a parameter with the value it takes in this job.
type paramValue struct {
	param ucloud.ApplicationParameter
	value ucloud.AppParameterValue
}

// resolve gives every parameter its value: the job's when it sent one of the parameter's kind, else the
// parameter's default. Values of parameters the application does not declare are dropped, except those
// Core injects itself (_injected_*), which keep no declaration.
func resolve(params []ucloud.ApplicationParameter, values map[string]ucloud.AppParameterValue) map[string]paramValue {
	out := map[string]paramValue{}
	for _, p := range params {
		if v, ok := defaultValue(p); ok {
			out[p.Name] = paramValue{param: p, value: v}
		}
	}
	for name, v := range values {
		if strings.HasPrefix(name, "_injected_") {
			out[name] = paramValue{value: v}
			continue
		}
		i := slices.IndexFunc(params, func(p ucloud.ApplicationParameter) bool { return p.Name == name })
		if i < 0 || !fits(params[i].Type, v.Type) {
			continue
		}
		out[name] = paramValue{param: params[i], value: v}
	}
	return out
}

// fits says whether a value of type valueType may stand for a parameter of type paramType.
func fits(paramType, valueType string) bool {
	want, ok := map[string]string{
		ucloud.ParameterInputFile: ucloud.ValueFile, ucloud.ParameterInputDirectory: ucloud.ValueFile,
		ucloud.ParameterBoolean: ucloud.ValueBoolean, ucloud.ParameterFloatingPoint: ucloud.ValueFloatingPoint,
		ucloud.ParameterInteger: ucloud.ValueInteger, ucloud.ParameterIngress: ucloud.ValueIngress,
		ucloud.ParameterLicenseServer: ucloud.ValueLicense, ucloud.ParameterNetworkIP: ucloud.ValueNetwork,
		ucloud.ParameterPeer: ucloud.ValuePeer, ucloud.ParameterText: ucloud.ValueText,
		ucloud.ParameterEnumeration: ucloud.ValueText, ucloud.ParameterTextArea: ucloud.ValueText,
		ucloud.ParameterModuleList: ucloud.ValueModuleList,
	}[paramType]
	return !ok || want == valueType
}

// defaultValue reads a parameter's default, written either as the bare value or as a value object; only
// booleans, numbers and texts have defaults, and one not of the parameter's kind counts as none.
func defaultValue(p ucloud.ApplicationParameter) (ucloud.AppParameterValue, bool) {
	raw := bytes.TrimSpace(p.DefaultValue)
	if len(raw) == 0 || string(raw) == "null" {
		return ucloud.AppParameterValue{}, false
	}
	var valueType string
	var target any
	switch p.Type {
	case ucloud.ParameterBoolean:
		valueType, target = ucloud.ValueBoolean, new(bool)
	case ucloud.ParameterInteger:
		valueType, target = ucloud.ValueInteger, new(int64)
	case ucloud.ParameterFloatingPoint:
		valueType, target = ucloud.ValueFloatingPoint, new(float64)
	case ucloud.ParameterText, ucloud.ParameterTextArea, ucloud.ParameterEnumeration:
		valueType, target = ucloud.ValueText, new(string)
	default:
		return ucloud.AppParameterValue{}, false
	}
	if json.Unmarshal(raw, target) != nil {
		wrapped := struct{ Value json.RawMessage }{}
		if json.Unmarshal(raw, &wrapped) != nil || json.Unmarshal(wrapped.Value, target) != nil {
			return ucloud.AppParameterValue{}, false
		}
	}
	canonical, _ := json.Marshal(target)
	return ucloud.AppParameterValue{Type: valueType, Value: canonical}, true
}

type builder struct {
	values  map[string]paramValue
	mapPath PathMapper
}

// part is the arguments one invocation part stands for.
func (b builder) part(p ucloud.InvocationParameter) ([]string, error) {
	switch p.Type {
	case ucloud.InvocationWord:
		return []string{p.Word}, nil
	case ucloud.InvocationEnv:
		// UCloud passes the reference itself, not the variable's value: the container's shell expands it.
		return []string{"$" + p.Variable}, nil
	case ucloud.InvocationBoolFlag:
		pv, ok := b.values[p.VariableName]
		if !ok {
			return nil, nil
		}
		var on bool
		if json.Unmarshal(pv.value.Value, &on) != nil || !on {
			return nil, nil
		}
		return []string{strings.TrimSpace(p.Flag)}, nil
	case ucloud.InvocationVar:
		return b.variables(p)
	}
	// A Jinja part among others renders to nothing, as does a type UCloud does not know.
	return nil, nil
}

// variables is a var part: each named parameter that has a value, with the per-variable prefix and suffix
// as separate arguments or joined to the value, all between the global prefix and suffix. Nothing at all,
// not even the global prefix, when none of them has a value.
func (b builder) variables(p ucloud.InvocationParameter) ([]string, error) {
	prefixGlobal, suffixGlobal := strings.Trim(p.PrefixGlobal, " "), strings.Trim(p.SuffixGlobal, " ")
	prefixVar, suffixVar := strings.Trim(p.PrefixVariable, " "), strings.Trim(p.SuffixVariable, " ")
	var middle []string
	for _, name := range p.VariableNames {
		pv, ok := b.values[name]
		if !ok {
			continue
		}
		value, err := b.render(name, pv)
		if err != nil {
			return nil, err
		}
		arg := ""
		if prefixVar != "" {
			if p.IsPrefixVariablePartOfArg {
				arg = prefixVar
			} else {
				middle = append(middle, prefixVar)
			}
		}
		arg += value
		if p.IsSuffixVariablePartOfArg {
			middle = append(middle, arg+suffixVar)
		} else {
			middle = append(middle, arg)
			if suffixVar != "" {
				middle = append(middle, suffixVar)
			}
		}
	}
	if len(middle) == 0 || prefixGlobal == "" && suffixGlobal == "" {
		return middle, nil
	}
	var out []string
	if prefixGlobal != "" {
		out = append(out, prefixGlobal)
	}
	out = append(out, middle...)
	if suffixGlobal != "" {
		out = append(out, suffixGlobal)
	}
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out, nil
}

// render is the text a parameter's value stands for on the command line.
func (b builder) render(name string, pv paramValue) (string, error) {
	p, v := pv.param, pv.value
	switch p.Type {
	case ucloud.ParameterText, ucloud.ParameterTextArea, ucloud.ParameterFloatingPoint:
		return plain(name, v.Value, false)
	case ucloud.ParameterInteger:
		return plain(name, v.Value, true)
	case ucloud.ParameterBoolean:
		var on bool
		if err := json.Unmarshal(v.Value, &on); err != nil {
			return "", fmt.Errorf("%w: parameter %s must be true or false", ErrBadValue, name)
		}
		switch {
		case on && p.TrueValue != "":
			return p.TrueValue, nil
		case !on && p.FalseValue != "":
			return p.FalseValue, nil
		}
		return strconv.FormatBool(on), nil
	case ucloud.ParameterEnumeration:
		s, err := plain(name, v.Value, false)
		if err != nil {
			return "", err
		}
		for _, o := range p.Options {
			if o.Name == s {
				return o.Value, nil
			}
		}
		return s, nil
	case ucloud.ParameterInputFile, ucloud.ParameterInputDirectory:
		path, err := b.mapPath(v.Path)
		if err != nil {
			return "", fmt.Errorf("parameter %s: %w", name, err)
		}
		return path, nil
	case ucloud.ParameterPeer:
		return v.Hostname, nil
	case ucloud.ParameterLicenseServer, ucloud.ParameterNetworkIP, ucloud.ParameterIngress:
		return v.ID, nil
	}
	return "", nil
}

// plain is a text, number or boolean value as text. Numbers read as UCloud's IM prints them (Go's %v of a
// float64: the shortest form, with an exponent from 1e6 up and below 1e-4), except that an integer
// parameter's whole number is printed in full (10000000, where UCloud's IM passes 1e+07).
func plain(name string, raw json.RawMessage, integer bool) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("%w: parameter %s has no value", ErrBadValue, name)
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case json.Number:
		if integer {
			if i, err := v.Int64(); err == nil {
				return strconv.FormatInt(i, 10), nil
			}
		}
		f, err := v.Float64()
		if err != nil {
			return "", fmt.Errorf("%w: parameter %s: %w", ErrBadValue, name, err)
		}
		return strconv.FormatFloat(f, 'g', -1, 64), nil
	}
	return "", fmt.Errorf("%w: parameter %s must be a text, a number or a boolean", ErrBadValue, name)
}
