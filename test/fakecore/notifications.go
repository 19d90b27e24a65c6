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
)

// notifications serves /api/accounting/notifications as core2 does for projects: the first message is the
// provider's auth record (u8 0, s64 replay-from ms, u64 flags, string access token); a bad one closes the
// connection. Then, as core2's session does, only for projects with an active wallet at this provider
// (GrantWallet): the wallets that became active after replay-from, then the projects changed after it
// (strictly, as core2's modified_at > replay-from), then each later grant and change. A project is a record
// u8 2, u32 ref (one per project for the session), s64 modified-at ms, string project JSON; a wallet is its
// category's record (u8 3, u32 ref, string JSON) once per session, the project's record when the session
// has not sent it yet, then u8 1, u32 project ref, u32 category ref, s64 quota, s64 usage, u32 flags (2: a
// project's), s64 last update ms and, with flag 1 asked for, u64 retired usage (0).
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
		ch := make(chan projectChange, 128)
		b := &c.book
		b.mu.Lock()
		b.init()
		var replay []projectChange
		for id, at := range b.walletAt {
			if at > replayFrom {
				replay = append(replay, projectChange{id: id, wallet: true})
			}
		}
		for id := range b.projects {
			if b.modified[id] > replayFrom {
				replay = append(replay, projectChange{id: id})
			}
		}
		b.watchers[ch] = true
		b.mu.Unlock()
		defer func() {
			b.mu.Lock()
			delete(b.watchers, ch)
			b.mu.Unlock()
		}()
		sort.SliceStable(replay, func(i, j int) bool { return replay[i].wallet && !replay[j].wallet })
		closed := make(chan struct{})
		go func() { // the IM may send replay-user records; the fake reads past them until the connection ends
			var ignored []byte
			for websocket.Message.Receive(conn, &ignored) == nil {
			}
			close(closed)
		}()
		s := &notifySession{c: c, retired: flags&1 != 0, refs: map[string]uint32{}}
		send := func(chs ...projectChange) bool {
			var out bytes.Buffer
			for _, ch := range chs {
				s.write(&out, ch)
			}
			return out.Len() == 0 || websocket.Message.Send(conn, out.Bytes()) == nil
		}
		if !send(replay...) {
			return
		}
		for {
			select {
			case change := <-ch:
				if !send(change) {
					return
				}
			case <-closed:
				return
			}
		}
	}}
}

// notifySession is one notification stream's state: the refs of the projects it sent, and whether it sent
// its one category (ref categoryRef).
type notifySession struct {
	c            *Core
	retired      bool
	refs         map[string]uint32
	categorySent bool
}

// categoryRef is the ref of the one product category the fake's wallets pay for.
const categoryRef uint32 = 0

// write appends the records of one change to out; nothing for a project without an active wallet here.
func (s *notifySession) write(out *bytes.Buffer, ch projectChange) {
	b := &s.c.book
	b.mu.Lock()
	p, known := b.projects[ch.id]
	modified, walletAt := b.modified[ch.id], b.walletAt[ch.id]
	b.mu.Unlock()
	if !known || walletAt == 0 {
		return
	}
	ref, sent := s.refs[ch.id]
	if !sent {
		ref = uint32(len(s.refs))
		s.refs[ch.id] = ref
	}
	if !ch.wallet || !sent {
		raw, _ := json.Marshal(p)
		out.WriteByte(2)
		_ = binary.Write(out, binary.BigEndian, ref)
		_ = binary.Write(out, binary.BigEndian, modified)
		writeString(out, raw)
	}
	if !ch.wallet {
		return
	}
	if !s.categorySent {
		s.categorySent = true
		raw, _ := json.Marshal(map[string]any{"name": "cpu", "provider": s.c.o.ProviderID, "productType": "COMPUTE"})
		out.WriteByte(3)
		_ = binary.Write(out, binary.BigEndian, categoryRef)
		writeString(out, raw)
	}
	out.WriteByte(1)
	_ = binary.Write(out, binary.BigEndian, struct {
		Workspace, Category uint32
		Quota, Usage        int64
		Flags               uint32
		LastUpdate          int64
	}{ref, categoryRef, 1_000_000, 0, 2, walletAt})
	if s.retired {
		_ = binary.Write(out, binary.BigEndian, uint64(0))
	}
}

func writeString(out *bytes.Buffer, raw []byte) {
	_ = binary.Write(out, binary.BigEndian, uint32(len(raw)))
	out.Write(raw)
}

// validAccessToken is a provider access token this fake issued, unexpired (what authed checks).
func (c *Core) validAccessToken(tok string) bool {
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired()).
		ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return &c.o.Key.PublicKey, nil })
	return err == nil && claims["role"] == accessRole
}
