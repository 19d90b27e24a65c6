package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
)

// What each function may do to each table, written out here rather than derived from store.Roles, so a
// grant added there by mistake fails this test. S select, I insert, U update, D delete.
var wantPrivileges = map[string]map[string]string{
	store.FnConfigRetrieve: {"iapp_config": "S", "schema_migrations": "S"},
	store.FnConfigUpdate:   {"iapp_config": "SIUD", "job_state": "S", "tracked_drive": "SIUD", "tracked_project": "S", "terminal_lease": "SIU", "shell_session": "I", "schema_migrations": "S"},
	store.FnConfigReset:    {"iapp_config": "SIUD", "job_state": "S", "schema_migrations": "S"},
	store.FnConfigRestart:  {"iapp_config": "S", "schema_migrations": "S"},
	store.FnStatusReport:   {"outbox": "SIUD", "schema_migrations": "S"},
	store.FnMonitor:        {"job_state": "SIUD", "iapp_config": "S", "job_usage": "SIUD", "tracked_drive": "SIUD", "tracked_project": "SIUD", "terminal_lease": "SD", "outbox": "I", "monitor_seal": "U", "schema_migrations": "S"},
	store.FnAppAuth:        {"app_token_used": "SID", "schema_migrations": "S"},
	store.FnJobControl:     {"shell_session": "I", "schema_migrations": "S"},
	store.FnJobStreams:     {"shell_session": "SUD", "terminal_lease": "SU", "schema_migrations": "S"},
}

var tables = []string{"iapp_config", "job_state", "outbox", "app_token_used", "job_usage", "shell_session", "tracked_drive", "tracked_project", "terminal_lease", "monitor_seal", "schema_migrations"}

// probe runs one statement of kind op on table as the connection's role, in a transaction that is rolled
// back, and reports whether PostgreSQL let the role do it. The statements touch no row: privileges are
// checked before any row is, so an INSERT of defaults that breaks a NOT NULL constraint was allowed.
func probe(ctx context.Context, conn *pgx.Conn, op byte, table string) (bool, error) {
	t := pgx.Identifier{table}.Sanitize()
	stmt := map[byte]string{
		'S': "SELECT count(*) FROM " + t,
		'I': "INSERT INTO " + t + " DEFAULT VALUES",
		'U': "UPDATE " + t + " SET " + map[string]string{"iapp_config": "etag = etag", "job_state": "last_seq = last_seq",
			"outbox": "seq = seq", "app_token_used": "nonce = nonce", "job_usage": "units = units", "shell_session": "rank = rank",
			"tracked_drive": "drive_id = drive_id", "tracked_project": "project_id = project_id", "terminal_lease": "job_id = job_id", "monitor_seal": "sealed_at = now()", "schema_migrations": "name = name"}[table] + " WHERE false",
		'D': "DELETE FROM " + t + " WHERE false",
	}[op]
	tx, err := conn.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, stmt)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &pgErr) && pgErr.Code == "42501": // insufficient_privilege
		return false, nil
	case errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "23"): // a constraint: past the privilege check
		return true, nil
	}
	return false, fmt.Errorf("%s: %w", stmt, err)
}

