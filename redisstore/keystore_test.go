package redisstore

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiguard/apiguard"
)

// testClock is a settable clock.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func mustKeyStore(t testing.TB, rdb redis.UniversalClient, opts ...Option) *KeyStore {
	t.Helper()
	s, err := NewKeyStore(rdb, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeyStoreLookup(t *testing.T) {
	ctx := context.Background()
	s := mustKeyStore(t, shared.client(t), prefix(t))
	want := apiguard.Client{ID: "456", KeyID: "k-ipbound", Scopes: []string{"topup:order", "topup:status"}, Role: "regular",
		Env: apiguard.Live, IPs: []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32"), netip.MustParsePrefix("2001:db8::/32")}}
	if err := s.Add(ctx, apiguard.KeySpec{Key: "topup_demo_key_ipbound", Client: want}); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, apiguard.KeySpec{Key: "sandbox_pk_test_app", Client: apiguard.Client{ID: "app", Publishable: true}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Lookup(ctx, "topup_demo_key_ipbound")
	if err != nil || !reflect.DeepEqual(*got, want) {
		t.Errorf("Lookup: %+v, %v; want %+v", got, err, want)
	}
	app, err := s.Lookup(ctx, "sandbox_pk_test_app")
	if err != nil || !app.Publishable || app.Env != apiguard.Sandbox || app.KeyID == "" {
		t.Errorf("publishable key: %+v, %v (env from the prefix, a random key id)", app, err)
	}
	for _, key := range []string{"topup_demo_key_other", "", "has space", string(make([]byte, 2000))} {
		if _, err := s.Lookup(ctx, key); !errors.Is(err, apiguard.ErrInvalidKey) {
			t.Errorf("Lookup(%.20q): %v, want ErrInvalidKey", key, err)
		}
	}
	// A key or a key id held already is refused, and changes nothing.
	if err := s.Add(ctx, apiguard.KeySpec{Key: "another_key_1", Client: apiguard.Client{ID: "x", KeyID: "k-ipbound"}}); err == nil {
		t.Error("a second key with one key id")
	}
	if err := s.Add(ctx, apiguard.KeySpec{Key: "topup_demo_key_ipbound", Client: apiguard.Client{ID: "x"}}); err == nil {
		t.Error("the same key twice")
	}
	if got, _ := s.Lookup(ctx, "topup_demo_key_ipbound"); got == nil || got.ID != "456" {
		t.Errorf("a refused Add changed the key: %+v", got)
	}
	if err := s.Add(ctx, apiguard.KeySpec{Key: "k2", Client: apiguard.Client{}}); err == nil {
		t.Error("a key without a client id")
	}
}

func TestKeyStoreSecretsAndRevoke(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	s := mustKeyStore(t, shared.client(t), prefix(t), WithClock(clock.Now))
	for _, spec := range []apiguard.KeySpec{
		{Key: "old_key_gold", Client: apiguard.Client{ID: "123", KeyID: "old"}, KeepSecret: true},
		{Key: "new_key_gold", Client: apiguard.Client{ID: "123", KeyID: "new"}, KeepSecret: true},
		{Key: "digest_only", Client: apiguard.Client{ID: "123", KeyID: "plain"}},
	} {
		if err := s.Add(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	secrets := func() map[string]string {
		t.Helper()
		ss, err := s.Secrets(ctx, "123")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, sc := range ss {
			m[sc.Client.KeyID] = sc.Key
		}
		return m
	}
	if got := secrets(); !reflect.DeepEqual(got, map[string]string{"old": "old_key_gold", "new": "new_key_gold"}) {
		t.Errorf("Secrets: %v", got)
	}
	if ss, err := s.Secrets(ctx, "nobody"); err != nil || len(ss) != 0 {
		t.Errorf("Secrets of an unknown client: %v, %v", ss, err)
	}

	// Rotation: the old key works through its overlap, then stops.
	if ok, err := s.Revoke(ctx, "old", clock.Now().Add(24*time.Hour)); !ok || err != nil {
		t.Fatalf("Revoke with an overlap: %v, %v", ok, err)
	}
	clock.Advance(24*time.Hour - time.Second)
	if _, err := s.Lookup(ctx, "old_key_gold"); err != nil {
		t.Errorf("old key within its overlap: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := s.Lookup(ctx, "old_key_gold"); !errors.Is(err, apiguard.ErrInvalidKey) {
		t.Errorf("old key after its overlap: %v", err)
	}
	if got := secrets(); !reflect.DeepEqual(got, map[string]string{"new": "new_key_gold"}) {
		t.Errorf("Secrets after the overlap: %v", got)
	}

	// Revoked at once: gone from Lookup and Secrets.
	if ok, err := s.Revoke(ctx, "new", time.Time{}); !ok || err != nil {
		t.Fatalf("Revoke: %v, %v", ok, err)
	}
	if _, err := s.Lookup(ctx, "new_key_gold"); !errors.Is(err, apiguard.ErrInvalidKey) {
		t.Errorf("revoked key: %v", err)
	}
	if got := secrets(); len(got) != 0 {
		t.Errorf("Secrets after revocation: %v", got)
	}
	if ok, err := s.Revoke(ctx, "no-such-key", time.Time{}); ok || err != nil {
		t.Errorf("Revoke of an unknown id: %v, %v", ok, err)
	}
}

// TestKeyRevokedOnEveryReplica: two replicas, each with a cache in front of
// the shared store. A key revoked through one is refused by the other
// within a second, though its cache would keep it for an hour.
func TestKeyRevokedOnEveryReplica(t *testing.T) {
	ctx := context.Background()
	p := prefix(t)
	type replica struct {
		store *KeyStore
		cache *apiguard.CachedKeyStore
		g     *apiguard.Guard
	}
	var rs [3]replica
	for i := range rs {
		rs[i].store = mustKeyStore(t, shared.client(t), p)
		cache, err := apiguard.NewCachedKeyStore(rs[i].store, apiguard.WithCacheTTL(time.Hour, time.Second))
		if err != nil {
			t.Fatal(err)
		}
		rs[i].cache = cache
		rs[i].g = apiguard.MustNew(apiguard.Bearer(cache), apiguard.WithDialect(apiguard.MockPay()))
		if i < 2 { // the third replica does not listen: the control
			l, err := rs[i].store.Listen(ctx, cache)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}
	}
	if err := rs[0].store.Add(ctx, apiguard.KeySpec{Key: "sk_live_replicated", Client: apiguard.Client{ID: "client-a", KeyID: "rk"}}); err != nil {
		t.Fatal(err)
	}
	call := func(r replica) int {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer sk_live_replicated")
		w := httptest.NewRecorder()
		r.g.Authenticate()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(w, req)
		return w.Code
	}
	for i, r := range rs {
		if code, n := call(r), cached(r.cache); code != 200 || n != 1 {
			t.Fatalf("replica %d before: %d, %d cached", i, code, n)
		}
	}
	start := time.Now()
	if ok, err := rs[0].store.Revoke(ctx, "rk", time.Time{}); !ok || err != nil {
		t.Fatalf("Revoke: %v %v", ok, err)
	}
	// Each listening replica, the one that revoked included, hears of it
	// by its own subscription: each must refuse the key within a second.
	for i := range 2 {
		for call(rs[i]) != 401 {
			if time.Since(start) > time.Second {
				t.Fatalf("replica %d still accepts the revoked key after a second", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("replica %d refuses the revoked key after %v", i, time.Since(start))
	}
	if code := call(rs[2]); code != 200 {
		t.Errorf("the replica that does not listen answers %d from its cache: the test proves nothing", code)
	}
}

// TestKeyStoreRedisDown: with Redis down, Lookup fails with an error that
// is not ErrInvalidKey (the Guard answers 503, fails closed).
func TestKeyStoreRedisDown(t *testing.T) {
	srv, err := startRedis()
	if err != nil {
		t.Fatal(err)
	}
	rdb := srv.client(t)
	s := mustKeyStore(t, rdb)
	ctx := context.Background()
	if err := s.Add(ctx, apiguard.KeySpec{Key: "sk_down", Client: apiguard.Client{ID: "c"}}); err != nil {
		t.Fatal(err)
	}
	srv.stop()
	within(t, "Lookup", func() {
		if _, err := s.Lookup(ctx, "sk_down"); err == nil || errors.Is(err, apiguard.ErrInvalidKey) {
			t.Errorf("Lookup with Redis down: %v", err)
		}
	})
	g := apiguard.MustNew(apiguard.Bearer(s), apiguard.WithDialect(apiguard.MockPay()))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer sk_down")
	w := httptest.NewRecorder()
	g.Authenticate()(http.NotFoundHandler()).ServeHTTP(w, req)
	if w.Code != 503 {
		t.Errorf("Guard with Redis down: %d, want 503", w.Code)
	}
}

// countingCache records what a Listener asks of it.
type countingCache struct{ forgets, purges atomic.Int64 }

func (c *countingCache) Forget(string) { c.forgets.Add(1) }
func (c *countingCache) Purge()        { c.purges.Add(1) }

// TestListenerPurgesAfterABreak: when the subscription's connection is
// killed, what was published meanwhile may be lost, so the cache is purged
// once the subscription is back.
func TestListenerPurgesAfterABreak(t *testing.T) {
	ctx := context.Background()
	rdb := shared.client(t)
	s := mustKeyStore(t, rdb, prefix(t))
	var cache countingCache
	l, err := s.Listen(ctx, &cache)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := rdb.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for cache.purges.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no purge after the subscription broke")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And the listener still hears revocations.
	s.Revoke(ctx, "any-id", time.Time{})
	for cache.forgets.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no Forget after the subscription came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cached is the number of entries c holds.
func cached(c *apiguard.CachedKeyStore) int {
	n, _, _ := apiguard.Fill(c)
	return n
}

// TestKeyStoreRefusesHostBits: a registered range written in interface
// notation (203.0.113.7/24) would register the whole network; Add refuses
// it and names both intended forms.
func TestKeyStoreRefusesHostBits(t *testing.T) {
	s, err := NewKeyStore(shared.client(t), prefix(t), WithTimeout(10*time.Second)) // a busy machine is not a failure
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range []string{"203.0.113.7/24", "10.0.0.1/8", "2001:db8::1/32"} {
		spec := apiguard.KeySpec{Key: "sk_test_hostbits_" + strings.NewReplacer(".", "", ":", "", "/", "").Replace(p),
			Client: apiguard.Client{ID: "c", IPs: []netip.Prefix{netip.MustParsePrefix(p)}}}
		err := s.Add(ctx, spec)
		if err == nil || !strings.Contains(err.Error(), "host bits") {
			t.Errorf("Add with %s: %v, want a refusal for its host bits", p, err)
		}
		if _, lerr := s.Lookup(ctx, spec.Key); !errors.Is(lerr, apiguard.ErrInvalidKey) {
			t.Errorf("the key with %s was stored: %v", p, lerr)
		}
	}
	ok := apiguard.KeySpec{Key: "sk_test_hostbits_ok", Client: apiguard.Client{ID: "c",
		IPs: []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32"), netip.MustParsePrefix("203.0.113.0/24")}}}
	if err := s.Add(ctx, ok); err != nil {
		t.Errorf("Add with the intended forms: %v", err)
	}
}
