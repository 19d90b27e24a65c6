package streams

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/metrics"
	"github.com/ucloud-im/knative-im/shared/shellsession"
)

const (
	// shellFrameMax bounds one browser frame: a paste of text, a resize.
	shellFrameMax = 64 << 10
	// DefaultInitWait is how long a browser has to send a valid initialize after the upgrade.
	DefaultInitWait = 30 * time.Second
)

// ShellCommand runs bash where the image has it, else sh: one exec, decided inside the container.
var ShellCommand = []string{"/bin/sh", "-c", "if [ -x /bin/bash ]; then exec /bin/bash; else exec /bin/sh; fi"}

// ShellSocket serves the browser's shell: GET /ucloud/<P>/websocket, then frames with call
// jobs.compute.<P>.shell.open: initialize (the one-time session identifier, cols, rows) within InitWait,
// then input and resize; the terminal's output comes back as data frames on the initialize's stream, and
// each later frame is acknowledged. The identifier is the only credential: an unknown, used, expired or
// forged one closes the socket. The shell is an exec (TTY) into the session's job and rank, container
// user-job, through the apiserver.
type ShellSocket struct {
	Sessions  *shellsession.Store
	Kube      kubernetes.Interface
	Config    *rest.Config
	Namespace string
	// InitWait is DefaultInitWait when zero.
	InitWait time.Duration
	// Command is ShellCommand when nil.
	Command []string
	// Metrics, when set, counts the open shells.
	Metrics *metrics.Sessions
	// Leases is the integrated terminal's idle lease; without it terminal sessions are refused.
	Leases TerminalLeases
	// TerminalIdle is TERMINAL_IDLE_TIMEOUT: a terminal whose lease is older has expired.
	TerminalIdle time.Duration
	// RenewEvery bounds the lease writes of one terminal (default: a tenth of TerminalIdle, at most 5 s).
	RenewEvery time.Duration
	// SpinnerEvery (500 ms) and PodCheckEvery (1 s) pace the waiting terminal and the check that its pod
	// still runs.
	SpinnerEvery, PodCheckEvery time.Duration
}

type shellPayload struct {
	Type              string `json:"type"`
	SessionIdentifier string `json:"sessionIdentifier"`
	Cols              uint16 `json:"cols"`
	Rows              uint16 `json:"rows"`
	Data              string `json:"data"`
}

// shellConn serialises the frames written to one browser.
type shellConn struct {
	conn *websocket.Conn
	mu   sync.Mutex
}

func (c *shellConn) send(streamID string, payload any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
	return c.conn.WriteJSON(reply{Type: "message", StreamID: streamID, Payload: payload})
}

func (h *ShellSocket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		fn.WriteError(w, r, notWebSocket())
		return
	}
	// Browsers come from UCloud's web origin, never the provider's: the Origin is not checked, the session
	// identifier (handed to that user by Core, usable once) is what admits a socket.
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	defer h.Metrics.Open("shell")()
	conn := &shellConn{conn: ws}
	log := fn.Log(r.Context())
	ws.SetReadLimit(shellFrameMax)
	wait := h.InitWait
	if wait <= 0 {
		wait = DefaultInitWait
	}
	_ = ws.SetReadDeadline(time.Now().Add(wait))

	// Frames before a valid initialize are ignored, as the original does; the deadline still runs.
	var initStream string
	var init shellPayload
	for {
		var req request
		if err := ws.ReadJSON(&req); err != nil {
			return
		}
		if json.Unmarshal(req.Payload, &init) == nil && init.Type == "initialize" {
			initStream = req.StreamID
			break
		}
	}
	sess, err := h.Sessions.Take(r.Context(), init.SessionIdentifier)
	if err != nil {
		if !errors.Is(err, shellsession.ErrNoSession) {
			log.Warn("shell: session lookup failed", "err", err.Error())
		}
		closeWith(ws, websocket.ClosePolicyViolation, "unknown session")
		return
	}
	fn.WithJobID(r.Context(), sess.JobID)
	if sess.Terminal {
		h.serveTerminal(r.Context(), ws, conn, initStream, init, sess)
		return
	}
	pod := kube.PodName(sess.JobID, sess.Rank)
	if err := h.checkPod(r.Context(), pod, sess); err != nil {
		_ = conn.send(initStream, map[string]string{"type": "data", "data": err.Error() + "\r\n"})
		closeWith(ws, websocket.CloseNormalClosure, "job not running")
		return
	}
	_ = ws.SetReadDeadline(time.Time{})
	if err := conn.send(initStream, map[string]string{"type": "initialize"}); err != nil {
		return
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stdinR, stdinW := io.Pipe()
	sizes := &sizeQueue{ch: make(chan remotecommand.TerminalSize, 4), ctx: ctx}
	sizes.push(init.Cols, init.Rows)
	execDone := make(chan error, 1)
	go func() {
		execDone <- h.exec(ctx, pod, stdinR, &dataWriter{send: func(s string) error {
			return conn.send(initStream, map[string]string{"type": "data", "data": s})
		}}, sizes)
		cancel()
	}()
	defer func() { <-execDone }()
	defer stdinW.Close()
	defer cancel()
	// The shell ending closes the socket: closing it ends the read below.
	go func() {
		<-ctx.Done()
		closeWith(ws, websocket.CloseNormalClosure, "shell ended")
		ws.Close()
	}()

	readFrames(ws, conn, func(data string) error {
		_, err := io.WriteString(stdinW, data)
		return err
	}, sizes.push)
}

