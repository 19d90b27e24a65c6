package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The functions that use the database; each connects with a login role of its own, a member of its
// function's group role (NOLOGIN), which holds exactly the grants its queries need.
const (
	FnConfigRetrieve = "config-retrieve"
	FnConfigUpdate   = "config-update"
	FnConfigReset    = "config-reset"
	FnConfigRestart  = "config-restart"
	FnStatusReport   = "status-report"
	FnMonitor        = "monitor"
	FnAppAuth        = "app-auth"
	FnJobControl     = "job-control"
	FnJobStreams     = "job-streams"
)

// Grant is one table privilege of a function's role.
type Grant struct {
	Table      string
	Privileges []string
}

// Role is the database role of one function. Functions with identical needs still get a role each: a
// leaked password then opens one function's door, pg_stat_activity names the function, and one function's
// needs can change without widening another's.
type Role struct {
	Function string
	Grants   []Grant
}

// Group is the NOLOGIN role holding the grants; login roles are its members.
func (r Role) Group() string { return "ucim_" + strings.ReplaceAll(r.Function, "-", "_") }

// DefaultLogin is the login role's name where the operator does not choose one (make run, tests).
func (r Role) DefaultLogin() string { return r.Group() + "_login" }

// Every role also reads schema_migrations, to check at start-up that the schema is the one it needs.
var (
	rw = []string{"SELECT", "INSERT", "UPDATE", "DELETE"}
	ro = []string{"SELECT"}
)

// Roles is the one table of who may touch what; Provision applies it and the role tests check it against
// the real queries. Retention deletes are the owner's (status-report: outbox, monitor: job_state,
// app-auth: app_token_used, job-streams: shell_session).
var Roles = []Role{
	// retrieve reads configurations (and LISTENs, which needs no grant).
	{FnConfigRetrieve, []Grant{{"iapp_config", ro}}},
	// update and reset register (INSERT, UPDATE), compare-and-swap (UPDATE), clear an ended job's row
	// (DELETE) and ask whether the monitor saw the job end (job_state, read only).
	// update also decides folders: it reads drives fresh from Core into tracked_drive and reads projects.
	// It also serves openTerminalInFolder: the terminal's configuration as above, then its idle lease
	// (started or renewed, never deleted) and a shell session (INSERT only, as job-control).
	{FnConfigUpdate, []Grant{{"iapp_config", rw}, {"job_state", ro}, {"tracked_drive", rw}, {"tracked_project", ro},
		{"terminal_lease", []string{"SELECT", "INSERT", "UPDATE"}}, {"shell_session", []string{"INSERT"}}}},
	// reset stores the default configuration, which has no folders: no drive is looked at.
	{FnConfigReset, []Grant{{"iapp_config", rw}, {"job_state", ro}}},
	// restart reads the job id and deletes a pod.
	{FnConfigRestart, []Grant{{"iapp_config", ro}}},
	// status-report owns the outbox (its id is a bigserial: the sequence too).
	{FnStatusReport, []Grant{{"outbox", rw}, {"outbox_id_seq", []string{"USAGE"}}}},
	// the monitor owns job_state and job_usage (running time and usage reported) and reads configurations
	// to rebuild integrated applications' pods. It also re-decides integrated applications' folders at every
	// reconcile: it refreshes tracked_drive from Core and keeps tracked_project from Core's provider notifications.
	// It reads the terminal's idle lease to stop an idle terminal, and removes the leases of ended terminals
	// (retention).
	// It puts each change it is about to send in the outbox, in the transaction of its intent (INSERT only:
	// it can neither read, change nor remove a row there). This gives it nothing new: status-report already
	// stores whatever update the monitor's events carry. It rewrites the one row of monitor_seal (UPDATE
	// only) to put its lazily committed writes on disk.
	{FnMonitor, []Grant{{"job_state", rw}, {"iapp_config", ro}, {"job_usage", rw}, {"tracked_drive", rw}, {"tracked_project", rw}, {"terminal_lease", []string{"SELECT", "DELETE"}},
		{"outbox", []string{"INSERT"}}, {"outbox_id_seq", []string{"USAGE"}}, {"monitor_seal", []string{"UPDATE"}}}},
	// app-auth records used one-time tokens and removes old ones; it never updates one.
	{FnAppAuth, []Grant{{"app_token_used", []string{"SELECT", "INSERT", "DELETE"}}}},
	// job-control hands out shell sessions: it inserts them and can read none back.
	{FnJobControl, []Grant{{"shell_session", []string{"INSERT"}}}},
	// job-streams takes a session (UPDATE ... RETURNING needs SELECT) and removes old ones; it never makes one.
	// It renews the terminal's idle lease on keystrokes (UPDATE of an existing row) and reads it to tell an
	// expired terminal from one still starting.
	{FnJobStreams, []Grant{{"shell_session", []string{"SELECT", "UPDATE", "DELETE"}}, {"terminal_lease", []string{"SELECT", "UPDATE"}}}},
}

