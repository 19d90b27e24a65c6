package iapps

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// NotifyChannel is where the iapp_config trigger announces changes.
const NotifyChannel = "iapp_config"

// Cache keeps retrieve answers in memory. It is trusted only while its LISTEN connection is up: each
// committed change arrives as a notification and drops that key; when the connection is lost the whole
// cache is dropped and bypassed until listening again.
type Cache struct {
	mu        sync.Mutex
	entries   map[Key]Retrieved
	listening bool
	epoch     uint64
	log       *slog.Logger
}

// Retrieved is a configuration as retrieve answers it.
type Retrieved struct {
	ETag   string          `json:"etag"`
	Config json.RawMessage `json:"config"`
}

// NewCache makes an empty cache; it serves nothing until Run listens.
func NewCache(log *slog.Logger) *Cache {
	return &Cache{entries: map[Key]Retrieved{}, log: log}
}

// Get answers from the cache when it is trusted and holds key.
func (c *Cache) Get(key Key) (Retrieved, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.listening {
		return Retrieved{}, false
	}
	r, ok := c.entries[key]
	return r, ok
}

// Ticket is taken before reading the database; Put stores only if no notification arrived since, so a
// value read before a change can never be cached after the change's notification.
type Ticket struct {
	epoch uint64
	ok    bool
}

// Begin takes a ticket.
func (c *Cache) Begin() Ticket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Ticket{epoch: c.epoch, ok: c.listening}
}

// Put caches r for key if t is still current.
func (c *Cache) Put(t Ticket, key Key, r Retrieved) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.ok && c.listening && t.epoch == c.epoch {
		c.entries[key] = r
	}
}

func (c *Cache) invalidate(key *Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if key == nil {
		clear(c.entries)
		return
	}
	delete(c.entries, *key)
}

func (c *Cache) setListening(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listening = on
	c.epoch++
	clear(c.entries)
}

// Listening reports whether the cache is in use (for readiness and tests).
func (c *Cache) Listening() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.listening
}

// Run listens for changes on its own connection until ctx ends, reconnecting with backoff.
func (c *Cache) Run(ctx context.Context, databaseURL string) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := c.listen(ctx, databaseURL)
		c.setListening(false)
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("configuration cache: lost its notification connection; cache dropped", "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (c *Cache) listen(ctx context.Context, databaseURL string) error {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return err
	}
	c.setListening(true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var parts [3]string
		if json.Unmarshal([]byte(n.Payload), &parts) != nil {
			c.invalidate(nil) // an unreadable notice: drop everything rather than guess
			continue
		}
		c.invalidate(&Key{App: parts[0], CreatedBy: parts[1], Project: parts[2]})
	}
}
