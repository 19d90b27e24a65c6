package fakecore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strconv"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Shell is the browser's side of a shell session, as UCloud's web client (Shell.tsx) speaks it: every frame
// with call jobs.compute.<P>.shell.open, streamIds numbered from 0, no bearer.
type Shell struct {
	Conn     *websocket.Conn
	provider string
	mu       sync.Mutex
	next     int
}

// ShellFrame is one frame the provider sent on a shell socket.
type ShellFrame struct {
	Type     string `json:"type"`
	StreamID string `json:"streamId"`
	Payload  struct {
		Type string `json:"type"`
		Data string `json:"data"`
	} `json:"payload"`
}

// OpenShell connects to the socket of a session Core handed out (domainOverride + sessionIdentifier),
// at <domainOverride>/ucloud/<P>/websocket?session=...&usernameHint=..., as the web client does.
func OpenShell(ctx context.Context, s ucloud.OpenSession, provider, username string) (*Shell, error) {
	u := s.DomainOverride + "/ucloud/" + provider + "/websocket?session=" + url.QueryEscape(s.SessionIdentifier) +
		"&usernameHint=" + base64.StdEncoding.EncodeToString([]byte(username))
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
	if err != nil {
		return nil, err
	}
	return &Shell{Conn: conn, provider: provider}, nil
}

// Send sends one frame with the payload and returns its streamId.
func (s *Shell) Send(payload map[string]any) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := strconv.Itoa(s.next)
	s.next++
	return id, s.Conn.WriteJSON(map[string]any{"call": "jobs.compute." + s.provider + ".shell.open", "streamId": id, "payload": payload})
}

// Initialize sends the first frame.
func (s *Shell) Initialize(session string, cols, rows int) (string, error) {
	return s.Send(map[string]any{"type": "initialize", "sessionIdentifier": session, "cols": cols, "rows": rows})
}

// Input types data.
func (s *Shell) Input(data string) (string, error) {
	return s.Send(map[string]any{"type": "input", "data": data})
}

// Resize tells the terminal's new size.
func (s *Shell) Resize(cols, rows int) (string, error) {
	return s.Send(map[string]any{"type": "resize", "cols": cols, "rows": rows})
}

// Next reads the next frame.
func (s *Shell) Next() (ShellFrame, error) {
	var f ShellFrame
	_, raw, err := s.Conn.ReadMessage()
	if err != nil {
		return f, err
	}
	return f, json.Unmarshal(raw, &f)
}

// Close leaves.
func (s *Shell) Close() error { return s.Conn.Close() }
