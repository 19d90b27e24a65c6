package streams

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/shellsession"
)

// The integrated terminal's texts, as the original IM shows them.
const (
	clearScreen    = "\x1b[2J\x1b[H"
	WaitingText    = "A terminal is being prepared for you...\r\n"
	ExpiredText    = "Your session has expired. Please open a new one.\r\n"
	spinnerEvery   = 500 * time.Millisecond
	spinnerRestate = 40 // ticks between repeats of the waiting text
	// leaseCheckTicks is how often (in spinner ticks) a waiting shell asks whether the lease expired.
	leaseCheckTicks = 4
)

var spinner = []string{".", ":", ":", "."}

// TerminalLeases is the integrated terminal's idle lease (iapps.Leases): renewed on input, read to tell
// an expired terminal from one still starting.
type TerminalLeases interface {
	Renew(ctx context.Context, jobID string) error
	Expired(ctx context.Context, jobID string, idle time.Duration) (bool, error)
}

// terminalInput routes the browser's input and sizes to the shell of the moment (none while waiting).
type terminalInput struct {
	mu         sync.Mutex
	stdin      *io.PipeWriter
	sizes      *sizeQueue
	cols, rows uint16
}

func (t *terminalInput) write(s string) {
	t.mu.Lock()
	w := t.stdin
	t.mu.Unlock()
	if w != nil {
		_, _ = io.WriteString(w, s) // a shell that ended closed its pipe: the input is dropped
	}
}

func (t *terminalInput) resize(cols, rows uint16) {
	if cols == 0 || rows == 0 {
		return
	}
	t.mu.Lock()
	t.cols, t.rows = cols, rows
	q := t.sizes
	t.mu.Unlock()
	if q != nil {
		q.push(cols, rows)
	}
}

func (h *ShellSocket) renewEvery() time.Duration {
	if h.RenewEvery > 0 {
		return h.RenewEvery
	}
	if h.TerminalIdle > 0 && h.TerminalIdle/10 < 5*time.Second {
		return h.TerminalIdle / 10
	}
	return 5 * time.Second
}

// serveTerminal is the integrated terminal's shell (a session from openTerminalInFolder): while the
// terminal's pod is not running it shows the original's waiting text and spinner; then a shell, and
// another whenever one ends, while the lease lives; input renews the lease (at most once per renewEvery,
// so a burst of keystrokes is one write). An expired lease ends the socket with the original's message.
func (h *ShellSocket) serveTerminal(ctx context.Context, ws *websocket.Conn, conn *shellConn, initStream string, init shellPayload, sess shellsession.Session) {
	out := &dataWriter{send: func(s string) error {
		return conn.send(initStream, map[string]string{"type": "data", "data": s})
	}}
	if h.Leases == nil {
		_, _ = out.Write([]byte("This provider does not serve terminals.\r\n"))
		closeWith(ws, websocket.CloseNormalClosure, "no terminal")
		return
	}
	_ = ws.SetReadDeadline(time.Time{})
	if conn.send(initStream, map[string]string{"type": "initialize"}) != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := &terminalInput{cols: init.Cols, rows: init.Rows}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer cancel()
		h.readTerminal(ctx, ws, conn, sess.JobID, in)
	}()
	defer func() { ws.Close(); <-readDone }()
	h.renew(ctx, sess.JobID) // opening the shell is activity too
	pod := kube.PodName(sess.JobID, 0)
	for ctx.Err() == nil {
		if h.expired(ctx, sess.JobID) {
			_, _ = out.Write([]byte(ExpiredText))
			break
		}
		uid, ok := h.waitTerminal(ctx, pod, sess, out)
		if !ok {
			break
		}
		started := time.Now()
		h.runTerminal(ctx, pod, uid, in, out)
		// A shell that fails at once (an exec refused) is not retried in a tight loop.
		if wait := time.Second - time.Since(started); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
	}
	closeWith(ws, websocket.CloseNormalClosure, "terminal ended")
}

func (h *ShellSocket) expired(ctx context.Context, jobID string) bool {
	exp, err := h.Leases.Expired(ctx, jobID, h.TerminalIdle)
	if err != nil {
		fn.Log(ctx).Warn("terminal: lease lookup failed", "err", err.Error())
		return false
	}
	return exp
}

