// Package shellsession owns the shell_session table: the one-time identifiers of shell sessions.
// job-control issues them (interactiveSession SHELL) and job-streams takes them (the browser's initialize),
// so any instance of either can serve its half.
package shellsession

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ucloud-im/knative-im/shared/store"
)

// DefaultTTL is how long an identifier works unused: the browser connects right after Core answers.
const DefaultTTL = 2 * time.Minute

// ErrNoSession is the answer for an identifier that is unknown, forged, used, or expired: the same for all,
// so a client learns nothing about which.
var ErrNoSession = errors.New("no such shell session")

// Session is what an identifier opens: one rank of one job, for the user Core named.
type Session struct {
	JobID    string
	Rank     int
	Username string
	// Terminal marks a session of the integrated terminal (openTerminalInFolder): the shell waits for the
	// terminal's pod, renews its idle lease on input and reattaches while the job lives.
	Terminal bool
}

// PublicEnv is the configuration of the functions that issue sessions (job-control, and config-update for the
// integrated terminal).
type PublicEnv struct {
	// PublicURL is the provider's public base URL (the API host), where browsers open shell sockets.
	PublicURL string `envconfig:"UCLOUD_IM_PUBLIC_URL"`
	// ShellSessionTTL is how long a shell session's identifier works unused.
	ShellSessionTTL time.Duration `envconfig:"SHELL_SESSION_TTL" default:"2m"`
}

// WebSocketURL turns the provider's public base URL into the WebSocket base the browser uses
// (https -> wss, http -> ws), as the original's ToWebSocketUrl: a session's domainOverride.
func WebSocketURL(public string) string {
	public = strings.TrimSuffix(public, "/")
	if rest, ok := strings.CutPrefix(public, "https://"); ok {
		return "wss://" + rest
	}
	if rest, ok := strings.CutPrefix(public, "http://"); ok {
		return "ws://" + rest
	}
	return public
}

// Store is the table.
type Store struct {
	Pool *pgxpool.Pool
	// TTL is DefaultTTL when zero.
	TTL time.Duration
}

func hash(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// Issue stores a new session and returns its identifier: 32 random bytes, hex. Only its hash is stored.
func (s Store) Issue(ctx context.Context, sess Session) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b)
	ttl := s.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	_, err := s.Pool.Exec(ctx, `INSERT INTO shell_session (id_hash, job_id, rank, username, terminal, expires_at)
		VALUES ($1, $2, $3, $4, $5, now() + $6::interval)`, hash(id), sess.JobID, sess.Rank, sess.Username, sess.Terminal, ttl.String())
	if err != nil {
		return "", store.Classify(err)
	}
	return id, nil
}

// Take uses the session: it works once, before it expires; one statement, so two instances racing for
// the same identifier cannot both win.
func (s Store) Take(ctx context.Context, id string) (Session, error) {
	var sess Session
	err := s.Pool.QueryRow(ctx, `UPDATE shell_session SET used_at = now()
		WHERE id_hash = $1 AND used_at IS NULL AND expires_at > now()
		RETURNING job_id, rank, username, terminal`, hash(id)).Scan(&sess.JobID, &sess.Rank, &sess.Username, &sess.Terminal)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, store.Classify(err)
	}
	return sess, nil
}

// Sweep removes sessions that expired before cutoff (used or not), in batches (store.Retention).
func (s Store) Sweep(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.Pool.Exec(ctx, `DELETE FROM shell_session WHERE id_hash IN (
			SELECT id_hash FROM shell_session WHERE expires_at < $1 LIMIT $2)`, cutoff, store.SweepBatch)
		if err != nil {
			return total, store.Classify(err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < store.SweepBatch {
			return total, nil
		}
	}
}