// RoleOf is the role of function fn.
func RoleOf(fn string) (Role, bool) {
	i := slices.IndexFunc(Roles, func(r Role) bool { return r.Function == fn })
	if i < 0 {
		return Role{}, false
	}
	return Roles[i], true
}

// Login is a function's login role: the user and password of its DATABASE_URL.
type Login struct {
	Function string
	User     string
	Password string
}

// LoginFromURL reads the login of function fn from the DATABASE_URL it will connect with.
func LoginFromURL(fn, databaseURL string) (Login, error) {
	cfg, err := pgconn.ParseConfig(databaseURL)
	if err != nil {
		return Login{}, fmt.Errorf("%s's database URL: %w", fn, err)
	}
	if cfg.User == "" || cfg.Password == "" {
		return Login{}, fmt.Errorf("%s's database URL must name its user and password", fn)
	}
	return Login{Function: fn, User: cfg.User, Password: cfg.Password}, nil
}

// Provision creates, on the database pool is connected to, the group role of every function (idempotent:
// roles are cluster-wide and may exist from another database), gives each exactly its grants in this
// database (revoking anything else it had here), takes CONNECT and TEMPORARY on the database and CREATE on
// the schema away from PUBLIC, and creates or updates the login roles. It runs as the schema's owner,
// after Migrate; pool must not be one of the logins.
func Provision(ctx context.Context, pool *pgxpool.Pool, logins []Login) error {
	if err := checkLogins(ctx, pool, logins); err != nil {
		return err
	}
	for _, r := range Roles {
		if err := retryCatalog(ctx, func() error {
			_, err := pool.Exec(ctx, `DO $$ BEGIN
				EXECUTE format('CREATE ROLE %I NOLOGIN', `+quoteLiteral(r.Group())+`);
			EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
			END $$`)
			return err
		}); err != nil {
			return fmt.Errorf("create role %s: %w", r.Group(), err)
		}
	}
	err := retryCatalog(ctx, func() error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var db string
			if err := tx.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
				return err
			}
			dbID := pgx.Identifier{db}.Sanitize()
			stmts := []string{
				"REVOKE ALL ON DATABASE " + dbID + " FROM PUBLIC",
				"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
			}
			for _, r := range Roles {
				g := pgx.Identifier{r.Group()}.Sanitize()
				stmts = append(stmts,
					"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "+g,
					"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM "+g,
					"GRANT CONNECT ON DATABASE "+dbID+" TO "+g,
					"GRANT USAGE ON SCHEMA public TO "+g,
					"GRANT SELECT ON schema_migrations TO "+g)
				for _, gr := range r.Grants {
					kind := "TABLE"
					if strings.HasSuffix(gr.Table, "_seq") {
						kind = "SEQUENCE"
					}
					stmts = append(stmts, fmt.Sprintf("GRANT %s ON %s %s TO %s", strings.Join(gr.Privileges, ", "), kind, pgx.Identifier{gr.Table}.Sanitize(), g))
				}
			}
			for _, s := range stmts {
				if _, err := tx.Exec(ctx, s); err != nil {
					return fmt.Errorf("%s: %w", s, err)
				}
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("grants: %w", err)
	}
	for _, l := range logins {
		if err := retryCatalog(ctx, func() error { return ensureLogin(ctx, pool, l) }); err != nil {
			return fmt.Errorf("login role %s of %s: %w", l.User, l.Function, err)
		}
	}
	return nil
}

