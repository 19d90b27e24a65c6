package drives

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// DriveSource reads a drive with its whole ACL from Core (nil, nil: Core does not know it).
type DriveSource interface {
	RetrieveDrive(ctx context.Context, id string) (*ucloud.Drive, error)
}

// Access decides folders with the rule over the drives and projects in Store. Core does not tell the
// provider when an ACL changes, so drives are read again from Core before every apply (Denied with
// fresh), on a cache miss, and by Run on a timer; projects come from Core's provider notifications
// (Notifications), which Core sends when members, roles or groups change.
type Access struct {
	Store *Store
	// Core, when set, is asked for drives; without it only what Store holds is known.
	Core DriveSource
	// Stream, when set, is Core's provider notification stream, which FollowProjects keeps projects from.
	Stream ProjectStream
}

// ProjectStream is Core's provider notification stream (ucloud.Client.ProjectNotifications).
type ProjectStream interface {
	ProjectNotifications(ctx context.Context, replayFromMs int64, handle ucloud.ProjectHandler) error
}

// replayMargin is how far before the newest stored change a reconnecting stream replays from (changes
// committed out of order around a disconnect).
const replayMargin = time.Minute

// FollowProjects keeps tracked_project from Core's notification stream until ctx ends, reconnecting after
// 1 s, doubling to 30 s while Core cannot be reached, and replaying from the newest change stored.
func (a *Access) FollowProjects(ctx context.Context, log *slog.Logger) {
	if a.Stream == nil {
		return
	}
	wait := time.Second
	for ctx.Err() == nil {
		from, err := a.Store.LastProjectChange(ctx)
		if err == nil {
			from = max(0, from-replayMargin.Milliseconds())
			started := time.Now()
			err = a.Stream.ProjectNotifications(ctx, from, func(ctx context.Context, p ucloud.Project, modifiedAt int64) error {
				return a.Store.PutProject(ctx, p, modifiedAt)
			})
			if time.Since(started) > time.Minute {
				wait = time.Second
			}
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("Core's project notifications ended; reconnecting", "err", fmt.Sprint(err), "in", wait.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// Denied lists the folders actor may not use, in order (empty: all allowed). With fresh, the folders'
// drives are first read again from Core (what an apply does); otherwise a drive not stored yet is read
// from Core once. A drive or project that stays unknown is denied.
func (a *Access) Denied(ctx context.Context, actor ucloud.ResourceOwner, folders []Folder, fresh bool) ([]Folder, error) {
	var denied []Folder
	// One read per drive and project, however many folders share them.
	drives := map[string]*ucloud.Drive{}
	projects := map[string]*ucloud.Project{}
	for _, f := range folders {
		id := DriveID(f.UCloudPath)
		d, seen := drives[id]
		if !seen {
			var err error
			if d, err = a.drive(ctx, id, fresh); err != nil {
				return nil, err
			}
			drives[id] = d
		}
		var project *ucloud.Project
		if d != nil && d.Owner.Project != nil && *d.Owner.Project != "" {
			pid := *d.Owner.Project
			var seen bool
			if project, seen = projects[pid]; !seen {
				var err error
				if project, err = a.Store.Project(ctx, pid); err != nil {
					return nil, err
				}
				projects[pid] = project
			}
		}
		if !CanUse(actor, d, project, f.ReadOnly) {
			denied = append(denied, f)
		}
	}
	return denied, nil
}

func (a *Access) drive(ctx context.Context, id string, fresh bool) (*ucloud.Drive, error) {
	if !fresh {
		d, err := a.Store.Drive(ctx, id)
		if err != nil || d != nil || a.Core == nil {
			return d, err
		}
	}
	if a.Core == nil {
		return a.Store.Drive(ctx, id)
	}
	return a.refresh(ctx, id)
}

// refresh reads one drive from Core and stores it, or forgets it when Core does not know it.
func (a *Access) refresh(ctx context.Context, id string) (*ucloud.Drive, error) {
	d, err := a.Core.RetrieveDrive(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read drive %s from UCloud/Core: %w", id, err)
	}
	if d == nil || d.ID != id {
		return nil, a.Store.DeleteDrive(ctx, id)
	}
	return d, a.Store.PutDrive(ctx, *d)
}

// RefreshAll reads every stored drive again from Core.
func (a *Access) RefreshAll(ctx context.Context) error {
	ids, err := a.Store.DriveIDs(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := a.refresh(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// Run refreshes every stored drive every `every` until ctx ends (nothing without Core).
func (a *Access) Run(ctx context.Context, every time.Duration, log *slog.Logger) {
	if a.Core == nil || every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := a.RefreshAll(ctx); err != nil && ctx.Err() == nil {
			log.Warn("refreshing drives from UCloud/Core failed; deciding on the last known ACLs", "err", err.Error())
		}
	}
}
