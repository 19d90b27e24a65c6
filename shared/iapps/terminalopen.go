package iapps

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/shellsession"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// TerminalCallMaxBody bounds openTerminalInFolder: one folder path per item (43 bytes for one).
const TerminalCallMaxBody = 64 << 10

// TerminalOpenPath is Core's openTerminalInFolder (core2 routes it to the provider of the folder's drive).
func TerminalOpenPath(provider string) string {
	return "/ucloud/" + provider + "/jobs/openTerminalInFolder"
}

// SessionIssuer hands out one-time shell session identifiers (shellsession.Store).
type SessionIssuer interface {
	Issue(ctx context.Context, sess shellsession.Session) (string, error)
}

// TerminalOpener serves openTerminalInFolder: the folder's drive joins the owner's integrated terminal
// (through Service.Update: the same validation, drive permission check, registration, ETag and store as
// iapps/update), its job is started or woken, its idle lease renewed, and a shell session into it is
// returned. core2 has checked EDIT on the drive for the user already; the provider decides again itself.
type TerminalOpener struct {
	Service  *Service
	Leases   Leases
	Sessions SessionIssuer
	// ShellURL is the sessions' domainOverride: the provider's public WebSocket base (wss://...).
	ShellURL string
}

type terminalFolder struct {
	Folder string `json:"folder"`
}

// maxOpenAttempts bounds the retries of an update that lost its ETag race to another open.
const maxOpenAttempts = 5

// Open opens a terminal in folder for username, the user core2 acts for. The owner is the user's personal
// workspace, as in the original (a terminal is a user's, whichever drive it mounts).
func (o *TerminalOpener) Open(ctx context.Context, username, folder string) (ucloud.OpenSession, error) {
	if username == "" {
		return ucloud.OpenSession{}, fn.Errorf(http.StatusBadRequest, "BAD_REQUEST", "Invalid request: the user opening the terminal is not named (ucloud-username).")
	}
	if err := checkUCloudPath("folder", folder); err != nil {
		var ve *ValidationError
		errors.As(err, &ve)
		return ucloud.OpenSession{}, fn.Wrap(err, http.StatusBadRequest, "BAD_FOLDER", "Invalid request: folder "+trimReason(ve)+".")
	}
	h, ok := o.Service.Registry.Lookup(Terminal{}.Name())
	if !ok {
		return ucloud.OpenSession{}, fn.Errorf(http.StatusNotFound, "TERMINAL_NOT_SUPPORTED", "Terminals in a folder are not available from this provider.")
	}
	owner := ucloud.ResourceOwner{CreatedBy: username}
	// The folder itself is decided first, so the refusal names what the user asked for; nothing is
	// registered or stored before it passes.
	if err := checkAccess(ctx, o.Service.Access, h, owner, mustJSON(TerminalConfig{Folders: []string{folder}})); err != nil {
		return ucloud.OpenSession{}, err
	}
	// A terminal mounts whole drives, as the original's: the folder's drive root.
	drive := "/" + drives.DriveID(folder)
	key := KeyOf(h.Name(), owner)
	var jobID string
	for attempt := 1; ; attempt++ {
		id, err := o.join(ctx, h, key, owner, drive)
		if retryOpen(err) && attempt < maxOpenAttempts {
			continue // another open changed the configuration, or the old job had ended: read it again
		}
		if err != nil {
			return ucloud.OpenSession{}, err
		}
		jobID = id
		break
	}
	sid, err := o.Sessions.Issue(ctx, shellsession.Session{JobID: jobID, Rank: 0, Username: username, Terminal: true})
	if err != nil {
		return ucloud.OpenSession{}, storeError(err)
	}
	// jobId is the terminal's own job (the original put the folder there; core2 passes it through unread).
	return ucloud.OpenSession{Type: "shell", JobID: jobID, Rank: 0, DomainOverride: o.ShellURL, SessionIdentifier: sid}, nil
}

