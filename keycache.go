package apiguard

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// CachedKeyStore puts a bounded LRU cache in front of a slow KeyStore (a
// database, a remote service). It caches found clients for a TTL and unknown
// keys for a shorter negative TTL, keyed by the key's SHA-256 digest (the
// plaintext is never held). Backend failures are not cached. Secrets is not
// cached.
//
// A key revoked in the backing store keeps working from the cache until its
// entry expires; call Forget with its key id after a revocation to stop it
// at once, or Purge to drop everything.
//
// It starts no goroutine: entries expire when read, and the LRU bound
// (WithCapacity) caps memory. It is safe for concurrent use. The zero
// CachedKeyStore is not usable; make one with NewCachedKeyStore.
type CachedKeyStore struct {
	next     KeyStore
	cache    *lru.Cache[[sha256.Size]byte, cacheEntry]
	ttl, neg time.Duration
	now      func() time.Time
	capacity int // the most entries cache holds
}

type cacheEntry struct {
	client  *Client // nil: a cached miss
	expires time.Time
}

// defaultCacheCapacity is the capacity of a CachedKeyStore unless
// WithCapacity says otherwise.
const defaultCacheCapacity = 10_000

// NewCachedKeyStore returns a CachedKeyStore over next. Its options are
// WithCapacity (the most entries it holds, 10,000 by default; the least
// recently used goes first), WithCacheTTL (30 seconds for found clients and
// 5 seconds for unknown keys by default) and WithClock (time.Now by
// default). It fails if next is nil, or if an option is out of range or
// does not apply to it.
func NewCachedKeyStore(next KeyStore, opts ...Option) (*CachedKeyStore, error) {
	if err := checkKeyStore("NewCachedKeyStore", next); err != nil {
		return nil, err
	}
	cfg, err := configure(toKeyCache, opts)
	if err != nil {
		return nil, err
	}
	c := &CachedKeyStore{next: next, ttl: 30 * time.Second, neg: 5 * time.Second, now: cfg.clock()}
	if cfg.ttlSet {
		c.ttl, c.neg = cfg.ttl, cfg.negTTL
	}
	// The capacity is at least 1 (WithCapacity), so New cannot fail.
	c.capacity = cfg.capacityOr(defaultCacheCapacity)
	c.cache, _ = lru.New[[sha256.Size]byte, cacheEntry](c.capacity)
	return c, nil
}

// Lookup implements KeyStore.
func (c *CachedKeyStore) Lookup(ctx context.Context, key string) (*Client, error) {
	d := digestKey(key)
	now := c.now()
	if e, ok := c.cache.Get(d); ok && now.Before(e.expires) {
		if e.client == nil {
			return nil, ErrInvalidKey
		}
		return e.client, nil
	}
	client, err := c.next.Lookup(ctx, key)
	switch {
	case err == nil:
		c.cache.Add(d, cacheEntry{client, now.Add(c.ttl)})
	case errors.Is(err, ErrInvalidKey) && c.neg > 0:
		c.cache.Add(d, cacheEntry{nil, now.Add(c.neg)})
	}
	return client, err
}

// Secrets implements KeyStore by asking the backing store.
func (c *CachedKeyStore) Secrets(ctx context.Context, clientID string) ([]Secret, error) {
	return c.next.Secrets(ctx, clientID)
}

// Forget drops every cached entry of the key with id keyID (the
// Client.KeyID the backing store gave), so that a revocation in the
// backing store takes effect at once: call it after the revocation. It
// looks at every entry, so it takes time in proportion to the capacity;
// cached unknown keys are left alone.
func (c *CachedKeyStore) Forget(keyID string) {
	for _, k := range c.cache.Keys() {
		if e, ok := c.cache.Peek(k); ok && e.client != nil && e.client.KeyID == keyID {
			c.cache.Remove(k)
		}
	}
}

// Purge drops every cached entry, found clients and unknown keys alike:
// after a key is added, or many revoked, in the backing store.
func (c *CachedKeyStore) Purge() { c.cache.Purge() }

// len returns the number of cached entries.
func (c *CachedKeyStore) len() int { return c.cache.Len() }

var _ KeyStore = (*CachedKeyStore)(nil)
