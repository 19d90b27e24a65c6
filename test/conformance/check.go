package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// ProblemKind says what a misfit costs on Core's side.
type ProblemKind string

const (
	// Mismatch: encoding/json fails on the document, so core2 refuses it (a 502 to the user for an
	// answer, a 400 for a request).
	Mismatch ProblemKind = "mismatch"
	// Unknown: a field the type does not have; core2 drops it silently, so it carries nothing.
	Unknown ProblemKind = "unknown"
	// Missing: a field core2 always sends is absent; core2 reads its zero value.
	Missing ProblemKind = "missing"
	// Null: null where the type has no null; core2 reads the zero value.
	Null ProblemKind = "null"
)

// Problem is one place where a document does not fit a UCloud type.
type Problem struct {
	Path   string
	Kind   ProblemKind
	Detail string
}

func (p Problem) String() string { return fmt.Sprintf("%s %s: %s", p.Kind, p.Path, p.Detail) }

// Check reports where raw does not fit the UCloud type typeName as encoding/json decodes it; the
// problems are sorted by path. An error means typeName is not in the reference.
func (r *Reference) Check(typeName string, raw []byte) ([]Problem, error) {
	s, ok := r.Types[typeName]
	if !ok {
		return nil, fmt.Errorf("conformance: type %q is not in the reference", typeName)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []Problem{{Path: "$", Kind: Mismatch, Detail: "not JSON: " + err.Error()}}, nil
	}
	if dec.More() {
		return []Problem{{Path: "$", Kind: Mismatch, Detail: "data after the JSON value"}}, nil
	}
	c := checker{defs: r.Defs}
	c.value("$", v, s)
	sort.SliceStable(c.out, func(i, j int) bool { return c.out[i].Path < c.out[j].Path })
	return c.out, nil
}

// Only returns the problems of the given kinds.
func Only(ps []Problem, kinds ...ProblemKind) []Problem {
	var out []Problem
	for _, p := range ps {
		for _, k := range kinds {
			if p.Kind == k {
				out = append(out, p)
			}
		}
	}
	return out
}

type checker struct {
	defs map[string]*Shape
	out  []Problem
}

func (c *checker) add(path string, kind ProblemKind, format string, args ...any) {
	c.out = append(c.out, Problem{Path: path, Kind: kind, Detail: fmt.Sprintf(format, args...)})
}

func (c *checker) value(path string, v any, s *Shape) {
	nullable := s.Nullable
	if s.Ref != "" {
		def, ok := c.defs[s.Ref]
		if !ok {
			c.add(path, Mismatch, "reference has no definition of %s", s.Ref)
			return
		}
		s = def
	}
	if v == nil {
		switch {
		case nullable:
		case len(s.Kinds) > 0:
			// A type with its own decoder that refuses null (foundation.Timestamp).
			c.add(path, Mismatch, "null is refused here (accepts %s)", strings.Join(s.Kinds, ", "))
		default:
			c.add(path, Null, "null where %s is expected", s.Kind)
		}
		return
	}
	got := kindOf(v)
	if len(s.Kinds) > 0 {
		for _, k := range s.Kinds {
			if k == got || (k == "number" && got == "integer") {
				return
			}
		}
		c.add(path, Mismatch, "%s where %s is expected", got, strings.Join(s.Kinds, " or "))
		return
	}
	switch s.Kind {
	case "any":
	case "string", "boolean":
		if got != s.Kind {
			c.add(path, Mismatch, "%s where %s is expected", got, s.Kind)
		}
	case "number":
		if got != "number" && got != "integer" {
			c.add(path, Mismatch, "%s where a number is expected", got)
		}
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			c.add(path, Mismatch, "%s where an integer is expected", got)
			return
		}
		var err error
		if s.Unsigned {
			_, err = strconv.ParseUint(n.String(), 10, 64)
		} else {
			_, err = strconv.ParseInt(n.String(), 10, 64)
		}
		if err != nil {
			c.add(path, Mismatch, "%s is not an integer of this type", n)
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			c.add(path, Mismatch, "%s where an array is expected", got)
			return
		}
		for i, e := range arr {
			c.value(fmt.Sprintf("%s[%d]", path, i), e, s.Items)
		}
	case "map":
		obj, ok := v.(map[string]any)
		if !ok {
			c.add(path, Mismatch, "%s where an object is expected", got)
			return
		}
		for _, k := range sortedKeys(obj) {
			if s.Keys == "integer" {
				if _, err := strconv.ParseInt(k, 10, 64); err != nil {
					c.add(path, Mismatch, "key %q is not an integer", k)
				}
			}
			c.value(path+"."+k, obj[k], s.Values)
		}
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			c.add(path, Mismatch, "%s where an object is expected", got)
			return
		}
		c.object(path, obj, s.Fields)
	default:
		c.add(path, Mismatch, "reference has an unknown kind %q", s.Kind)
	}
}

// object matches keys to fields as encoding/json does: exactly, else ignoring case.
func (c *checker) object(path string, obj map[string]any, fields map[string]*Field) {
	seen := map[string]bool{}
	for _, k := range sortedKeys(obj) {
		name := k
		if _, ok := fields[k]; !ok {
			name = ""
			for f := range fields {
				if strings.EqualFold(f, k) {
					name = f
				}
			}
		}
		if name == "" {
			c.add(path+"."+k, Unknown, "no such field in the UCloud type")
			continue
		}
		seen[name] = true
		f := fields[name]
		c.value(path+"."+k, obj[k], &f.Shape)
	}
	for _, name := range sortedKeys(fields) {
		if !seen[name] && !fields[name].Optional {
			c.add(path+"."+name, Missing, "absent (%s)", fields[name].GoType)
		}
	}
}

func kindOf(v any) string {
	switch v := v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		if _, err := strconv.ParseInt(v.String(), 10, 64); err == nil {
			return "integer"
		}
		return "number"
	}
	return "null"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// CheckQuery reports where the query of a GET call does not fit what core2 reads for it
// (rpc.ParametersToStruct): an unknown parameter is ignored by core2, a value that does not parse is a
// 400.
func CheckQuery(c Call, q url.Values) []Problem {
	var out []Problem
	for _, k := range sortedKeys(q) {
		kind, ok := c.Query[k]
		if !ok {
			if dot := strings.IndexByte(k, '.'); dot > 0 && c.Query[k[:dot]] == "map" {
				continue
			}
			out = append(out, Problem{Path: "?" + k, Kind: Unknown, Detail: "core2 reads no such parameter"})
			continue
		}
		v := q.Get(k)
		var err error
		switch kind {
		case "boolean":
			_, err = strconv.ParseBool(v)
		case "integer":
			_, err = strconv.ParseInt(v, 10, 64)
		case "unsigned":
			_, err = strconv.ParseUint(v, 10, 64)
		case "number":
			_, err = strconv.ParseFloat(v, 64)
		}
		if err != nil {
			out = append(out, Problem{Path: "?" + k, Kind: Mismatch, Detail: fmt.Sprintf("%q is not a %s", v, kind)})
		}
	}
	return out
}
