package deploy_test

import (
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/ucloud-im/knative-im/shared/store"
)

// Each function that uses the database reads its DATABASE_URL from its own key of the Secret (its own
// login role), a function without a database role gets none, and the migrate Job is given exactly the
// functions' keys, so every login a function uses is one the migrate step creates.
func TestEachFunctionConnectsAsItsOwnRole(t *testing.T) {
	var withRole []string
	for _, r := range store.Roles {
		withRole = append(withRole, r.Function)
	}
	sort.Strings(withRole)
	var services []string
	var migrateKeys []string
	for _, u := range render(t) {
		if u.GetKind() == "Job" && u.GetName() == "ucloud-im-migrate" {
			spec := u.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
			for _, v := range spec["volumes"].([]any) {
				items, _ := v.(map[string]any)["secret"].(map[string]any)["items"].([]any)
				for _, it := range items {
					m := it.(map[string]any)
					if m["key"] != m["path"] {
						t.Errorf("migrate Job: key %v mounted as %v (the file name must be the function)", m["key"], m["path"])
					}
					migrateKeys = append(migrateKeys, fmt.Sprint(m["key"]))
				}
			}
			continue
		}
		if u.GetKind() != "Service" || u.GetAPIVersion() != "serving.knative.dev/v1" {
			continue
		}
		for _, c := range containers(u.Object) {
			env, _ := c["env"].([]any)
			for _, e := range env {
				m := e.(map[string]any)
				if m["name"] != "DATABASE_URL" {
					continue
				}
				ref, _ := m["valueFrom"].(map[string]any)["secretKeyRef"].(map[string]any)
				if ref["name"] != "ucloud-im-database" || ref["key"] != u.GetName() {
					t.Errorf("%s reads DATABASE_URL from %v/%v, want ucloud-im-database/%s", u.GetName(), ref["name"], ref["key"], u.GetName())
				}
				if !slices.Contains(withRole, u.GetName()) {
					t.Errorf("%s has a DATABASE_URL but no database role", u.GetName())
				}
				services = append(services, u.GetName())
			}
		}
	}
	sort.Strings(services)
	sort.Strings(migrateKeys)
	if fmt.Sprint(services) != fmt.Sprint(withRole) || fmt.Sprint(migrateKeys) != fmt.Sprint(withRole) {
		t.Fatalf("functions with a DATABASE_URL %v, logins given to the migrate Job %v; want both %v", services, migrateKeys, withRole)
	}
}
