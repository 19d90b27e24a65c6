package fakecore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// FollowFrame is one frame the provider sent on a follow socket, decoded as core2 decodes it (it reads
// every frame's payload as a JobLogMessage) with the envelope's type and status kept for the tests.
type FollowFrame struct {
	Type     string `json:"type"`
	StreamID string `json:"streamId"`
	Status   int    `json:"status"`
	Ping     string `json:"ping"`
	Payload  struct {
		StreamID string  `json:"streamId"`
		Rank     int     `json:"rank"`
		Stdout   *string `json:"stdout"`
		Stderr   *string `json:"stderr"`
		Channel  *string `json:"channel"`
	} `json:"payload"`
}

// Follow is Core's side of a log follow socket.
type Follow struct {
	Conn *websocket.Conn
	// Header is the provider's answer to the upgrade.
	Header http.Header
}

// FollowURL is the provider's follow socket, as core2 computes it from the provider's base URL.
func FollowURL(baseURL, provider, username string) string {
	u := strings.Replace(strings.Replace(baseURL, "https://", "wss://", 1), "http://", "ws://", 1)
	return u + "/ucloud/jobs.provider." + provider + "/websocket?usernameHint=" + base64.URLEncoding.EncodeToString([]byte(username))
}

// Follow opens a follow socket with Core's token and sends core2's one frame for job. The HTTP answer is
// returned with the error when the upgrade is refused.
func (c *Core) Follow(ctx context.Context, baseURL, provider string, job ucloud.Job) (*Follow, *http.Response, error) {
	return c.FollowWith(ctx, baseURL, provider, "jobs.provider."+provider+".follow", job, http.Header{"Authorization": {"Bearer " + c.Token()}})
}

// FollowWith is Follow with another call name and headers (an attacker's).
func (c *Core) FollowWith(ctx context.Context, baseURL, provider, call string, job ucloud.Job, header http.Header) (*Follow, *http.Response, error) {
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, FollowURL(baseURL, provider, "alice#1234"), header)
	if err != nil {
		return nil, resp, err
	}
	frame := map[string]any{"call": call, "streamId": "ignored", "bearer": "", "project": nil,
		"payload": map[string]any{"type": "init", "job": job}}
	if err := conn.WriteJSON(frame); err != nil {
		conn.Close()
		return nil, resp, err
	}
	return &Follow{Conn: conn, Header: resp.Header}, resp, nil
}

// Next reads the next frame.
func (f *Follow) Next() (FollowFrame, error) {
	var fr FollowFrame
	_, raw, err := f.Conn.ReadMessage()
	if err != nil {
		return fr, err
	}
	if err := json.Unmarshal(raw, &fr); err != nil {
		return fr, fmt.Errorf("frame %s: %w", raw, err)
	}
	return fr, nil
}

// Cancel sends the original's cancel frame for a follow session.
func (f *Follow) Cancel(provider, session string) error {
	return f.Conn.WriteJSON(map[string]any{"call": "jobs.provider." + provider + ".follow", "streamId": "ignored",
		"payload": map[string]any{"type": "cancel", "streamId": session}})
}

// Close leaves the socket as Core does when its browser leaves.
func (f *Follow) Close() error { return f.Conn.Close() }
