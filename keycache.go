package apiguard

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
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
// entry expires; call Forget after a revocation to stop it at once.
//
// It starts no goroutine: entries expire when read, and the LRU bound caps
// memory. It is safe for concurrent use.
type CachedKeyStore struct {
	next     KeyStore
	cache    *lru.Cache[[sha256.Size]byte, cacheEntry]
	ttl, neg time.Duration
	now      func() time.Time
}

type cacheEntry struct {
	client  *Client // nil: a cached miss
	expires time.Time
}

// CacheOption configures a CachedKeyStore.
type CacheOption func(*CachedKeyStore)

// CacheTTL sets how long found clients (positive) and unknown keys
// (negative) are cached. A negative TTL of zero disables negative caching.
// The defaults are 30 seconds and 5 seconds.
func CacheTTL(positive, negative time.Duration) CacheOption {
	return func(c *CachedKeyStore) { c.ttl, c.neg = positive, negative }
}

// CacheClock sets the clock of a CachedKeyStore. The default is time.Now.
func CacheClock(now func() time.Time) CacheOption {
	return func(c *CachedKeyStore) { c.now = now }
}

// NewCachedKeyStore returns a CachedKeyStore over next holding at most size
// entries. It fails if next is nil, size is not positive, or a TTL is
// negative.
func NewCachedKeyStore(next KeyStore, size int, opts ...CacheOption) (*CachedKeyStore, error) {
	if next == nil {
		return nil, errors.New("apiguard: NewCachedKeyStore needs a KeyStore")
	}
	c := &CachedKeyStore{next: next, ttl: 30 * time.Second, neg: 5 * time.Second, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	if c.ttl <= 0 || c.neg < 0 || c.now == nil {
		return nil, errors.New("apiguard: CacheTTL needs a positive TTL and a non-negative negative TTL, CacheClock a clock")
	}
	cache, err := lru.New[[sha256.Size]byte, cacheEntry](size)
	if err != nil {
		return nil, fmt.Errorf("apiguard: cache size %d: %w", size, err)
	}
	c.cache = cache
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

// Forget drops key from the cache, so that a revocation takes effect at once.
func (c *CachedKeyStore) Forget(key string) {
	c.cache.Remove(sha256.Sum256([]byte(key)))
}

// Len returns the number of cached entries.
func (c *CachedKeyStore) Len() int { return c.cache.Len() }

var _ KeyStore = (*CachedKeyStore)(nil)
