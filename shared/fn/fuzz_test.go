package fn_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"testing"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// FuzzDecodeJobs: the request decoder never panics, refuses with a 400 or 413 *fn.Error, and what it
// accepts survives a round trip unchanged.
func FuzzDecodeJobs(f *testing.F) {
	f.Add([]byte(`{"items":[{"id":"4242","createdAt":1732000000000,"owner":{"createdBy":"alice#1234","project":null},` +
		`"specification":{"product":{"id":"u1-standard-1","category":"u1-standard","provider":"k8s"},` +
		`"application":{"name":"jupyter-lab","version":"4.0.0"},"replicas":2,"parameters":{"n":{"type":"integer","value":3}},` +
		`"resources":[{"type":"file","path":"/1/Home","readOnly":true}],"timeAllocation":{"hours":1,"minutes":0,"seconds":0}},` +
		`"status":{"state":"IN_QUEUE","allowRestart":false},"updates":[],"output":{"outputFolder":null}}]}`))
	f.Add([]byte(`{"items":[`))
	f.Add([]byte(`{"items":[{"specification":{"replicas":"two"}}]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"items":[]} x`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req ucloud.BulkRequest[ucloud.Job]
		err := fn.DecodeJSONBytes(raw, &req)
		if err != nil {
			var e *fn.Error
			if !errors.As(err, &e) || (e.Status != http.StatusBadRequest && e.Status != http.StatusRequestEntityTooLarge) || e.Why == "" {
				t.Fatalf("refusal %v is not a 400/413 with a why", err)
			}
			return
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("accepted input cannot be encoded again: %v", err)
		}
		var back ucloud.BulkRequest[ucloud.Job]
		if err := fn.DecodeJSONBytes(again, &back); err != nil {
			t.Fatalf("re-encoded request refused: %v", err)
		}
		if !reflect.DeepEqual(normalise(t, req), normalise(t, back)) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", req, back)
		}
	})
}

// normalise compares through JSON so that raw fields with equivalent spacing compare equal.
func normalise(t *testing.T, v any) any {
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
