package senderauth

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// lruCache is a least-recently-used map whose entries expire: the DNS
// answer cache and the result caches of a Checker.
type lruCache[K comparable, V any] struct {
	mu      sync.Mutex
	max     int
	entries map[K]*list.Element
	order   *list.List // front: most recently used
	now     func() time.Time
}

type lruEntry[K comparable, V any] struct {
	key     K
	v       V
	expires time.Time
}

func newLRUCache[K comparable, V any](maxEntries int) *lruCache[K, V] {
	return &lruCache[K, V]{max: maxEntries, entries: make(map[K]*list.Element), order: list.New(), now: time.Now}
}

// get returns a live entry and when it expires.
func (c *lruCache[K, V]) get(key K) (V, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.entries[key]
	if !ok {
		return zero, time.Time{}, false
	}
	e := el.Value.(*lruEntry[K, V])
	if !c.now().Before(e.expires) {
		c.order.Remove(el)
		delete(c.entries, key)
		return zero, time.Time{}, false
	}
	c.order.MoveToFront(el)
	return e.v, e.expires, true
}

// put keeps v until expires; an entry already expired is not kept.
func (c *lruCache[K, V]) put(key K, v V, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.now().Before(expires) {
		return
	}
	e := &lruEntry[K, V]{key: key, v: v, expires: expires}
	if el, ok := c.entries[key]; ok {
		el.Value = e
		c.order.MoveToFront(el)
		return
	}
	c.entries[key] = c.order.PushFront(e)
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*lruEntry[K, V]).key)
	}
}

func (c *lruCache[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// expiry collects, while one check's lookups run, until when all the DNS
// answers they got hold: the earliest expiry of any of them. A result
// computed from those answers alone may be reused until then. The DNS
// resolver reports each answer it hands out (noteExpiry); a lookup that
// failed, or was not cached, makes the result not reusable at all.
type expiry struct {
	mu    sync.Mutex
	seen  bool
	until time.Time
}

type expiryKey struct{}

// trackExpiry returns a context whose lookups report to the returned
// expiry.
func trackExpiry(ctx context.Context) (context.Context, *expiry) {
	e := &expiry{}
	return context.WithValue(ctx, expiryKey{}, e), e
}

// noteExpiry tells the expiry tracked by ctx, if any, that an answer used
// holds until t (a zero t: the answer may not be reused).
func noteExpiry(ctx context.Context, t time.Time) {
	e, ok := ctx.Value(expiryKey{}).(*expiry)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.seen || t.Before(e.until) {
		e.until = t
	}
	e.seen = true
}

// validUntil is when a result built from the noted answers expires: the
// earliest noted expiry, or, when no DNS answer was involved (the result
// follows from the inputs alone), the longest time any answer is cached.
func (e *expiry) validUntil(now time.Time) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.seen {
		return now.Add(maxPositiveTTL)
	}
	return e.until
}

// expiryReporter is a Resolver that reports the expiry of its answers to
// trackExpiry's contexts. Result caches are used only with one.
type expiryReporter interface {
	reportsExpiry() bool
}