func (h *ShellSocket) renew(ctx context.Context, jobID string) {
	if err := h.Leases.Renew(ctx, jobID); err != nil && ctx.Err() == nil {
		fn.Log(ctx).Warn("terminal: lease renewal failed", "err", err.Error())
	}
}

// readTerminal reads the browser's frames until it leaves: input goes to the shell of the moment and
// renews the lease, resize (and a second initialize) changes the size; each is acknowledged.
func (h *ShellSocket) readTerminal(ctx context.Context, ws *websocket.Conn, conn *shellConn, jobID string, in *terminalInput) {
	var renewed time.Time
	every := h.renewEvery()
	touched := func() {
		if time.Since(renewed) >= every {
			renewed = time.Now()
			h.renew(ctx, jobID)
		}
	}
	readFrames(ws, conn, func(data string) error {
		in.write(data)
		touched()
		return nil
	}, func(cols, rows uint16) {
		in.resize(cols, rows)
		touched()
	})
}

// waitTerminal waits for the terminal's pod to run, showing the waiting text and spinner meanwhile (and
// nothing when it already runs). It answers the pod's UID, or false when the browser left or the lease
// expired (the message shown).
func (h *ShellSocket) waitTerminal(ctx context.Context, pod string, sess shellsession.Session, out io.Writer) (types.UID, bool) {
	every := h.SpinnerEvery
	if every <= 0 {
		every = spinnerEvery
	}
	for tick := 0; ; tick++ {
		p, err := h.Kube.CoreV1().Pods(h.Namespace).Get(ctx, pod, metav1.GetOptions{})
		if err == nil && terminalReady(p, sess) {
			if tick > 0 {
				_, _ = out.Write([]byte(clearScreen))
			}
			return p.UID, true
		}
		if tick%spinnerRestate == 0 {
			if tick == 0 {
				_, _ = out.Write([]byte(clearScreen + WaitingText))
			} else {
				_, _ = out.Write([]byte("\r\n" + WaitingText))
			}
		}
		_, _ = out.Write([]byte(spinner[tick%len(spinner)]))
		if tick%leaseCheckTicks == leaseCheckTicks-1 && h.expired(ctx, sess.JobID) {
			_, _ = out.Write([]byte("\r\n" + ExpiredText))
			return "", false
		}
		select {
		case <-ctx.Done():
			return "", false
		case <-time.After(every):
		}
	}
}

// terminalReady: the session's own job's pod (by its label, not only its name), running, not going away.
func terminalReady(p *corev1.Pod, sess shellsession.Session) bool {
	return p.Labels[kube.LabelJobID] == sess.JobID && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning
}

// runTerminal runs one shell in the terminal's pod until it exits, the browser leaves, or the pod (uid)
// stops running: the pod stopped when idle or replaced with a new folder ends the shell even where the
// exec itself would not notice.
func (h *ShellSocket) runTerminal(ctx context.Context, pod string, uid types.UID, in *terminalInput, out io.Writer) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stdinR, stdinW := io.Pipe()
	sizes := &sizeQueue{ch: make(chan remotecommand.TerminalSize, 4), ctx: ctx}
	in.mu.Lock()
	in.stdin, in.sizes = stdinW, sizes
	cols, rows := in.cols, in.rows
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		in.stdin, in.sizes = nil, nil
		in.mu.Unlock()
		_ = stdinR.Close()
		_ = stdinW.Close()
	}()
	sizes.push(cols, rows)
	go h.watchPod(ctx, cancel, pod, uid)
	if err := h.exec(ctx, pod, stdinR, out, sizes); err != nil && ctx.Err() == nil {
		fn.Log(ctx).Info("terminal: shell ended", "err", err.Error())
	}
}

// watchPod cancels when the pod with uid no longer runs.
func (h *ShellSocket) watchPod(ctx context.Context, cancel context.CancelFunc, pod string, uid types.UID) {
	every := h.PodCheckEvery
	if every <= 0 {
		every = time.Second
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		p, err := h.Kube.CoreV1().Pods(h.Namespace).Get(ctx, pod, metav1.GetOptions{})
		if ctx.Err() != nil {
			return
		}
		if apierrors.IsNotFound(err) || (err == nil && (p.UID != uid || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning)) {
			cancel()
			return
		}
	}
}
