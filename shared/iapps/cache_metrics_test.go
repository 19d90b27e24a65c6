package iapps_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/metrics"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/test/envtest"
	"github.com/ucloud-im/knative-im/test/scrape"
)

// The retrieve cache's metrics count what it did: a miss while not yet trusted, a hit, a miss of an absent
// key, one invalidation for a committed change of one key, one for the lost LISTEN connection.
func TestCacheCountsHitsMissesAndInvalidations(t *testing.T) {
	sdb := storetest.New(t, env.Database(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	owner := sdb.OwnerPool(t)
	reg := metrics.New("config-retrieve")
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()
	read := func() scrape.Samples {
		t.Helper()
		got, err := scrape.Get(srv.URL + metrics.Path)
		if err != nil {
			t.Fatal(err)
		}
		return scrape.Delta(scrape.Samples{}, got, "ucloud_im_retrieve_cache_")
	}
	cache := iapps.NewCache(fn.NewLogger(io.Discard, "test", "info"), 0)
	cache.Metrics = metrics.NewCache(reg)
	key := iapps.Key{App: "syncthing", CreatedBy: "alice#1234"}
	cache.Get(key) // not listening yet: a miss
	go cache.Run(ctx, sdb.URL(store.FnConfigRetrieve))
	envtest.Eventually(t, 10*time.Second, func() error {
		if !cache.Listening() {
			return fmt.Errorf("not listening")
		}
		return nil
	})
	cache.Put(cache.Begin(), key, iapps.Retrieved{ETag: "e1", Config: json.RawMessage(`{}`)})
	cache.Get(key)                                                // hit
	cache.Get(iapps.Key{App: "syncthing", CreatedBy: "bob#5678"}) // miss
	if _, err := owner.Exec(ctx, `INSERT INTO iapp_config (app, created_by, project, config, etag, state) VALUES ('syncthing', 'alice#1234', '', '{}', 'e2', 'active')`); err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, 10*time.Second, func() error {
		if read()[`ucloud_im_retrieve_cache_invalidations_total{reason="change"}`] != 1 {
			return fmt.Errorf("change not counted yet: %v", read())
		}
		return nil
	})
	if _, err := owner.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()`); err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, 10*time.Second, func() error {
		if read()[`ucloud_im_retrieve_cache_invalidations_total{reason="lost"}`] != 1 {
			return fmt.Errorf("lost connection not counted yet: %v", read())
		}
		return nil
	})
	want := scrape.Samples{
		"ucloud_im_retrieve_cache_hits_total":                           1,
		"ucloud_im_retrieve_cache_misses_total":                         2,
		`ucloud_im_retrieve_cache_invalidations_total{reason="change"}`: 1,
		`ucloud_im_retrieve_cache_invalidations_total{reason="lost"}`:   1,
	}
	if diff := cmp.Diff(want, read()); diff != "" {
		t.Errorf("cache metrics (-want +got):\n%s", diff)
	}
}
