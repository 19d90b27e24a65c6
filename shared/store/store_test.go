package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.MainPostgres(m, &env) }

// Eight migrators starting at once on an empty database: all succeed, and each migration ran exactly once
// (a second run of a CREATE TABLE would have failed one of them); role creation, shared by the whole
// cluster, survives the race too.
func TestMigrationsApplyOnceWhenEightMigratorsStartTogether(t *testing.T) {
	url := env.Database(t)
	ctx := context.Background()
	const instances = 8
	var wg sync.WaitGroup
	errs := make([]error, instances)
	start := make(chan struct{})
	for i := range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = store.Apply(ctx, url, nil)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("migrator %d failed: %v", i, err)
		}
	}
	owner, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	var applied, files int
	if err := owner.Pool.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	files = store.MigrationCount()
	if applied != files || files == 0 {
		t.Fatalf("%d migrations recorded, %d embedded", applied, files)
	}
	for _, table := range []string{"iapp_config", "job_state", "outbox", "app_token_used"} {
		var exists bool
		if err := owner.Pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil || !exists {
			t.Errorf("table %s missing after migration (%v)", table, err)
		}
	}
	// A later run finds nothing to do and still works.
	if err := store.Apply(ctx, url, nil); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
}

func TestClassifyGivesTypedErrors(t *testing.T) {
	ctx := context.Background()
	url := env.Database(t)
	if err := store.Apply(ctx, url, nil); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	insert := "INSERT INTO job_state (job_id, last_state, last_seq) VALUES ('1', 'RUNNING', 1)"
	if _, err := s.Pool.Exec(ctx, insert); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"duplicate key", func() error { _, err := s.Pool.Exec(ctx, insert); return err }, store.ErrConflict},
		{"no row", func() error {
			var x string
			return s.Pool.QueryRow(ctx, "SELECT last_state FROM job_state WHERE job_id = 'nope'").Scan(&x)
		}, store.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := store.Classify(tc.run()); !errors.Is(got, tc.want) {
				t.Fatalf("Classify = %v, want %v", got, tc.want)
			}
		})
	}
	if store.Classify(nil) != nil {
		t.Fatal("Classify(nil) is not nil")
	}
	if errors.Is(store.Classify(pgx.ErrTxClosed), store.ErrNotFound) {
		t.Fatal("unrelated error classified as not found")
	}
}

// A database that does not answer is reported as unavailable, with the reason, not as a hang.
func TestOpenWithDatabaseDownIsUnavailable(t *testing.T) {
	ctx := context.Background()
	_, err := store.Open(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable&connect_timeout=2", envtest.FreePort(t)))
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open against a closed port: %v, want ErrUnavailable", err)
	}
}
