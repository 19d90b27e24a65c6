package iapps

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/utils/lru"

	"github.com/ucloud-im/knative-im/shared/metrics"
)

// NotifyChannel is where the iapp_config trigger announces changes.
const NotifyChannel = "iapp_config"

// Cache keeps retrieve answers in memory. It is trusted only while its LISTEN connection is up: each
// committed change arrives as a notification and drops that key; when the connection is lost the whole
// cache is dropped and bypassed until listening again. It holds at most its limit in bytes of
// configurations: the least recently used go first.
type Cache struct {
	mu        sync.Mutex
	entries   *lru.Cache // Key -> Retrieved; its eviction callback runs under mu (every call into it does)
	bytes     int64
	limit     int64
	listening bool
	epoch     uint64
	log       *slog.Logger
	// Metrics, when set, counts hits, misses and invalidations.
	Metrics *metrics.Cache
}

// DefaultCacheBytes is the default bound of a cache: an eighth of config-retrieve's memory limit.
const DefaultCacheBytes = 32 << 20

// entryOverhead approximates what an entry costs beyond its strings (list element, map slot, headers).
const entryOverhead = 200

func entrySize(k Key, r Retrieved) int64 {
	return int64(len(k.App) + len(k.CreatedBy) + len(k.Project) + len(r.ETag) + len(r.Config) + entryOverhead)
}

// Retrieved is a configuration as retrieve answers it.
type Retrieved struct {
	ETag   string          `json:"etag"`
	Config json.RawMessage `json:"config"`
}

// NewCache makes an empty cache bounded to limitBytes (DefaultCacheBytes when 0 or less); it serves
// nothing until Run listens.
func NewCache(log *slog.Logger, limitBytes int64) *Cache {
	if limitBytes <= 0 {
		limitBytes = DefaultCacheBytes
	}
	c := &Cache{log: log, limit: limitBytes}
	// Size 0 is no bound on the count: the bound is in bytes, kept by Put.
	c.entries = lru.NewWithEvictionFunc(0, func(k lru.Key, v any) {
		c.bytes -= entrySize(k.(Key), v.(Retrieved))
	})
	return c
}

// Len and Bytes are the cache's size (for tests and metrics).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries.Len()
}

// Bytes is the cache's approximate size in bytes.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Get answers from the cache when it is trusted and holds key.
func (c *Cache) Get(key Key) (Retrieved, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.listening {
		c.Metrics.Miss()
		return Retrieved{}, false
	}
	v, ok := c.entries.Get(key)
	if !ok {
		c.Metrics.Miss()
		return Retrieved{}, false
	}
	c.Metrics.Hit()
	return v.(Retrieved), true
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
	if !t.ok || !c.listening || t.epoch != c.epoch {
		return
	}
	size := entrySize(key, r)
	if size > c.limit {
		return // larger than the whole cache: served from the database every time
	}
	c.entries.Remove(key) // a replaced entry's bytes are subtracted by the eviction callback
	c.entries.Add(key, r)
	c.bytes += size
	for c.bytes > c.limit {
		c.entries.RemoveOldest()
	}
}

func (c *Cache) invalidate(key *Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if key == nil {
		c.Metrics.Invalidated("all")
		c.entries.Clear()
		return
	}
	c.Metrics.Invalidated("change")
	c.entries.Remove(*key)
}

func (c *Cache) setListening(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.listening && !on {
		c.Metrics.Invalidated("lost")
	}
	c.listening = on
	c.epoch++
	c.entries.Clear()
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