// Each function's role, connected as the function connects, may run exactly its own kinds of statement on
// its own tables: app-auth cannot read configurations or the outbox, config-retrieve cannot write,
// status-report cannot touch iapp_config, nobody but the monitor writes job_state, and nobody creates,
// truncates or changes the schema.
func TestEachRoleMayTouchOnlyItsOwnTables(t *testing.T) {
	db := storetest.New(t, env.Database(t))
	ctx := context.Background()
	for _, r := range store.Roles {
		t.Run(r.Function, func(t *testing.T) {
			conn, err := pgx.Connect(ctx, db.URL(r.Function))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			got := map[string]string{}
			for _, table := range tables {
				for _, op := range []byte("SIUD") {
					ok, err := probe(ctx, conn, op, table)
					if err != nil {
						t.Fatal(err)
					}
					if ok {
						got[table] += string(op)
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(wantPrivileges[r.Function]) {
				t.Fatalf("%s may do %v, want %v", r.Function, got, wantPrivileges[r.Function])
			}
			// The attacker with this function's password: no DDL, no TRUNCATE, no new objects, no other role.
			for _, stmt := range []string{
				"CREATE TABLE evil (x int)",
				"CREATE TEMPORARY TABLE evil (x int)",
				"TRUNCATE outbox, iapp_config, job_state, app_token_used, job_usage, shell_session, tracked_drive, tracked_project, terminal_lease, monitor_seal",
				"ALTER TABLE iapp_config ADD COLUMN evil text",
				"DROP TABLE schema_migrations",
				"SET ROLE " + pgx.Identifier{otherGroup(r)}.Sanitize(),
				"CREATE ROLE evil LOGIN PASSWORD 'x'",
			} {
				if _, err := conn.Exec(ctx, stmt); err == nil {
					t.Errorf("%s ran %q", r.Function, stmt)
				} else if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) || pgErr.Code != "42501" {
					t.Errorf("%s: %q failed for another reason than privilege: %v", r.Function, stmt, err)
				}
			}
		})
	}
}

func otherGroup(r store.Role) string {
	for _, o := range store.Roles {
		if o.Function != r.Function {
			return o.Group()
		}
	}
	return ""
}

// A function is not ready on a schema older than its build, nor when it connects as a superuser.
func TestReadinessNeedsTheSchemaAndAPlainRole(t *testing.T) {
	db := storetest.New(t, env.Database(t))
	ctx := context.Background()
	ready := db.Open(t, store.FnStatusReport) // ready: storetest.Open checks it
	_ = ready
	owner, err := store.Open(ctx, db.Owner)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	if err := owner.Ping(ctx); !errors.Is(err, store.ErrSchema) || !strings.Contains(err.Error(), "superuser") {
		t.Fatalf("a function connected as a superuser: Ping = %v, want ErrSchema naming the superuser", err)
	}
	// The schema one migration behind this build (an upgrade whose migrate step has not run).
	if _, err := owner.Pool.Exec(ctx, "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)"); err != nil {
		t.Fatal(err)
	}
	behind, err := store.Open(ctx, db.URL(store.FnMonitor))
	if err != nil {
		t.Fatal(err)
	}
	defer behind.Close()
	if err := behind.Ping(ctx); !errors.Is(err, store.ErrSchema) || !strings.Contains(err.Error(), "run the migrate step") {
		t.Fatalf("schema behind the build: Ping = %v, want ErrSchema asking for the migrate step", err)
	}
}

// The migrate step refuses logins that would undo least privilege.
func TestMigrateRefusesLoginsThatDefeatTheRoles(t *testing.T) {
	url := env.Database(t)
	ctx := context.Background()
	var self string
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&self); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		logins []store.Login
		want   string
	}{
		{"the owner's own role", []store.Login{{Function: store.FnAppAuth, User: self, Password: "x1234567"}}, "owns the schema"},
		{"one login for two functions", []store.Login{
			{Function: store.FnConfigRetrieve, User: "shared_login", Password: "x1234567"},
			{Function: store.FnConfigUpdate, User: "shared_login", Password: "x1234567"}}, "each function needs its own"},
		{"a group role as login", []store.Login{{Function: store.FnMonitor, User: "ucim_status_report", Password: "x1234567"}}, "group roles"},
		{"an unknown function", []store.Login{{Function: "job-create", User: "jc_login", Password: "x1234567"}}, "not a function that uses the database"},
		{"a password PostgreSQL would normalise", []store.Login{{Function: store.FnMonitor, User: "ucim_monitor_login", Password: "pässword"}}, "printable ASCII"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := store.Apply(ctx, url, tc.logins)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
