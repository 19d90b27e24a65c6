package fakecore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/net/websocket"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// notifications serves /api/accounting/notifications as core2 does for projects: the first message is the
// provider's auth record (u8 0, s64 replay-from ms, u64 flags, string access token); a bad one closes the
// connection; then every project changed since replay-from, and each later change (PutProject), each as
// a record u8 2, u32 ref, s64 modified-at ms, string project JSON. The fake holds no wallets: core2 sends
// only projects with an active wallet at the provider, the fake sends every project it holds.
func (c *Core) notifications() http.Handler {
	return websocket.Server{Handler: func(conn *websocket.Conn) {
		defer conn.Close()
		var auth []byte
		if err := websocket.Message.Receive(conn, &auth); err != nil {
			return
		}
		r := bytes.NewReader(auth)
		op, _ := r.ReadByte()
		var replayFrom int64
		var flags uint64
		var n uint32
		err := errors.Join(binary.Read(r, binary.BigEndian, &replayFrom), binary.Read(r, binary.BigEndian, &flags), binary.Read(r, binary.BigEndian, &n))
		tok := make([]byte, min(int(n), r.Len()))
		_, _ = io.ReadFull(r, tok)
		if op != 0 || err != nil || int(n) != len(tok) || r.Len() != 0 || !c.validAccessToken(string(tok)) {
			c.violation(conn.Request(), "bad auth record on the notification stream")
			return
		}
		ch := make(chan ucloud.Project, 128)
		b := &c.book
		b.mu.Lock()
		b.init()
		var replay []ucloud.Project
		for id, p := range b.projects {
			if b.modified[id] >= replayFrom {
				replay = append(replay, p)
			}
		}
		b.watchers[ch] = true
		b.mu.Unlock()
		defer func() {
			b.mu.Lock()
			delete(b.watchers, ch)
			b.mu.Unlock()
		}()
		sort.Slice(replay, func(i, j int) bool { return replay[i].ID < replay[j].ID })
		closed := make(chan struct{})
		go func() { // the IM may send replay-user records; the fake reads past them until the connection ends
			var ignored []byte
			for websocket.Message.Receive(conn, &ignored) == nil {
			}
			close(closed)
		}()
		ref := uint32(0)
		send := func(ps ...ucloud.Project) bool {
			var out bytes.Buffer
			for _, p := range ps {
				raw, _ := json.Marshal(p)
				b.mu.Lock()
				mod := b.modified[p.ID]
				b.mu.Unlock()
				out.WriteByte(2)
				_ = binary.Write(&out, binary.BigEndian, ref)
				_ = binary.Write(&out, binary.BigEndian, mod)
				_ = binary.Write(&out, binary.BigEndian, uint32(len(raw)))
				out.Write(raw)
				ref++
			}
			return out.Len() == 0 || websocket.Message.Send(conn, out.Bytes()) == nil
		}
		if !send(replay...) {
			return
		}
		for {
			select {
			case p := <-ch:
				if !send(p) {
					return
				}
			case <-closed:
				return
			}
		}
	}}
}

// validAccessToken is a provider access token this fake issued, unexpired (what authed checks).
func (c *Core) validAccessToken(tok string) bool {
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired()).
		ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return &c.o.Key.PublicKey, nil })
	return err == nil && claims["role"] == accessRole
}