// checkLogins refuses logins that would defeat the roles: an unknown function, one login for two
// functions, the migrator's own role, or an existing role with powers a function must not have.
func checkLogins(ctx context.Context, pool *pgxpool.Pool, logins []Login) error {
	var self string
	if err := pool.QueryRow(ctx, "SELECT current_user").Scan(&self); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	seen := map[string]string{}
	for _, l := range logins {
		if _, ok := RoleOf(l.Function); !ok {
			return fmt.Errorf("login %s: %q is not a function that uses the database", l.User, l.Function)
		}
		if other, dup := seen[l.User]; dup {
			return fmt.Errorf("login %s is given to both %s and %s: each function needs its own", l.User, other, l.Function)
		}
		seen[l.User] = l.Function
		if l.User == self {
			return fmt.Errorf("%s would connect as %s, the role that owns the schema: give it a login of its own", l.Function, l.User)
		}
		if strings.HasPrefix(l.User, "ucim_") && !strings.HasSuffix(l.User, "_login") {
			return fmt.Errorf("login %s of %s: names starting ucim_ are the group roles", l.User, l.Function)
		}
		var super, createRole, createDB, bypass bool
		err := pool.QueryRow(ctx, "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = $1", l.User).Scan(&super, &createRole, &createDB, &bypass)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		} else if err != nil {
			return err
		}
		if super || createRole || createDB || bypass {
			return fmt.Errorf("%s would connect as %s, which is a superuser or may create roles or databases or bypass row security: give it a plain login", l.Function, l.User)
		}
	}
	return nil
}

// ensureLogin creates the login role or sets its password, and makes it a member of its function's group
// and of no other function's. The password travels as a SCRAM verifier, never in clear text in a
// statement (which PostgreSQL's statement log could record).
func ensureLogin(ctx context.Context, pool *pgxpool.Pool, l Login) error {
	role, _ := RoleOf(l.Function)
	verifier, err := scramVerifier(l.Password)
	if err != nil {
		return fmt.Errorf("%s's password: %w", l.Function, err)
	}
	user := pgx.Identifier{l.User}.Sanitize()
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", l.User).Scan(&exists); err != nil {
		return err
	}
	verb := "ALTER"
	if !exists {
		verb = "CREATE"
	}
	// INHERIT: the login uses its group's grants without SET ROLE.
	if _, err := pool.Exec(ctx, verb+" ROLE "+user+" LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD "+quoteLiteral(verifier)); err != nil {
		return err
	}
	for _, r := range Roles {
		if r.Function == l.Function {
			continue
		}
		if _, err := pool.Exec(ctx, "REVOKE "+pgx.Identifier{r.Group()}.Sanitize()+" FROM "+user); err != nil {
			return err
		}
	}
	_, err = pool.Exec(ctx, "GRANT "+pgx.Identifier{role.Group()}.Sanitize()+" TO "+user)
	return err
}

// retryCatalog retries what two migrators on other databases of the same cluster may collide on: roles
// and their memberships are shared, and PostgreSQL answers a concurrent change of one with an error
// rather than waiting.
func retryCatalog(ctx context.Context, f func() error) error {
	var err error
	for attempt := range 8 {
		if err = f(); err == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || !(pgErr.Code == "XX000" || pgErr.Code == "23505" || pgErr.Code == "40001" || pgErr.Code == "40P01" || pgErr.Code == "42710") {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(10<<attempt) * time.Millisecond):
		}
	}
	return err
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings is on since PostgreSQL 9.1).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// Apply is the migrate step: as the schema's owner (ownerURL), apply the pending migrations, then the
// roles and the logins.
func Apply(ctx context.Context, ownerURL string, logins []Login) error {
	cfg, err := pgxpool.ParseConfig(ownerURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer pool.Close()
	s := &Store{Pool: pool}
	if err := s.Migrate(ctx); err != nil {
		return err
	}
	return Provision(ctx, pool, logins)
}

// LoginURL is databaseURL with its user and password replaced by l's: a function's URL on the same
// server and database as the owner's (make run, tests).
func LoginURL(databaseURL string, l Login) (string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", err
	}
	u.User = url.UserPassword(l.User, l.Password)
	return u.String(), nil
}
