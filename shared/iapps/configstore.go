package iapps

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ucloud-im/knative-im/shared/store"
)

// InitialETag is the ETag of a configuration nobody stored yet.
const InitialETag = "initial"

// Row states: a row is 'registering' from the moment the intent to register the job is recorded until Core
// answered with the job id; only 'active' rows hold a configuration the user set.
const (
	stateRegistering = "registering"
	stateActive      = "active"
)

// ErrStaleETag is a compare-and-swap that lost: the stored ETag is not the expected one.
var ErrStaleETag = errors.New("the configuration changed since it was loaded")

// Record is one stored configuration.
type Record struct {
	Key       Key
	Config    json.RawMessage
	ETag      string
	JobID     string
	State     string
	Intent    string
	UpdatedAt time.Time
	// Lease is the terminal's idle lease when read with WithLease (zero otherwise).
	Lease time.Time
}

// Active reports whether the record holds a configuration the user set.
func (r Record) Active() bool { return r.State == stateActive && r.JobID != "" }

// ConfigStore is the iapp_config table.
type ConfigStore struct {
	Pool *pgxpool.Pool
}

const recordColumns = `app, created_by, project, config, etag, coalesce(job_id, ''), state, coalesce(intent, ''), updated_at`

const selectRecord = `SELECT ` + recordColumns + ` FROM iapp_config WHERE app = $1 AND created_by = $2 AND project = $3`

func scanRecord(row pgx.Row) (Record, error) {
	var r Record
	err := row.Scan(&r.Key.App, &r.Key.CreatedBy, &r.Key.Project, &r.Config, &r.ETag, &r.JobID, &r.State, &r.Intent, &r.UpdatedAt)
	return r, store.Classify(err)
}

// Get reads the record of key; store.ErrNotFound when there is none.
func (s *ConfigStore) Get(ctx context.Context, key Key) (Record, error) {
	return scanRecord(s.Pool.QueryRow(ctx, selectRecord, key.App, key.CreatedBy, key.Project))
}

// GetByJob reads the active record whose application job is jobID; store.ErrNotFound when the job is not
// an integrated application's.
func (s *ConfigStore) GetByJob(ctx context.Context, jobID string) (Record, error) {
	return scanRecord(s.Pool.QueryRow(ctx, `SELECT `+recordColumns+` FROM iapp_config WHERE job_id = $1 AND state = 'active'`, jobID))
}

// CompareAndSwap stores cfg with a fresh ETag when the record is active and its ETag is expected (any ETag
// when expected is nil), in one statement: concurrent writers on any number of instances are ordered by the
// row lock, and every one after the first sees the new ETag and loses. It returns the new record.
func (s *ConfigStore) CompareAndSwap(ctx context.Context, key Key, cfg json.RawMessage, expected *string) (Record, error) {
	etag := NewETag()
	r, err := scanRecord(s.Pool.QueryRow(ctx, `UPDATE iapp_config SET config = $4, etag = $5, updated_at = now()
		WHERE app = $1 AND created_by = $2 AND project = $3 AND state = 'active' AND ($6::text IS NULL OR etag = $6)
		RETURNING `+recordColumns,
		key.App, key.CreatedBy, key.Project, cfg, etag, expected))
	if errors.Is(err, store.ErrNotFound) {
		return Record{}, ErrStaleETag
	}
	return r, err
}

// Delete removes the record of key (its job ended for good).
func (s *ConfigStore) Delete(ctx context.Context, key Key) error {
	_, err := s.Pool.Exec(ctx, "DELETE FROM iapp_config WHERE app = $1 AND created_by = $2 AND project = $3", key.App, key.CreatedBy, key.Project)
	return store.Classify(err)
}

// JobFinal reports whether the monitor last saw the job in a final state (the job_state table's owner
// answers, through this store's pool).
func (s *ConfigStore) JobFinal(ctx context.Context, jobID string) (bool, error) {
	return (&store.JobStates{Pool: s.Pool}).Final(ctx, jobID)
}

// ActiveJobs lists the jobs of active integrated applications.
func (s *ConfigStore) ActiveJobs(ctx context.Context) ([]string, error) {
	rows, err := s.Pool.Query(ctx, `SELECT job_id FROM iapp_config WHERE state = 'active' AND job_id IS NOT NULL`)
	if err != nil {
		return nil, store.Classify(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, store.Classify(err)
}

// Register makes sure key has a job registered with Core, calling register at most once per key across
// all instances: a session advisory lock on the key serialises the callers, the intent is recorded in a
// 'registering' row before Core is called, and a caller that finds such a row (an earlier instance crashed
// between the two steps) registers again with the same providerGeneratedId so Core can recognise it.
//
// The row becomes active holding cfg under a new ETag, in the same statement that records the job, and
// applied is true: the caller's configuration is stored. (Activating it with a default first let the
// monitor see an active application with no folders in between and tell Core it was powered off.) When
// another caller registered the job first, the row is returned as it is and applied is false.
func (s *ConfigStore) Register(ctx context.Context, key Key, cfg json.RawMessage, register func(ctx context.Context, intent string) (string, error)) (r Record, applied bool, err error) {
	if r, err := s.Get(ctx, key); err == nil && r.Active() {
		return r, false, nil
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Record{}, false, err
	}
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return Record{}, false, store.Classify(err)
	}
	defer conn.Release()
	lockKey := fmt.Sprintf("iapp:%s/%s/%s", key.App, key.CreatedBy, key.Project)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtextextended($1, 0))", lockKey); err != nil {
		return Record{}, false, store.Classify(err)
	}
	defer func() {
		// Unlock even when ctx has ended; the connection goes back to the pool and must not keep the lock.
		if _, err := conn.Exec(context.Background(), "SELECT pg_advisory_unlock(hashtextextended($1, 0))", lockKey); err != nil {
			conn.Conn().Close(context.Background())
		}
	}()
	r, err = scanRecord(conn.QueryRow(ctx, selectRecord, key.App, key.CreatedBy, key.Project))
	switch {
	case err == nil && r.Active():
		return r, false, nil // another instance registered it while we waited for the lock
	case errors.Is(err, store.ErrNotFound):
		r, err = scanRecord(conn.QueryRow(ctx, `INSERT INTO iapp_config (app, created_by, project, config, etag, state, intent)
			VALUES ($1, $2, $3, $4, $5, 'registering', $6)
			RETURNING `+recordColumns,
			key.App, key.CreatedBy, key.Project, cfg, InitialETag, NewETag()))
		if err != nil {
			return Record{}, false, err
		}
	case err != nil:
		return Record{}, false, err
	}
	jobID, err := register(ctx, r.Intent)
	if err != nil {
		return Record{}, false, err
	}
	r, err = scanRecord(conn.QueryRow(ctx, `UPDATE iapp_config SET job_id = $4, state = 'active', config = $5, etag = $6, updated_at = now()
		WHERE app = $1 AND created_by = $2 AND project = $3
		RETURNING `+recordColumns,
		key.App, key.CreatedBy, key.Project, jobID, cfg, NewETag()))
	if err != nil {
		return Record{}, false, err
	}
	return r, true, nil
}

// NewETag is an opaque random token.
func NewETag() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
