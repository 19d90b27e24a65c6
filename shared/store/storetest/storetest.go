// Package storetest gives tests a migrated database and each function's own login on it, so the code
// under test runs with exactly the grants it has in a cluster.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ucloud-im/knative-im/shared/store"
)

// DB is a migrated database with every function's role and login.
type DB struct {
	// Owner is the URL of the schema's owner (the migrator): for setting up and inspecting rows.
	Owner string
	urls  map[string]string
}

// Password is the test logins' password (roles are cluster-wide: every test database shares them).
func Password(fn string) string { return "test-only-" + fn }

// New migrates the database at ownerURL (a fresh one from envtest's env.Database) and provisions the roles
// and the functions' test logins.
func New(t testing.TB, ownerURL string) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := &DB{Owner: ownerURL, urls: map[string]string{}}
	var logins []store.Login
	for _, r := range store.Roles {
		l := store.Login{Function: r.Function, User: r.DefaultLogin(), Password: Password(r.Function)}
		u, err := store.LoginURL(ownerURL, l)
		if err != nil {
			t.Fatal(err)
		}
		d.urls[r.Function] = u
		logins = append(logins, l)
	}
	if err := store.Apply(ctx, ownerURL, logins); err != nil {
		t.Fatalf("migrate and provision roles: %v", err)
	}
	return d
}

// URL is the DATABASE_URL function fn connects with.
func (d *DB) URL(fn string) string {
	u, ok := d.urls[fn]
	if !ok {
		panic("storetest: no database role for " + fn)
	}
	return u
}

// Open opens the store as function fn, as the function does, and checks it is ready; closed at cleanup.
func (d *DB) Open(t testing.TB, fn string) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, d.URL(fn))
	if err != nil {
		t.Fatalf("open the database as %s: %v", fn, err)
	}
	t.Cleanup(s.Close)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("%s not ready: %v", fn, err)
	}
	return s
}

// OwnerPool is a pool of the schema's owner, for a test's own setup and checks; closed at cleanup.
func (d *DB) OwnerPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), d.Owner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}