// readFrames reads the browser's frames after the initialize until it leaves, onInput fails or an
// acknowledgement cannot be sent: input goes to onInput, resize (and a second initialize, as in the
// original) to onResize, and each is acknowledged on its stream; other frames are ignored.
func readFrames(ws *websocket.Conn, conn *shellConn, onInput func(data string) error, onResize func(cols, rows uint16)) {
	for {
		var req request
		if err := ws.ReadJSON(&req); err != nil {
			return
		}
		var p shellPayload
		if json.Unmarshal(req.Payload, &p) != nil {
			continue
		}
		switch p.Type {
		case "input":
			if onInput(p.Data) != nil {
				return
			}
		case "resize", "initialize":
			onResize(p.Cols, p.Rows)
		default:
			continue
		}
		if conn.send(req.StreamID, map[string]string{"type": "ack"}) != nil {
			return
		}
	}
}

// checkPod admits a shell only into the session's own job's pod (by its labels, not only its name), and
// only while it runs.
func (h *ShellSocket) checkPod(ctx context.Context, name string, sess shellsession.Session) error {
	pod, err := h.Kube.CoreV1().Pods(h.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return errors.New("The job is not running.")
	}
	if pod.Labels[kube.LabelJobID] != sess.JobID || pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning {
		return errors.New("The job is not running.")
	}
	return nil
}

// exec runs the shell in the pod with a TTY: the WebSocket executor, SPDY where the apiserver (or a proxy
// in between) does not upgrade to it.
func (h *ShellSocket) exec(ctx context.Context, pod string, stdin io.Reader, stdout io.Writer, sizes remotecommand.TerminalSizeQueue) error {
	cmd := h.Command
	if cmd == nil {
		cmd = ShellCommand
	}
	req := h.Kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(h.Namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: kube.ContainerName, Command: cmd, Stdin: true, Stdout: true, TTY: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(h.Config, "GET", req.URL().String())
	if err != nil {
		return err
	}
	spdy, err := remotecommand.NewSPDYExecutor(h.Config, "POST", req.URL())
	if err != nil {
		return err
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return err
	}
	return exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Tty: true, TerminalSizeQueue: sizes})
}

// sizeQueue hands the browser's sizes to the executor; Next returns nil (the end) once ctx ends.
type sizeQueue struct {
	ch  chan remotecommand.TerminalSize
	ctx context.Context
}

func (q *sizeQueue) push(cols, rows uint16) {
	if cols == 0 || rows == 0 {
		return
	}
	select {
	case q.ch <- remotecommand.TerminalSize{Width: cols, Height: rows}:
	case <-q.ctx.Done():
	}
}

func (q *sizeQueue) Next() *remotecommand.TerminalSize {
	select {
	case s := <-q.ch:
		return &s
	case <-q.ctx.Done():
		return nil
	}
}

// dataWriter sends terminal output as it comes, holding back a UTF-8 sequence cut at the end of a write.
type dataWriter struct {
	send  func(string) error
	carry []byte
}

func (d *dataWriter) Write(p []byte) (int, error) {
	buf := append(d.carry, p...)
	cut := incompleteRune(buf)
	if len(buf)-cut > 0 {
		if err := d.send(string(buf[:len(buf)-cut])); err != nil {
			return 0, err
		}
	}
	d.carry = append([]byte(nil), buf[len(buf)-cut:]...)
	return len(p), nil
}
