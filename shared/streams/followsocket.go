package streams

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ucloud-im/knative-im/shared/coreauth"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/metrics"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

const (
	// followFrameMax bounds Core's one follow frame, which carries the whole job (see jobs.JobCallMaxBody).
	followFrameMax = 8 << 20
	// laterFrameMax bounds what Core may send after it (a cancel).
	laterFrameMax = 4 << 10
	// firstFrameWait is how long Core has to send its follow frame after the upgrade.
	firstFrameWait = 30 * time.Second
	// writeWait bounds one frame's write: a peer that reads nothing does not hold the stream forever.
	writeWait = 10 * time.Second
)

// FollowSocket serves Core's log follow: GET /ucloud/jobs.provider.<P>/websocket with Core's token, upgraded
// only once the token is valid, then exactly one frame {"call":"jobs.provider.<P>.follow","payload":
// {"type":"init","job":{...}}}; every rank's output comes back as message frames, a keep-alive every
// KeepAlive, and a response frame when the job ends (or Core cancels), after which the socket is closed.
type FollowSocket struct {
	Provider  string
	Verifier  *coreauth.Verifier
	Follower  *Follower
	KeepAlive time.Duration
	// Metrics, when set, counts the open follows.
	Metrics *metrics.Sessions
}

func (h *FollowSocket) call() string { return "jobs.provider." + h.Provider + ".follow" }

func (h *FollowSocket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, err := h.Verifier.VerifyHeader(r.Header.Get("Authorization")); err != nil {
		fn.WriteError(w, r, err)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		fn.WriteError(w, r, notWebSocket())
		return
	}
	// Core is no browser and proved itself with its token, so the Origin (none) is not checked.
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	conn, err := up.Upgrade(w, r, http.Header{"ucloud-no-bearer": {"true"}})
	if err != nil {
		return // the upgrader answered the client
	}
	defer conn.Close()
	defer h.Metrics.Open("follow")()
	log := fn.Log(r.Context())

	conn.SetReadLimit(followFrameMax)
	_ = conn.SetReadDeadline(time.Now().Add(firstFrameWait))
	var req request
	var payload followPayload
	var job ucloud.Job
	if err := conn.ReadJSON(&req); err != nil {
		log.Info("follow: no valid first frame", "err", err.Error())
		return
	}
	if req.Call != h.call() || json.Unmarshal(req.Payload, &payload) != nil || payload.Type != "init" ||
		json.Unmarshal(payload.Job, &job) != nil || !validJobID(job.ID) {
		closeWith(conn, websocket.ClosePolicyViolation, "expected "+h.call()+" init with a job")
		return
	}
	fn.WithJobID(r.Context(), job.ID)
	_ = conn.SetReadDeadline(time.Time{})
	conn.SetReadLimit(laterFrameMax)
	session := randomID(16)

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	followCtx, cancelFollow := context.WithCancel(ctx)
	defer cancelFollow()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // runs before wg.Wait: the goroutines end with the context

	// Reader: Core leaving (or any read error) ends everything; a cancel of this session ends the follow.
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		for {
			var later request
			if err := conn.ReadJSON(&later); err != nil {
				return
			}
			var p followPayload
			if json.Unmarshal(later.Payload, &p) == nil && p.Type == "cancel" && p.StreamID == session {
				cancelFollow()
			}
		}
	}()

	out := make(chan []byte, 64)
	done := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		done <- h.Follower.Follow(followCtx, job.ID, func(rank int, data string) error {
			frame, err := json.Marshal(reply{Type: "message", StreamID: req.StreamID,
				Payload: LogMessage{StreamID: session, Rank: rank, Stdout: &data}})
			if err != nil {
				return err
			}
			select {
			case out <- frame:
				return nil
			case <-followCtx.Done():
				return followCtx.Err()
			}
		})
	}()

	ping := time.NewTicker(h.KeepAlive)
	defer ping.Stop()
	write := func(frame []byte) bool {
		_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
		return conn.WriteMessage(websocket.TextMessage, frame) == nil
	}
	for {
		select {
		case frame := <-out:
			if !write(frame) {
				return
			}
		case <-ping.C:
			if !write(keepAlive) {
				return
			}
		case err := <-done:
			// What the ranks sent before the end is in out: deliver it first.
			for len(out) > 0 {
				if !write(<-out) {
					return
				}
			}
			if ctx.Err() != nil {
				return // Core left: nobody to answer
			}
			if err != nil && followCtx.Err() == nil {
				log.Warn("follow ended with an error", "err", err.Error())
			}
			end, _ := json.Marshal(reply{Type: "response", StreamID: req.StreamID, Status: http.StatusOK,
				Payload: LogMessage{StreamID: session}})
			if write(end) {
				closeWith(conn, websocket.CloseNormalClosure, "job ended")
			}
			return
		case <-ctx.Done():
			return
		}
	}
}

// notWebSocket answers a plain request to a socket's path in UCloud's error shape.
func notWebSocket() error {
	return fn.Errorf(http.StatusBadRequest, "NOT_A_WEBSOCKET", "This path serves a WebSocket only.")
}

func closeWith(conn *websocket.Conn, code int, text string) {
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
}

// randomID is n random bytes in hex.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// validJobID is what a Core job id looks like (digits in core2; letters allowed), short enough for the
// pod names derived from it.
func validJobID(id string) bool {
	if id == "" || len(id) > 40 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
