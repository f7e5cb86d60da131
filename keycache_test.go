package apiguard

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// slowStore counts lookups and can fail.
type slowStore struct {
	KeyStore
	n    atomic.Int64
	fail atomic.Bool
}

func (s *slowStore) Lookup(ctx context.Context, key string) (*Client, error) {
	s.n.Add(1)
	if s.fail.Load() {
		return nil, errors.New("backend down")
	}
	return s.KeyStore.Lookup(ctx, key)
}

func TestCachedKeyStore(t *testing.T) {
	clock := newTestClock()
	back := &slowStore{KeyStore: mustStore(t, KeySpec{Key: "k1", Client: Client{ID: "a"}}, KeySpec{Key: "k2", Client: Client{ID: "b"}})}
	c, err := NewCachedKeyStore(back, WithCapacity(2), WithCacheTTL(time.Minute, 10*time.Second), WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if cl, err := c.Lookup(ctx, "k1"); err != nil || cl.ID != "a" {
			t.Fatal(cl, err)
		}
	}
	if back.n.Load() != 1 {
		t.Errorf("%d backend lookups for one key, want 1", back.n.Load())
	}
	// Negative results are cached for the shorter TTL.
	c.Lookup(ctx, "nope")
	c.Lookup(ctx, "nope")
	if back.n.Load() != 2 {
		t.Errorf("negative result not cached: %d", back.n.Load())
	}
	clock.Advance(11 * time.Second)
	if _, err := c.Lookup(ctx, "nope"); !errors.Is(err, ErrInvalidKey) || back.n.Load() != 3 {
		t.Errorf("negative entry did not expire: %d", back.n.Load())
	}
	// Failures are not cached.
	back.fail.Store(true)
	if _, err := c.Lookup(ctx, "k2"); err == nil || errors.Is(err, ErrInvalidKey) {
		t.Errorf("failure: %v", err)
	}
	back.fail.Store(false)
	if cl, err := c.Lookup(ctx, "k2"); err != nil || cl.ID != "b" {
		t.Errorf("after failure: %v", err)
	}
	// Bounded.
	if c.len() > 2 {
		t.Errorf("%d entries, capacity 2", c.len())
	}
	for _, bad := range []func() (*CachedKeyStore, error){
		func() (*CachedKeyStore, error) { return NewCachedKeyStore(nil) },
		func() (*CachedKeyStore, error) { return NewCachedKeyStore(back, WithCapacity(0)) },
		func() (*CachedKeyStore, error) { return NewCachedKeyStore(back, WithCacheTTL(0, 0)) },
	} {
		if _, err := bad(); err == nil {
			t.Error("bad config accepted")
		}
	}
}

// TestCachedKeyStoreForget: Forget(keyID) makes the revocation of that key
// in the backing store take effect at once, and leaves other keys cached;
// Purge drops every entry.
func TestCachedKeyStoreForget(t *testing.T) {
	clock := newTestClock()
	keys := mustStore(t,
		KeySpec{Key: "k1", Client: Client{ID: "a", KeyID: "key-a"}},
		KeySpec{Key: "k2", Client: Client{ID: "b", KeyID: "key-b"}})
	back := &slowStore{KeyStore: keys}
	c, err := NewCachedKeyStore(back, WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, k := range []string{"k1", "k2", "unknown"} {
		c.Lookup(ctx, k)
	}
	keys.Revoke("key-a", time.Time{})
	if _, err := c.Lookup(ctx, "k1"); err != nil {
		t.Errorf("revoked key refused before Forget, so the cache did not hold it: %v", err)
	}
	c.Forget("key-a")
	if _, err := c.Lookup(ctx, "k1"); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("revoked key after Forget: %v", err)
	}
	// k2 and the unknown key are still cached: the backend, down now, is
	// not asked.
	back.fail.Store(true)
	n := back.n.Load()
	if cl, err := c.Lookup(ctx, "k2"); err != nil || cl.ID != "b" {
		t.Errorf("unrelated key after Forget: %v, %v", cl, err)
	}
	if _, err := c.Lookup(ctx, "unknown"); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("unknown key after Forget: %v", err)
	}
	if back.n.Load() != n {
		t.Errorf("%d backend lookups after Forget, want none", back.n.Load()-n)
	}
	c.Forget("no-such-key")
	if c.len() != 3 { // k1's miss, k2, unknown
		t.Errorf("%d entries, want 3", c.len())
	}
	c.Purge()
	if c.len() != 0 {
		t.Errorf("%d entries after Purge", c.len())
	}
	if _, err := c.Lookup(ctx, "k2"); err == nil || errors.Is(err, ErrInvalidKey) {
		t.Errorf("after Purge, k2 came from the cache, not the failing backend: %v", err)
	}
}
