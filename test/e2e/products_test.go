package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/test/envtest"
)

// job-control registers the products with Core when it starts: the first start sends every category, a
// second start (a new revision, another instance, a restart) finds Core up to date and sends nothing, and
// a changed price re-sends that category only.
func TestProductsAreRegisteredOncePerChange(t *testing.T) {
	s := newStack(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "gateway.key")
	if err := os.WriteFile(key, []byte("a gateway key for the products test, long enough"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := withVar(withVar(s.vars, "UCLOUD_GATEWAY_KEY_FILE", key), "UCLOUD_APPS_DOMAIN", "apps.example.org")
	// Info, so the log says when registration is over (the environment's later LOG_LEVEL wins).
	vars = withVar(vars, "LOG_LEVEL", "info")
	creates := func(want int) {
		t.Helper()
		envtest.Eventually(t, 20*time.Second, func() error {
			if got := s.core.ProductCreates(); got != want {
				return fmt.Errorf("Core got %d products.v2.create calls, want %d", got, want)
			}
			return nil
		})
	}
	first := startFunction(t, "job-control", vars)
	creates(4) // u1-standard, u1-gpu, syncthing, terminal
	if n := len(s.core.Products()); n != 5 {
		t.Fatalf("Core holds %d products, want 5", n)
	}
	first.kill()
	second := startFunction(t, "job-control", vars)
	waitLog(t, second, `"categories_sent":null`, 20*time.Second)
	creates(4)
	second.kill()
	catalog := filepath.Join(dir, "catalog.json")
	if err := os.WriteFile(catalog, []byte(`{"products":[
		{"id":"u1-standard-1","category":"u1-standard","cpu":1,"memoryGiB":4},
		{"id":"u1-standard-4","category":"u1-standard","cpu":4,"memoryGiB":16},
		{"id":"u1-gpu-1","category":"u1-gpu","cpu":8,"memoryGiB":64,"gpu":2}],
		"categories":[{"name":"u1-standard","unit":"Core"},{"name":"u1-gpu","unit":"GPU"}],
		"applications":[{"name":"batch-ubuntu","version":"24.04","image":"ubuntu:24.04"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	third := startFunction(t, "job-control", withVar(vars, "JOB_CATALOG_FILE", catalog))
	waitLog(t, third, `"categories_sent":["u1-gpu"]`, 20*time.Second)
	creates(5) // u1-gpu only: its product now has 2 GPUs
	third.kill()
}
