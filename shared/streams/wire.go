// Package streams serves UCloud's WebSocket streams of a job: Core's log follow
// (/ucloud/jobs.provider.<P>/websocket, jobs.provider.<P>.follow) and the browser's shell sessions
// (/ucloud/<P>/websocket). The frames are UCloud's WebSocket RPC envelope, as core2 and the web client
// speak it (see ../shared/reference/ucloud-streams.md).
package streams

import "encoding/json"

// request is one frame a client sends: UCloud's WebSocket RPC envelope.
type request struct {
	Call     string          `json:"call"`
	StreamID string          `json:"streamId"`
	Payload  json.RawMessage `json:"payload"`
}

// reply is one frame the provider sends: a message on a stream, or the response that ends it.
type reply struct {
	Type     string `json:"type"`
	StreamID string `json:"streamId"`
	Status   int    `json:"status,omitempty"`
	Payload  any    `json:"payload"`
}

// LogMessage is one piece of a rank's output as Core forwards it to the browser (core2's JobLogMessage,
// which Core reads from every frame's payload).
type LogMessage struct {
	StreamID string  `json:"streamId"`
	Rank     int     `json:"rank"`
	Stdout   *string `json:"stdout"`
	Stderr   *string `json:"stderr"`
	Channel  *string `json:"channel"`
}

// followPayload is the payload of Core's one follow frame.
type followPayload struct {
	Type     string          `json:"type"`
	Job      json.RawMessage `json:"job"`
	StreamID string          `json:"streamId"`
}

// keepAlive is the original's keep-alive frame, sent without an envelope.
var keepAlive = []byte(`{"ping":"pong"}`)
