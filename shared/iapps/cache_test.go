package iapps_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/test/envtest"
)

// The cache serves only while it listens: a committed change drops its key, and a lost notification
// connection drops everything until it listens again.
func TestCacheIsDroppedOnChangeAndOnLostConnection(t *testing.T) {
	url := env.Database(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cache := iapps.NewCache(fn.NewLogger(io.Discard, "test", "info"), 0)
	key := iapps.Key{App: "syncthing", CreatedBy: "alice#1234"}
	val := iapps.Retrieved{ETag: "e1", Config: json.RawMessage(`{}`)}
	cache.Put(cache.Begin(), key, val)
	if _, ok := cache.Get(key); ok {
		t.Fatal("cache serves before it listens")
	}
	go cache.Run(ctx, url)
	envtest.Eventually(t, 10*time.Second, func() error {
		if !cache.Listening() {
			return errors.New("not listening")
		}
		return nil
	})
	cache.Put(cache.Begin(), key, val)
	if got, ok := cache.Get(key); !ok || got.ETag != "e1" {
		t.Fatal("cache does not serve what it was given")
	}
	// A change of that key, committed by anyone, drops it.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO iapp_config (app, created_by, project, config, etag, state) VALUES ('syncthing', 'alice#1234', '', '{}', 'e2', 'active')`); err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, 5*time.Second, func() error {
		if _, ok := cache.Get(key); ok {
			return errors.New("stale entry still served")
		}
		return nil
	})
	// A ticket taken before a change cannot cache what was read before it.
	ticket := cache.Begin()
	if _, err := db.Pool.Exec(ctx, `UPDATE iapp_config SET etag = 'e3'`); err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, 5*time.Second, func() error {
		cache.Put(ticket, key, val)
		if _, ok := cache.Get(key); ok {
			return errors.New("value read before a change was cached after it")
		}
		return nil
	})
	// Losing the connection drops the cache and stops serving from it until listening again.
	cache.Put(cache.Begin(), key, val)
	if _, err := db.Pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()`); err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, 5*time.Second, func() error {
		if _, ok := cache.Get(key); ok {
			return errors.New("entry survived the lost connection")
		}
		return nil
	})
	envtest.Eventually(t, 10*time.Second, func() error {
		if !cache.Listening() {
			return errors.New("did not listen again")
		}
		return nil
	})
	if _, ok := cache.Get(key); ok {
		t.Fatal("entry from before the lost connection came back")
	}
}
