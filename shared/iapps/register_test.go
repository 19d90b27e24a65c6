package iapps_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ucloud-im/knative-im/shared/iapps"
)

// A fresh user's first update registers the application's job with Core, and from the moment the row is
// active it holds the user's configuration. Before, the row became active with the application's default
// (Syncthing with no folders) and the user's configuration followed in a second statement: a monitor pass
// in between told Core the application was powered off (seen under load as an unexpected SUSPENDED). A
// trigger records every version of the row, so even a version that lived a millisecond is seen.
func TestAFreshRegistrationIsNeverActiveWithoutItsConfiguration(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.db.Pool.Exec(ctx, `
		CREATE TABLE iapp_config_versions (n serial, state text, config text, etag text);
		CREATE FUNCTION log_iapp_config_version() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
		BEGIN
			INSERT INTO iapp_config_versions (state, config, etag) VALUES (NEW.state, NEW.config::text, NEW.etag);
			RETURN NEW;
		END $$;
		CREATE TRIGGER log_versions AFTER INSERT OR UPDATE ON iapp_config
			FOR EACH ROW EXECUTE FUNCTION log_iapp_config_version();`); err != nil {
		t.Fatal(err)
	}
	h, _ := r.svc.Registry.Lookup("syncthing")
	want, err := h.Validate(syncthingConfig("A")) // as stored: validated (each folder's path in the pod added)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := r.call("syncthing", iapps.OpUpdate, iapps.UpdateRequest{Principal: alice(), Config: syncthingConfig("A")}); code != 200 {
		t.Fatalf("first update: %d %s", code, body)
	}
	rows, err := r.db.Pool.Query(ctx, `SELECT state, config, etag FROM iapp_config_versions ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	active := 0
	for rows.Next() {
		var state, cfg, etag string
		if err := rows.Scan(&state, &cfg, &etag); err != nil {
			t.Fatal(err)
		}
		if state != "active" {
			continue
		}
		active++
		if !sameJSON(t, cfg, string(want)) || etag == iapps.InitialETag {
			t.Errorf("an active version of the row holds %s under ETag %q; want the user's configuration %s under a new ETag", cfg, etag, want)
		}
	}
	if active == 0 {
		t.Fatal("the row never became active")
	}
	if got := r.retrieve("syncthing", alice()); !sameJSON(t, string(got.Config), string(want)) {
		t.Fatalf("retrieve after the first update: %s, want %s", got.Config, want)
	}
	if n := len(r.core.Registered()); n != 1 {
		t.Fatalf("Core registered %d jobs, want 1", n)
	}
}

func sameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}
