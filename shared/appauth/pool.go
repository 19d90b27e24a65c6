package appauth

import "sync"

// BufferPool lends httputil.ReverseProxy its copy buffers: without one it allocates 32 KiB for every
// response it copies, which on the app path (every page, every asset) was most of app-auth's garbage.
type BufferPool struct{ p sync.Pool }

// Get implements httputil.BufferPool.
func (b *BufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

// Put implements httputil.BufferPool.
func (b *BufferPool) Put(buf []byte) { b.p.Put(&buf) }
