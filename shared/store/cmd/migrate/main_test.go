package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.MainPostgres(m, &env) }

// make run's use: -generate writes each function's login once (owner-only file), a second run reuses it,
// and every function is then ready on its own role. Without -generate a missing login is an error that
// names the function and the file.
func TestGenerateThenReuseLogins(t *testing.T) {
	owner := env.Database(t)
	dir := filepath.Join(t.TempDir(), "db")
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	// Login names of this test's own: roles are cluster-wide, and other packages' tests, running at the
	// same time on the same PostgreSQL, use the default names with storetest's passwords.
	name := func(r store.Role) string { return "mt_" + r.DefaultLogin() }
	if err := run(log, owner, dir, false, name, time.Minute); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, store.Roles[0].Function)) {
		t.Fatalf("no logins and no -generate: %v, want an error naming %s", err, filepath.Join(dir, store.Roles[0].Function))
	}
	if err := run(log, owner, dir, true, name, time.Minute); err != nil {
		t.Fatal(err)
	}
	first := map[string]string{}
	for _, r := range store.Roles {
		path := filepath.Join(dir, r.Function)
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v (want 0600)", path, err, fi.Mode().Perm())
		}
		raw, _ := os.ReadFile(path)
		first[r.Function] = string(raw)
	}
	if err := run(log, owner, dir, true, name, time.Minute); err != nil {
		t.Fatalf("second run: %v", err)
	}
	ctx := context.Background()
	for _, r := range store.Roles {
		raw, _ := os.ReadFile(filepath.Join(dir, r.Function))
		if string(raw) != first[r.Function] {
			t.Errorf("%s's login was rewritten", r.Function)
		}
		s, err := store.Open(ctx, strings.TrimSpace(string(raw)))
		if err != nil {
			t.Fatalf("%s connects: %v", r.Function, err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Errorf("%s not ready on its generated login: %v", r.Function, err)
		}
		s.Close()
	}
}
