package jobs

import (
	"context"
	"encoding/base64"
	"net/http"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/shellsession"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// OpenShell answers interactiveSession SHELL: a one-time session identifier for that job's rank, stored
// for job-streams, and the provider's WebSocket base where the browser opens it (the original's
// domainOverride). Core checked that the user may edit the job before it called.
func (s *Service) OpenShell(ctx context.Context, req SessionRequest, username string) (ucloud.OpenSession, error) {
	if s.Shells == nil || s.ShellURL == "" {
		return ucloud.OpenSession{}, fn.Errorf(http.StatusBadRequest, "SESSION_NOT_SUPPORTED", "This provider does not open shells.")
	}
	if !validJobID(req.Job.ID) || req.Job.ID == "" {
		return ucloud.OpenSession{}, fn.Errorf(http.StatusBadRequest, "BAD_JOB", "Not a job id: %q.", req.Job.ID)
	}
	if req.Rank < 0 || req.Rank >= max(req.Job.Specification.Replicas, 1) {
		return ucloud.OpenSession{}, fn.Errorf(http.StatusBadRequest, "BAD_RANK", "Job %s has no rank %d.", req.Job.ID, req.Rank)
	}
	if req.Job.Status.State.Final() {
		return ucloud.OpenSession{}, fn.Errorf(http.StatusBadRequest, "JOB_ENDED", "Job %s has ended.", req.Job.ID)
	}
	id, err := s.Shells.Issue(ctx, shellsession.Session{JobID: req.Job.ID, Rank: req.Rank, Username: username})
	if err != nil {
		return ucloud.OpenSession{}, fn.Wrap(err, http.StatusServiceUnavailable, "DATABASE_UNAVAILABLE", "The provider cannot open a shell right now. Please try again later.")
	}
	return ucloud.OpenSession{Type: "shell", JobID: req.Job.ID, Rank: req.Rank, DomainOverride: s.ShellURL, SessionIdentifier: id}, nil
}

// WebSocketURL is shellsession.WebSocketURL (kept for the callers that build job-control's Service).
func WebSocketURL(public string) string { return shellsession.WebSocketURL(public) }

// coreUsername is the user Core acts for (its ucloud-username header, base64), or "" without one.
func coreUsername(r *http.Request) string {
	raw, err := base64.StdEncoding.DecodeString(r.Header.Get("ucloud-username"))
	if err != nil {
		return ""
	}
	return string(raw)
}