// join puts drive into the owner's terminal configuration (when it is not there yet) and starts or wakes
// the terminal, renewing its lease. It answers the terminal's job id.
func (o *TerminalOpener) join(ctx context.Context, h App, key Key, owner ucloud.ResourceOwner, drive string) (string, error) {
	s := o.Service
	rec, err := s.Store.Get(ctx, key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", storeError(err)
	}
	var current TerminalConfig
	expected := InitialETag
	if err == nil && rec.Active() {
		if err := json.Unmarshal(rec.Config, &current); err != nil {
			return "", err
		}
		expected = rec.ETag
	}
	// Folders the owner may no longer use are left behind: with one of them the terminal would not run.
	folders := []string{}
	if len(current.Folders) > 0 {
		denied, err := s.Access.Denied(ctx, owner, foldersOf(current.Folders), true) // as Update decides: fresh from Core
		if err != nil {
			return "", fn.Wrap(err, http.StatusBadGateway, "CORE_UNAVAILABLE", "The provider could not check your access to the folders. Please try again later.")
		}
		for _, f := range current.Folders {
			if !slices.ContainsFunc(denied, func(d drives.Folder) bool { return d.UCloudPath == f }) {
				folders = append(folders, f)
			}
		}
	}
	if !slices.Contains(folders, drive) {
		folders = append(folders, drive)
	}
	if expected != InitialETag && slices.Equal(folders, current.Folders) {
		return rec.JobID, o.wake(ctx, h, key, rec)
	}
	if len(folders) > MaxTerminalFolders {
		folders = folders[len(folders)-MaxTerminalFolders:]
	}
	// Update stores the new configuration (a fresh updated_at: the terminal runs) and applies it.
	if err := s.Update(ctx, h.Name(), UpdateRequest{ProductID: h.Name(), Principal: owner,
		Config: mustJSON(TerminalConfig{Folders: folders}), ExpectedETag: &expected}); err != nil {
		return "", err
	}
	rec, err = s.Store.Get(ctx, key)
	if err != nil {
		return "", storeError(err)
	}
	if err := o.Leases.Start(ctx, rec.JobID); err != nil {
		return "", storeError(err)
	}
	return rec.JobID, nil
}

// wake renews the lease of a terminal whose configuration already has the drive and makes its pod run
// again (it may have been stopped when idle). A job that has ended is cleared, and the caller opens anew.
func (o *TerminalOpener) wake(ctx context.Context, h App, key Key, rec Record) error {
	s := o.Service
	if ended, err := s.clearIfEnded(ctx, key, rec.JobID); err != nil {
		return err
	} else if ended {
		return errStale // read again: the next attempt registers a new job
	}
	if err := o.Leases.Start(ctx, rec.JobID); err != nil {
		return storeError(err)
	}
	rec, err := WithLease(ctx, o.Leases.Pool, rec)
	if err != nil {
		return storeError(err)
	}
	fn.WithJobID(ctx, rec.JobID)
	if res, err := Reconcile(ctx, s.Kube, s.Namespace, h, rec, s.Access); err != nil {
		// The lease is renewed: the monitor starts the pod at its next pass.
		fn.Log(ctx).Warn("terminal woken but not started yet; the monitor will start it", "err", err.Error())
	} else {
		fn.Log(ctx).Info("terminal woken", "outcome", string(res.Outcome))
	}
	return nil
}

// Routes serves POST /ucloud/{provider}/jobs/openTerminalInFolder on its own (tests); config-update
// serves Handler through the path table.
func (o *TerminalOpener) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+TerminalOpenPath("{provider}"), o.Handler())
	return mux
}

// Handler answers openTerminalInFolder, a bulk call: each item opens a session and, as Core takes
// responses[i] for item i, one failed item fails the call with its error.
func (o *TerminalOpener) Handler() http.Handler {
	return fn.MaxBody(TerminalCallMaxBody, fn.ForProvider(o.Service.Provider, fn.Handle(
		func(ctx context.Context, r *http.Request, req ucloud.BulkRequest[terminalFolder]) (ucloud.BulkResponse[ucloud.OpenSession], error) {
			username := coreUsername(r)
			out := ucloud.BulkResponse[ucloud.OpenSession]{Responses: make([]ucloud.OpenSession, 0, len(req.Items))}
			for _, it := range req.Items {
				sess, err := o.Open(ctx, username, it.Folder)
				if err != nil {
					return ucloud.BulkResponse[ucloud.OpenSession]{}, err
				}
				out.Responses = append(out.Responses, sess)
			}
			return out, nil
		})))
}

// retryOpen: an open that lost its ETag race, or found the terminal's job ended (its row cleared by
// update), succeeds when read again.
func retryOpen(err error) bool {
	var fe *fn.Error
	return errors.Is(err, errStale) || (errors.As(err, &fe) && fe.Code == "JOB_ENDED")
}

// coreUsername is the user Core acts for (its ucloud-username header, base64), or "" without one. Only
// Core can send it: every call carries Core's token, checked by the server first.
func coreUsername(r *http.Request) string {
	raw, err := base64.StdEncoding.DecodeString(r.Header.Get("ucloud-username"))
	if err != nil {
		return ""
	}
	return string(raw)
}

func foldersOf(paths []string) []drives.Folder {
	out := make([]drives.Folder, len(paths))
	for i, p := range paths {
		out[i] = drives.Folder{UCloudPath: p}
	}
	return out
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func trimReason(ve *ValidationError) string {
	if ve == nil {
		return "is invalid"
	}
	return ve.Reason
}
