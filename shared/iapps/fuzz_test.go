package iapps_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/ucloud-im/knative-im/shared/iapps"
)

// FuzzValidate: the configuration validators never panic, refuse with a *ValidationError naming a field,
// and what they accept is stable: validating the normalised form again gives it back unchanged.
func FuzzValidate(f *testing.F) {
	f.Add("syncthing", []byte(`{"devices":[{"deviceId":"`+device1+`","label":"Laptop"}],"folders":[{"id":"x1","ucloudPath":"/123/Home/Sync"}]}`))
	f.Add("syncthing", []byte(`{"devices":[],"folders":[{"ucloudPath":"/1/a"},{"ucloudPath":"/2/a"}]}`))
	f.Add("terminal", []byte(`{"Folders":["/1/Home"]}`))
	f.Add("terminal", []byte(`{"folders":["/1/../x"]}`))
	f.Add("syncthing", []byte(`[]`))
	reg := iapps.BuiltinApps(iapps.AppEnv{})
	f.Fuzz(func(t *testing.T, app string, raw []byte) {
		h, ok := reg.Lookup(app)
		if !ok {
			return
		}
		out, err := h.Validate(raw)
		if err != nil {
			var ve *iapps.ValidationError
			if !errors.As(err, &ve) || ve.Field == "" {
				t.Fatalf("refusal %v does not name a field", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("accepted config normalised to invalid JSON %q", out)
		}
		again, err := h.Validate(out)
		if err != nil || string(again) != string(out) {
			t.Fatalf("normalised %s is not stable: %s %v", out, again, err)
		}
		if _, err := h.MakeObjects(iapps.Job{ID: "1", Key: iapps.Key{App: app, CreatedBy: "a"}, ETag: "e", Namespace: "ns"}, out); err != nil {
			t.Fatalf("accepted config %s cannot be built: %v", out, err)
		}
	})
}
