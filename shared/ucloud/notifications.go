package ucloud

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/net/websocket"
)

// The opcodes of Core's provider notification stream (core2 accounting/provider_notifications.go). Frames
// are big-endian; a string is a u32 length and its bytes; one WebSocket message may hold many records.
const (
	notifyAuth     = 0
	notifyWallet   = 1
	notifyProject  = 2
	notifyCategory = 3
	notifyUser     = 4
	// notifyFlagRetired asks for the wallet records' trailing retired-usage u64, as the original IM does.
	notifyFlagRetired = 1
)

// ProjectHandler receives one project of the stream and the time Core last changed it (ms).
type ProjectHandler func(ctx context.Context, p Project, modifiedAt int64) error

// ProjectNotifications connects to Core's provider notification stream (/api/accounting/notifications,
// the one the original IM reads projects from), asks for everything changed since replayFromMs, and calls
// handle for every project Core sends (on a change of its members, roles or groups) until ctx ends or the
// connection does. Wallets, users and categories are read past.
func (c *Client) ProjectNotifications(ctx context.Context, replayFromMs int64, handle ProjectHandler) error {
	tok, err := c.accessToken(ctx)
	if err != nil {
		return err
	}
	u := strings.Replace(strings.Replace(c.o.BaseURL, "https://", "wss://", 1), "http://", "ws://", 1) + "/api/accounting/notifications"
	cfg, err := websocket.NewConfig(u, c.o.BaseURL)
	if err != nil {
		return fmt.Errorf("UCloud/Core notifications: %w", err)
	}
	conn, err := cfg.DialContext(ctx)
	if err != nil {
		return fmt.Errorf("UCloud/Core notifications: %w: %w", ErrUnavailable, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var auth bytes.Buffer
	auth.WriteByte(notifyAuth)
	_ = binary.Write(&auth, binary.BigEndian, replayFromMs)
	_ = binary.Write(&auth, binary.BigEndian, uint64(notifyFlagRetired))
	writeString(&auth, tok)
	if err := websocket.Message.Send(conn, auth.Bytes()); err != nil {
		return fmt.Errorf("UCloud/Core notifications: authenticate: %w", err)
	}
	for {
		var msg []byte
		if err := websocket.Message.Receive(conn, &msg); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("UCloud/Core notifications: %w: %w", ErrUnavailable, err)
		}
		if err := readNotifications(ctx, msg, handle); err != nil {
			return err
		}
	}
}

// readNotifications walks the records of one message.
func readNotifications(ctx context.Context, msg []byte, handle ProjectHandler) error {
	r := bytes.NewReader(msg)
	for r.Len() > 0 {
		op, _ := r.ReadByte()
		var err error
		switch op {
		case notifyUser, notifyCategory:
			var ref uint32
			err = errors.Join(binary.Read(r, binary.BigEndian, &ref), skipString(r))
		case notifyProject:
			var ref uint32
			var modified int64
			var raw string
			err = errors.Join(binary.Read(r, binary.BigEndian, &ref), binary.Read(r, binary.BigEndian, &modified))
			if err == nil {
				if raw, err = readString(r); err == nil {
					var p Project
					if err = json.Unmarshal([]byte(raw), &p); err == nil && p.ID != "" {
						err = handle(ctx, p, modified)
						if err != nil {
							return err
						}
					}
				}
			}
		case notifyWallet:
			// workspace u32, category u32, quota s64, usage s64, flags u32, last update s64, retired u64
			var w struct {
				Workspace, Category uint32
				Quota, Usage        int64
				Flags               uint32
				LastUpdate          int64
				Retired             uint64
			}
			err = binary.Read(r, binary.BigEndian, &w)
		default:
			return fmt.Errorf("UCloud/Core notifications: unknown record %d", op)
		}
		if err != nil {
			return fmt.Errorf("UCloud/Core notifications: record %d: %w", op, err)
		}
	}
	return nil
}

func writeString(b *bytes.Buffer, s string) {
	_ = binary.Write(b, binary.BigEndian, uint32(len(s)))
	b.WriteString(s)
}

func readString(r *bytes.Reader) (string, error) {
	var n uint32
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return "", err
	}
	if int64(n) > int64(r.Len()) {
		return "", io.ErrUnexpectedEOF
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return string(b), err
}

func skipString(r *bytes.Reader) error {
	_, err := readString(r)
	return err
}
