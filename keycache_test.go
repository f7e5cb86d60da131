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
	if c.Len() > 2 {
		t.Errorf("%d entries, capacity 2", c.Len())
	}
	// Forget makes a revocation take effect at once.
	back.KeyStore.(*MemoryKeyStore).Revoke(mustClient(t, back, "k2").KeyID, time.Time{})
	if _, err := c.Lookup(ctx, "k2"); err != nil {
		t.Errorf("cached entry gone early: %v", err)
	}
	c.Forget("k2")
	if _, err := c.Lookup(ctx, "k2"); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("after Forget: %v", err)
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
