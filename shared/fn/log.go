package fn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/ucloud-im/knative-im/shared/tracing"
)

// NewLogger makes the JSON logger every function uses, tagged with the function's name.
func NewLogger(w io.Writer, function, level string) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl})).With("function", function)
}

type logKey struct{}

// requestLog is the logger of one request; WithJobID adds the job id once the handler knows it, so the
// access-log line carries it too. The trace id is kept apart because an event replaces the request's
// trace with the event's own (setTrace), and a JSON line must not carry the key twice.
type requestLog struct {
	mu      sync.Mutex
	logger  *slog.Logger // the request id, function and job id
	traceID string
	traced  *slog.Logger // logger with trace_id, when there is one
}

func withRequestLog(ctx context.Context, l *slog.Logger) (context.Context, *requestLog) {
	rl := &requestLog{logger: l}
	return context.WithValue(ctx, logKey{}, rl), rl
}

func (rl *requestLog) get() *slog.Logger {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.traced != nil {
		return rl.traced
	}
	return rl.logger
}

// setTrace tags the request's log lines with ctx's trace id (none without a valid span context).
func (rl *requestLog) setTrace(ctx context.Context) {
	id := tracing.TraceID(ctx)
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.traceID, rl.traced = id, nil
	if id != "" {
		rl.traced = rl.logger.With("trace_id", id)
	}
}

// Log is the logger of the request in ctx (request id, function, job id where known), or slog's default.
func Log(ctx context.Context) *slog.Logger {
	if rl, ok := ctx.Value(logKey{}).(*requestLog); ok {
		return rl.get()
	}
	return slog.Default()
}

// WithJobID tags the rest of the request's log lines with the job id.
func WithJobID(ctx context.Context, jobID string) {
	if rl, ok := ctx.Value(logKey{}).(*requestLog); ok {
		rl.mu.Lock()
		rl.logger = rl.logger.With("job_id", jobID)
		if rl.traceID != "" {
			rl.traced = rl.logger.With("trace_id", rl.traceID)
		}
		rl.mu.Unlock()
	}
}

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
