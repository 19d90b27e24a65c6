package iapps

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/ucloud-im/knative-im/shared/fn"
)

// The cache's bound and its order, without a database: setListening stands in for the LISTEN connection
// (TestCacheIsDroppedOnChangeAndOnLostConnection covers the real one).
func TestCacheKeepsItsBoundLeastRecentlyUsedOut(t *testing.T) {
	entry := func(i int) (Key, Retrieved) {
		return Key{App: "syncthing", CreatedBy: fmt.Sprintf("user%d#1234", i)},
			Retrieved{ETag: fmt.Sprintf("etag%d", i), Config: json.RawMessage(`{"folders":["` + strings.Repeat("x", 800) + `"]}`)}
	}
	k0, r0 := entry(0)
	one := entrySize(k0, r0)
	c := NewCache(fn.NewLogger(io.Discard, "test", "info"), 3*one) // room for three
	c.setListening(true)
	has := func(i int) bool { k, _ := entry(i); _, ok := c.Get(k); return ok }
	for i := range 3 {
		k, r := entry(i)
		c.Put(c.Begin(), k, r)
	}
	if !has(0) { // 0 is now the most recently used, 1 the least
		t.Fatal("entry 0 missing before the cache was full")
	}
	k3, r3 := entry(3)
	c.Put(c.Begin(), k3, r3)
	got := map[int]bool{0: has(0), 1: has(1), 2: has(2), 3: has(3)}
	if want := map[int]bool{0: true, 1: false, 2: true, 3: true}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after a fourth entry: cached %v, want %v (the least recently used out)", got, want)
	}
	if c.Len() != 3 || c.Bytes() != 3*one {
		t.Fatalf("cache holds %d entries, %d bytes; want 3, %d", c.Len(), c.Bytes(), 3*one)
	}
	// Replacing an entry does not count it twice; a notification drops it and its bytes.
	c.Put(c.Begin(), k3, r3)
	if c.Len() != 3 || c.Bytes() != 3*one {
		t.Fatalf("after replacing an entry: %d entries, %d bytes", c.Len(), c.Bytes())
	}
	c.invalidate(&k3)
	if has(3) || c.Len() != 2 || c.Bytes() != 2*one {
		t.Fatalf("after a notification for entry 3: cached %v, %d entries, %d bytes", has(3), c.Len(), c.Bytes())
	}
	// An entry larger than the whole cache is not cached, and evicts nothing.
	big := Retrieved{ETag: "big", Config: json.RawMessage(`"` + strings.Repeat("y", int(3*one)) + `"`)}
	c.Put(c.Begin(), Key{App: "terminal", CreatedBy: "big#1"}, big)
	if _, ok := c.Get(Key{App: "terminal", CreatedBy: "big#1"}); ok || c.Len() != 2 {
		t.Fatalf("an entry larger than the cache was cached (or evicted others): %d entries", c.Len())
	}
	// Losing the connection empties it.
	c.setListening(false)
	if c.Len() != 0 || c.Bytes() != 0 {
		t.Fatalf("after the connection was lost: %d entries, %d bytes", c.Len(), c.Bytes())
	}
}

// The bounded cache's hit against its anchor, a mutex-guarded map (what the cache was before it had a
// bound), on 10,000 entries, in the same run.
func BenchmarkCacheHit(b *testing.B) {
	const n = 10000
	keys := make([]Key, n)
	val := Retrieved{ETag: "e", Config: json.RawMessage(`{"devices":[],"folders":[]}`)}
	c := NewCache(fn.NewLogger(io.Discard, "bench", "info"), 0)
	c.setListening(true)
	var mu sync.Mutex
	plain := map[Key]Retrieved{}
	for i := range keys {
		keys[i] = Key{App: "syncthing", CreatedBy: fmt.Sprintf("user%d#1", i)}
		c.Put(c.Begin(), keys[i], val)
		plain[keys[i]] = val
	}
	b.Run("lru", func(b *testing.B) {
		for i := range b.N {
			if _, ok := c.Get(keys[i%n]); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("map-anchor", func(b *testing.B) {
		for i := range b.N {
			mu.Lock()
			_, ok := plain[keys[i%n]]
			mu.Unlock()
			if !ok {
				b.Fatal("miss")
			}
		}
	})
}
