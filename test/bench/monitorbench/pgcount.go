package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
)

// pgCounter is a loopback TCP proxy in front of PostgreSQL that counts the database round trips of the
// clients connected through it: every Sync (the end of an extended-protocol query, as pgx sends them) and
// every simple Query message is one request the client then waits on.
type pgCounter struct {
	ln       net.Listener
	upstream string
	trips    atomic.Int64
}

// newPGCounter listens on a free loopback port in front of the server databaseURL names.
func newPGCounter(databaseURL string) (*pgCounter, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &pgCounter{ln: ln, upstream: u.Host}
	go c.serve()
	return c, nil
}

// route is databaseVar ("DATABASE_URL=...") pointed at the proxy.
func (c *pgCounter) route(databaseVar string) (string, error) {
	name, raw, _ := strings.Cut(databaseVar, "=")
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	u.Host = c.ln.Addr().String()
	return name + "=" + u.String(), nil
}

func (c *pgCounter) Close() { c.ln.Close() }

func (c *pgCounter) serve() {
	for {
		client, err := c.ln.Accept()
		if err != nil {
			return
		}
		go c.relay(client)
	}
}

func (c *pgCounter) relay(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", c.upstream)
	if err != nil {
		return
	}
	defer server.Close()
	go func() { _, _ = io.Copy(client, server); client.Close() }()
	_ = c.forward(bufio.NewWriter(server), bufio.NewReader(client))
}

// forward copies the client's messages to the server, counting round trips. The first messages have no
// type byte (an SSL or GSS encryption request, answered with one byte, then the start-up message).
// Writes are flushed whenever the client has sent nothing more, so they reach the server as the client
// batched them.
func (c *pgCounter) forward(dst *bufio.Writer, src *bufio.Reader) error {
	const sslRequest, gssRequest = 80877103, 80877104
	for {
		head := make([]byte, 8)
		if _, err := io.ReadFull(src, head); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(head[:4])
		if n < 8 {
			return fmt.Errorf("start-up message of %d bytes", n)
		}
		body := make([]byte, n-8)
		if _, err := io.ReadFull(src, body); err != nil {
			return err
		}
		if _, err := dst.Write(append(head, body...)); err != nil {
			return err
		}
		if err := dst.Flush(); err != nil {
			return err
		}
		if code := binary.BigEndian.Uint32(head[4:]); code != sslRequest && code != gssRequest {
			break
		}
	}
	head := make([]byte, 5)
	for {
		if _, err := io.ReadFull(src, head); err != nil {
			return err
		}
		if head[0] == 'S' || head[0] == 'Q' {
			c.trips.Add(1)
		}
		if _, err := dst.Write(head); err != nil {
			return err
		}
		n := int64(binary.BigEndian.Uint32(head[1:])) - 4
		if n < 0 {
			return fmt.Errorf("message of negative length")
		}
		if _, err := io.CopyN(dst, src, n); err != nil {
			return err
		}
		if src.Buffered() == 0 {
			if err := dst.Flush(); err != nil {
				return err
			}
		}
	}
}
