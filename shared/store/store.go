// Package store is the project's PostgreSQL access: a pgx pool, the schema migrations embedded in the
// binary, the database role of every function (roles.go), and typed errors. Functions do not migrate:
// the migrate command (cmd/migrate) applies the migrations and the roles as the schema's owner, and a
// function's readiness fails until the schema is at the version its build needs.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Typed errors; check them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	// ErrUnavailable wraps failures to reach the database at all.
	ErrUnavailable = errors.New("database unavailable")
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the advisory lock key that serialises migrations across every instance of every
// function sharing the database (an arbitrary constant: "ucim" in ASCII).
const migrationLock int64 = 0x7563696d

// Store is the connection pool of one function instance.
type Store struct {
	Pool *pgxpool.Pool

	schemaOK atomic.Bool
}

// Open connects to url and returns the store. It does not migrate: CheckSchema (part of Ping) says
// whether the schema is ready for this build.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	for _, o := range opts {
		o(cfg)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return &Store{Pool: pool}, nil
}

// Option adjusts the pool before it connects.
type Option func(*pgxpool.Config)

// MinMaxConns raises the pool's connection limit to at least n (pgxpool's default is the number of CPUs,
// at least 4): a function whose workers each wait on the database needs a connection per worker.
func MinMaxConns(n int32) Option {
	return func(c *pgxpool.Config) { c.MaxConns = max(c.MaxConns, n) }
}

// Close closes the pool.
func (s *Store) Close() { s.Pool.Close() }

// Ping is the readiness check: the database answers, and (until it once did) CheckSchema passes.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.Pool.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if s.schemaOK.Load() {
		return nil
	}
	if err := s.CheckSchema(ctx); err != nil {
		return err
	}
	s.schemaOK.Store(true)
	return nil
}

// ErrSchema is a database that this build cannot use yet: not migrated, or reached with the wrong role.
var ErrSchema = errors.New("database not ready for this function")

// CheckSchema says whether the schema has every migration this build embeds (a newer schema is fine:
// migrations only add, so the migrate step of an upgrade runs before the new functions) and whether the
// function connects as what it should: not a superuser, not the schema's owner.
func (s *Store) CheckSchema(ctx context.Context) error {
	want := latestVersion()
	var user, owner string
	var super bool
	var have *int
	err := s.Pool.QueryRow(ctx, `SELECT current_user, r.rolsuper, coalesce(t.tableowner, '')
		FROM pg_roles r LEFT JOIN pg_tables t ON t.schemaname = 'public' AND t.tablename = 'schema_migrations'
		WHERE r.rolname = current_user`).Scan(&user, &super, &owner)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	switch {
	case super:
		return fmt.Errorf("%w: connected as %s, a superuser; give the function its own role (README, Database)", ErrSchema, user)
	case owner == user:
		return fmt.Errorf("%w: connected as %s, the schema's owner; give the function its own role (README, Database)", ErrSchema, user)
	case owner == "":
		return fmt.Errorf("%w: the database has no schema yet; run the migrate step (shared/store/cmd/migrate, the ucloud-im-migrate Job)", ErrSchema)
	}
	if err := s.Pool.QueryRow(ctx, "SELECT max(version) FROM schema_migrations").Scan(&have); err != nil {
		return fmt.Errorf("%w: cannot read schema_migrations as %s (%w); run the migrate step, which grants it", ErrSchema, user, err)
	}
	if have == nil || *have < want {
		got := 0
		if have != nil {
			got = *have
		}
		return fmt.Errorf("%w: the schema is at version %d and this build needs %d; run the migrate step of this release first", ErrSchema, got, want)
	}
	return nil
}

func latestVersion() int {
	all, _ := migrations()
	if len(all) == 0 {
		return 0
	}
	return all[len(all)-1].version
}

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and '_'", e.Name())
		}
		raw, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(raw)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// Migrate applies the pending migrations, each in its own transaction, while holding an advisory lock, so
// that migrators started at once apply each migration exactly once. It runs as the schema's owner (the
// migrate command), never in a function.
func (s *Store) Migrate(ctx context.Context) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("%w: take the migration lock: %w", ErrUnavailable, err)
	}
	defer func() {
		// A fresh context: the unlock must happen even when ctx has ended, or the session keeps the lock.
		_, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", migrationLock)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return err
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return err
	}
	for _, v := range versions {
		applied[v] = true
	}
	for _, m := range all {
		if applied[m.version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
	}
	return nil
}

// Classify maps driver errors to the typed errors: no rows is ErrNotFound; a unique violation or a
// serialization failure is ErrConflict; a connection failure is ErrUnavailable. Other errors pass through.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505", "40001", "40P01":
			return fmt.Errorf("%w: %w", ErrConflict, err)
		}
		return err
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) || pgconn.SafeToRetry(err) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// MigrationCount is the number of embedded migrations.
func MigrationCount() int {
	all, _ := migrations()
	return len(all)
}

// CommitLazily runs the statements queued on b in one transaction whose commit does not wait for its WAL
// flush (synchronous_commit off for it alone). Its effects are visible to every session at once and
// survive any crash of the caller; only a crash of PostgreSQL itself within the WAL writer's delay (well
// under a second) can undo them. For writes whose loss costs only a repeat: the caller must be able to do
// them again.
// Statements in after run once the transaction committed, in the same round trip (on its connection,
// outside any transaction), with their callbacks (pgx.QueuedQuery's Query, QueryRow, Exec).
func CommitLazily(ctx context.Context, q interface {
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}, b *pgx.Batch, after ...*pgx.QueuedQuery) error {
	_, err := commitLazily(ctx, q, b, after...)
	return err
}

// commitLazily is CommitLazily telling, with an error, whether the transaction had committed (the error
// came from a statement in after).
func commitLazily(ctx context.Context, q interface {
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}, b *pgx.Batch, after ...*pgx.QueuedQuery) (committed bool, _ error) {
	lazy := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(b.QueuedQueries)+3+len(after))}
	lazy.Queue("BEGIN")
	lazy.Queue("SET LOCAL synchronous_commit TO off")
	lazy.QueuedQueries = append(lazy.QueuedQueries, b.QueuedQueries...)
	lazy.Queue("COMMIT").Exec(func(pgconn.CommandTag) error { committed = true; return nil })
	lazy.QueuedQueries = append(lazy.QueuedQueries, after...)
	err := Classify(q.SendBatch(ctx, lazy).Close())
	return committed, err
}
