package drives

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Facts are the drives and projects the rule decides on; nil, nil means unknown (refused).
type Facts interface {
	Drive(ctx context.Context, id string) (*ucloud.Drive, error)
	Project(ctx context.Context, id string) (*ucloud.Project, error)
}

// Store keeps drives and projects in PostgreSQL (tracked_drive, tracked_project).
type Store struct {
	Pool *pgxpool.Pool
}

// Drive implements Facts.
func (s *Store) Drive(ctx context.Context, id string) (*ucloud.Drive, error) {
	var d ucloud.Drive
	if err := s.get(ctx, `SELECT resource FROM tracked_drive WHERE drive_id = $1`, id, &d); err != nil || d.ID == "" {
		return nil, err
	}
	return &d, nil
}

// Project implements Facts.
func (s *Store) Project(ctx context.Context, id string) (*ucloud.Project, error) {
	var p ucloud.Project
	if err := s.get(ctx, `SELECT resource FROM tracked_project WHERE project_id = $1`, id, &p); err != nil || p.ID == "" {
		return nil, err
	}
	return &p, nil
}

func (s *Store) get(ctx context.Context, q, id string, v any) error {
	var raw []byte
	err := s.Pool.QueryRow(ctx, q, id).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", id, err)
	}
	return json.Unmarshal(raw, v)
}

// PutDrive records a drive as Core sent it.
func (s *Store) PutDrive(ctx context.Context, d ucloud.Drive) error {
	raw, err := json.Marshal(d)
	if err != nil {
		return err
	}
	_, err = s.Pool.Exec(ctx, `INSERT INTO tracked_drive (drive_id, resource, refreshed_at) VALUES ($1, $2, now())
		ON CONFLICT (drive_id) DO UPDATE SET resource = EXCLUDED.resource, refreshed_at = now()`, d.ID, raw)
	if err != nil {
		return fmt.Errorf("store drive %s: %w", d.ID, err)
	}
	return nil
}

// DeleteDrive forgets a drive Core no longer knows: it is refused from then on.
func (s *Store) DeleteDrive(ctx context.Context, id string) error {
	if _, err := s.Pool.Exec(ctx, `DELETE FROM tracked_drive WHERE drive_id = $1`, id); err != nil {
		return fmt.Errorf("forget drive %s: %w", id, err)
	}
	return nil
}

// PutProject records a project with its members and groups as Core last changed it (modifiedAt, ms); an
// older copy (a replay) never overwrites a newer one.
func (s *Store) PutProject(ctx context.Context, p ucloud.Project, modifiedAt int64) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = s.Pool.Exec(ctx, `INSERT INTO tracked_project (project_id, resource, modified_at, refreshed_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (project_id) DO UPDATE SET resource = EXCLUDED.resource, modified_at = EXCLUDED.modified_at, refreshed_at = now()
		WHERE tracked_project.modified_at <= EXCLUDED.modified_at`, p.ID, raw, modifiedAt)
	if err != nil {
		return fmt.Errorf("store project %s: %w", p.ID, err)
	}
	return nil
}

// LastProjectChange is the newest modification time stored (ms; 0 with none).
func (s *Store) LastProjectChange(ctx context.Context) (int64, error) {
	var ms int64
	if err := s.Pool.QueryRow(ctx, `SELECT coalesce(max(modified_at), 0) FROM tracked_project`).Scan(&ms); err != nil {
		return 0, fmt.Errorf("read the last project change: %w", err)
	}
	return ms, nil
}

// DeleteProject forgets a project.
func (s *Store) DeleteProject(ctx context.Context, id string) error {
	if _, err := s.Pool.Exec(ctx, `DELETE FROM tracked_project WHERE project_id = $1`, id); err != nil {
		return fmt.Errorf("forget project %s: %w", id, err)
	}
	return nil
}

// DriveIDs lists every tracked drive (what the timer refreshes).
func (s *Store) DriveIDs(ctx context.Context) ([]string, error) {
	rows, err := s.Pool.Query(ctx, `SELECT drive_id FROM tracked_drive ORDER BY drive_id`)
	if err != nil {
		return nil, fmt.Errorf("list drives: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
