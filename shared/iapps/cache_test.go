package iapps_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/envtest"
)

// The cache serves only while it listens: a committed change drops its key, and a lost notification
// connection drops everything until it listens again.
func TestCacheIsDroppedOnChangeAndOnLostConnection(t *testing.T) {
	// The cache listens as config-retrieve (LISTEN needs no grant); the changes are the owner's.
	sdb := storetest.New(t, env.Database(t))
	url := sdb.URL(store.FnConfigRetrieve)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := &store.Store{Pool: sdb.OwnerPool(t)}
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

// config-retrieve, on its own role, answers from the database and then from the cache, and a change
// committed by config-update reaches it through NOTIFY.
func TestRetrieveAsItsOwnRoleStaysCoherent(t *testing.T) {
	sdb := storetest.New(t, env.Database(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	retrieve := &iapps.Service{Provider: "k8s", Registry: iapps.BuiltinApps(iapps.AppEnv{}),
		Store: &iapps.ConfigStore{Pool: sdb.Open(t, store.FnConfigRetrieve).Pool}, Cache: iapps.NewCache(fn.NewLogger(io.Discard, "test", "info"), 0)}
	go retrieve.Cache.Run(ctx, sdb.URL(store.FnConfigRetrieve))
	envtest.Eventually(t, 10*time.Second, func() error {
		if !retrieve.Cache.Listening() {
			return errors.New("not listening")
		}
		return nil
	})
	update := &iapps.ConfigStore{Pool: sdb.Open(t, store.FnConfigUpdate).Pool}
	key := iapps.Key{App: "terminal", CreatedBy: "alice#1"}
	req := iapps.RetrieveRequest{ProductID: "terminal", Principal: ucloud.ResourceOwner{CreatedBy: "alice#1"}}
	rec, _, err := update.Register(ctx, key, json.RawMessage(`{"folders":[]}`), func(context.Context, string) (string, error) { return "77", nil })
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // from the database, then from the cache
		got, err := retrieve.Retrieve(ctx, "terminal", req)
		if err != nil || got.ETag != rec.ETag {
			t.Fatalf("retrieve as config-retrieve: %+v, %v; want ETag %s", got, err, rec.ETag)
		}
	}
	if retrieve.Cache.Len() != 1 {
		t.Fatalf("cache holds %d entries after two retrieves, want 1", retrieve.Cache.Len())
	}
	swapped, err := update.CompareAndSwap(ctx, key, json.RawMessage(`{"folders":["/1/Home"]}`), &rec.ETag)
	if err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, 5*time.Second, func() error {
		got, err := retrieve.Retrieve(ctx, "terminal", req)
		if err != nil || got.ETag != swapped.ETag {
			return fmt.Errorf("retrieve after a swap: %+v, %v; want ETag %s", got, err, swapped.ETag)
		}
		return nil
	})
	// The attacker holding config-retrieve's password cannot write a configuration.
	ro := &iapps.ConfigStore{Pool: sdb.Open(t, store.FnConfigRetrieve).Pool}
	if _, err := ro.CompareAndSwap(ctx, key, json.RawMessage(`{"folders":["/evil"]}`), nil); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("config-retrieve's role swapped a configuration: %v", err)
	}
}
