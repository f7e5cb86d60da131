package redisstore

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func mustIDStore(t testing.TB, opts ...Option) *IDStore {
	t.Helper()
	s, err := NewIDStore(shared.client(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIDStoreSeen(t *testing.T) {
	s := mustIDStore(t, prefix(t))
	ctx := context.Background()
	steps := []struct {
		namespace, id string
		fresh         bool
	}{
		{"client-a", "req-1", true},
		{"client-a", "req-1", false},
		{"client-a", "req-2", true},
		{"client-b", "req-1", true},
		{"client-b", "req-1", false},
		{"client-a", strings.Repeat("x", 100_000), true},
		{"client-a", strings.Repeat("x", 100_000), false},
		{"client-a", "", true},
		{"client-a", "", false},
	}
	for i, st := range steps {
		fresh, err := s.Seen(ctx, st.namespace, st.id, time.Minute)
		if err != nil || fresh != st.fresh {
			t.Errorf("step %d (%s, %.10q): %v, %v; want %v", i, st.namespace, st.id, fresh, err, st.fresh)
		}
	}
	if _, err := s.Seen(ctx, "client-a", "req-9", 0); err == nil {
		t.Error("a ttl of 0 accepted")
	}
}

func TestIDStoreTTL(t *testing.T) {
	rdb := shared.client(t)
	s, err := NewIDStore(rdb, WithPrefix("ttl:"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rdb.Del(ctx, rdb.Keys(ctx, "ttl:*").Val()...)
	for _, ttl := range []time.Duration{time.Microsecond, 1500 * time.Microsecond, 90 * time.Second} {
		if _, err := s.Seen(ctx, "ns", ttl.String(), ttl); err != nil {
			t.Fatal(err)
		}
	}
	keys := rdb.Keys(ctx, "ttl:*").Val()
	if len(keys) != 3 {
		t.Fatalf("keys %q", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "ttl:rid:ns:") || len(k) != len("ttl:rid:ns:")+43 {
			t.Errorf("key %q", k)
		}
		// The short ones may be gone already; a live one expires.
		if d := rdb.PTTL(ctx, k).Val(); d == -1 || d > 90*time.Second {
			t.Errorf("key %q expires in %v", k, d)
		}
	}
}

// TestIDStoreOnce sends one id from many goroutines through two stores
// with clients of their own (two replicas): exactly one is fresh.
func TestIDStoreOnce(t *testing.T) {
	p := prefix(t)
	stores := []*IDStore{mustIDStore(t, p, WithTimeout(10*time.Second)), mustIDStore(t, p, WithTimeout(10*time.Second))}
	var fresh atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			ok, err := stores[g%2].Seen(context.Background(), "client-a", "order-42", time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				fresh.Add(1)
			}
		})
	}
	wg.Wait()
	if n := fresh.Load(); n != 1 {
		t.Errorf("%d fresh, want 1", n)
	}
}
