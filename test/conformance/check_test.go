package conformance

import (
	"net/url"
	"reflect"
	"testing"
)

// small is a reference with one struct that uses every kind of shape.
func small() *Reference {
	str := Shape{Kind: "string"}
	return &Reference{
		Types: map[string]*Shape{"T": {Ref: "pkg.T"}},
		Defs: map[string]*Shape{"pkg.T": {Kind: "object", Fields: map[string]*Field{
			"id":    {Shape: str},
			"count": {Shape: Shape{Kind: "integer", Unsigned: true}, Optional: true},
			"ratio": {Shape: Shape{Kind: "number"}, Optional: true},
			"at":    {Shape: Shape{Kinds: []string{"integer"}}, Optional: true},
			"note":  {Shape: Shape{Kind: "string", Nullable: true}, Optional: true},
			"tags":  {Shape: Shape{Kind: "array", Items: &str, Nullable: true}, Optional: true},
			"ports": {Shape: Shape{Kind: "map", Keys: "integer", Values: &Shape{Kind: "integer"}, Nullable: true}, Optional: true},
			"child": {Shape: Shape{Ref: "pkg.T", Nullable: true}, Optional: true},
			"extra": {Shape: Shape{Kind: "any", Nullable: true}, Optional: true},
		}}},
	}
}

func TestCheckReportsEveryMisfit(t *testing.T) {
	ref := small()
	cases := []struct {
		name, doc string
		want      []Problem
	}{
		{"fits", `{"id":"1","count":3,"ratio":2,"at":1795166043000,"note":null,"tags":["a"],"ports":{"80":8080},"child":{"id":"2"},"extra":[1,{"x":null}]}`, nil},
		{"field names match without case, as encoding/json does", `{"ID":"1"}`, nil},
		{"unknown field", `{"id":"1","utilization":true}`, []Problem{{"$.utilization", Unknown, "no such field in the UCloud type"}}},
		{"unknown field deep inside", `{"id":"1","child":{"id":"2","x":1}}`, []Problem{{"$.child.x", Unknown, "no such field in the UCloud type"}}},
		{"missing required field", `{"count":1}`, []Problem{{"$.id", Missing, "absent ()"}}},
		{"wrong kind", `{"id":5}`, []Problem{{"$.id", Mismatch, "integer where string is expected"}}},
		{"fraction for an integer", `{"id":"1","count":1.5}`, []Problem{{"$.count", Mismatch, "1.5 is not an integer of this type"}}},
		{"negative for an unsigned integer", `{"id":"1","count":-1}`, []Problem{{"$.count", Mismatch, "-1 is not an integer of this type"}}},
		{"null refused by a custom decoder", `{"id":"1","at":null}`, []Problem{{"$.at", Mismatch, "null is refused here (accepts integer)"}}},
		{"string for a custom integer", `{"id":"1","at":"2026-01-01"}`, []Problem{{"$.at", Mismatch, "string where integer is expected"}}},
		{"null for a plain string", `{"id":null}`, []Problem{{"$.id", Null, "null where string is expected"}}},
		{"array item of the wrong kind", `{"id":"1","tags":["a",2]}`, []Problem{{"$.tags[1]", Mismatch, "integer where string is expected"}}},
		{"map key that is not an integer", `{"id":"1","ports":{"web":80}}`, []Problem{{"$.ports", Mismatch, `key "web" is not an integer`}}},
		{"array for an object", `[]`, []Problem{{"$", Mismatch, "array where an object is expected"}}},
		{"empty body", ``, []Problem{{"$", Mismatch, "not JSON: EOF"}}},
		{"trailing data", `{"id":"1"} {}`, []Problem{{"$", Mismatch, "data after the JSON value"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ref.Check("T", []byte(c.doc))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Check(%s)\n got %v\nwant %v", c.doc, got, c.want)
			}
		})
	}
	if _, err := ref.Check("Nope", []byte(`{}`)); err == nil {
		t.Fatal("a type not in the reference must be an error")
	}
}

func TestCheckQueryReadsParametersAsCore2Does(t *testing.T) {
	c := Call{Query: map[string]string{"id": "string", "includeProduct": "boolean", "itemsPerPage": "integer", "filterLabels": "map"}}
	got := CheckQuery(c, url.Values{"id": {"7"}, "includeProduct": {"yes"}, "itemsPerPage": {"10"}, "filterLabels.a": {"b"}, "includeEverything": {"true"}})
	want := []Problem{
		{"?includeEverything", Unknown, "core2 reads no such parameter"},
		{"?includeProduct", Mismatch, `"yes" is not a boolean`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// The checked-in fixtures are what UCloud's client marshalled, so each must fit its own type exactly:
// this keeps the generator's shapes and this checker honest with each other.
func TestFixturesFitTheirOwnTypes(t *testing.T) {
	ref, err := Load(Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(ref.CoreToProvider) < 11 || len(ref.ProviderToCore) < 5 {
		t.Fatalf("reference lists %d Core->provider and %d provider->Core calls", len(ref.CoreToProvider), len(ref.ProviderToCore))
	}
	for _, c := range append(append([]Call(nil), ref.CoreToProvider...), ref.ProviderToCore...) {
		body, err := ref.Body(c)
		if err != nil {
			t.Fatal(err)
		}
		if body == nil {
			if c.Method != "GET" {
				t.Errorf("%s: %s without a body", c.Name, c.Method)
			}
			continue
		}
		if len(body) != c.BodyBytes {
			t.Errorf("%s: %d bytes, the index says %d", c.Name, len(body), c.BodyBytes)
		}
		probs, err := ref.Check(c.RequestType, body)
		if err != nil {
			t.Fatal(err)
		}
		if len(probs) > 0 {
			t.Errorf("%s does not fit %s: %v", c.Name, c.RequestType, probs)
		}
		if _, ok := ref.Types[c.ResponseType]; !ok {
			t.Errorf("%s: no shape for its response type %s", c.Name, c.ResponseType)
		}
	}
}
