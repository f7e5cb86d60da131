package sqlstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
)

// longTTL is the cache TTL of the tests' replicas: far longer than any
// test, so that a cached key stops working only if the watcher makes the
// cache forget it.
const longTTL = time.Hour

// newCache returns the cache a replica puts in front of its store: an
// apiguard.CachedKeyStore whose entries outlive the test.
func newCache(t testing.TB, next apiguard.KeyStore) *apiguard.CachedKeyStore {
	t.Helper()
	c, err := apiguard.NewCachedKeyStore(next, apiguard.WithCacheTTL(longTTL, longTTL))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitRefused polls cache until it refuses key, failing t after within.
func waitRefused(t *testing.T, cache apiguard.KeyStore, key string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, err := cache.Lookup(ctx, key)
		if errors.Is(err, apiguard.ErrInvalidKey) {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("key still accepted %v after the change (last: %v)", within, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestInvalidateForgets pins that Invalidate makes an
// apiguard.CachedKeyStore forget a changed key by its key id, and only that
// key: without it, the cache would serve a revoked key until its TTL.
func TestInvalidateForgets(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := open(t, b.url(t))
		cache := newCache(t, s)
		var keys []string
		var ids []string
		for range 2 {
			key, info, err := s.Issue(ctx, "ops", NewKey{Prefix: "sk_test_", Client: apiguard.Client{ID: "m"}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cache.Lookup(ctx, key); err != nil {
				t.Fatal(err)
			}
			keys, ids = append(keys, key), append(ids, info.Client.KeyID)
		}
		for _, id := range ids {
			if err := s.Revoke(ctx, "ops", id); err != nil {
				t.Fatal(err)
			}
		}
		// The cache holds both revoked keys, as it would for an hour.
		for _, key := range keys {
			if _, err := cache.Lookup(ctx, key); err != nil {
				t.Fatalf("cached key before Invalidate: %v", err)
			}
		}
		Invalidate(cache)(Change{Seq: 9, KeyID: ids[0], ClientID: "m"})
		if _, err := cache.Lookup(ctx, keys[0]); !errors.Is(err, apiguard.ErrInvalidKey) {
			t.Fatalf("the invalidated key: %v, want ErrInvalidKey", err)
		}
		if _, err := cache.Lookup(ctx, keys[1]); err != nil {
			t.Fatalf("another key of the same client was forgotten too: %v", err)
		}
	})
}

// replica is a Store with a cache in front, kept up to date by a Watcher.
type replica struct {
	store *Store
	cache *apiguard.CachedKeyStore
	seen  chan Change
}

func newReplica(t *testing.T, url string, opts ...Option) *replica {
	s := open(t, url, opts...)
	r := &replica{store: s, cache: newCache(t, s), seen: make(chan Change, 100)}
	forget := Invalidate(r.cache)
	w, err := s.Watch(func(c Change) {
		forget(c)
		select {
		case r.seen <- c:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return r
}

// TestRevokeSeenByReplicas pins issue 14's promise: a key revoked on one
// replica is refused by every other within a second, through their caches.
func TestRevokeSeenByReplicas(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		url := b.url(t)
		a, bb := newReplica(t, url), newReplica(t, url)
		key, info, err := a.store.Issue(ctx, "ops", NewKey{Prefix: "sk_live_", Client: apiguard.Client{ID: "m"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []*replica{a, bb} {
			if _, err := r.cache.Lookup(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		drain(a.seen, bb.seen)
		if err := a.store.Revoke(ctx, "ops", info.Client.KeyID); err != nil {
			t.Fatal(err)
		}
		took := waitRefused(t, bb.cache, key, time.Second)
		waitRefused(t, a.cache, key, time.Second)
		t.Logf("%s: B refused the revoked key after %v", b.name, took)
		select {
		case c := <-bb.seen:
			if c.KeyID != info.Client.KeyID || c.ClientID != "m" || c.Seq <= 0 {
				t.Fatalf("change = %+v", c)
			}
		case <-time.After(time.Second):
			t.Fatal("no change delivered")
		}

		// A rotation with no overlap ends the old key everywhere too.
		key2, info2, err := bb.store.Issue(ctx, "ops", NewKey{Prefix: "sk_live_", Client: apiguard.Client{ID: "m"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.cache.Lookup(ctx, key2); err != nil {
			t.Fatal(err)
		}
		key3, _, err := bb.store.Rotate(ctx, "ops", info2.Client.KeyID, 0)
		if err != nil {
			t.Fatal(err)
		}
		waitRefused(t, a.cache, key2, time.Second)
		if _, err := a.cache.Lookup(ctx, key3); err != nil {
			t.Fatal(err)
		}
	})
}

func drain(chs ...chan Change) {
	for _, ch := range chs {
		for len(ch) > 0 {
			<-ch
		}
	}
}

// TestWatchReconnects kills the listening connection of a replica; the
// replica reconnects and still hears of the next revocation, and of one
// made while it was away.
func TestWatchReconnects(t *testing.T) {
	url := backends[0].url(t)
	var errs errorLog
	a, bb := newReplica(t, url), newReplica(t, url, WithErrorHandler(errs.add))
	keys := make([]string, 2)
	ids := make([]string, 2)
	for i := range keys {
		var info KeyInfo
		var err error
		keys[i], info, err = a.store.Issue(ctx, "ops", NewKey{Prefix: "live_", Client: apiguard.Client{ID: "m"}})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = info.Client.KeyID
		if _, err := bb.cache.Lookup(ctx, keys[i]); err != nil {
			t.Fatal(err)
		}
	}
	// End B's listening connection and revoke at once: the revocation may
	// come while B is away; B replays what it missed when it reconnects.
	kill := func() {
		n := 0
		if err := a.store.db.QueryRow(`SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = 'apiguard-watch' AND datname = current_database()`).Scan(&n); err != nil || n != 2 {
			t.Fatalf("terminated %d listeners (want 2): %v", n, err)
		}
	}
	kill()
	if err := a.store.Revoke(ctx, "ops", ids[0]); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, bb.cache, keys[0], 2*time.Second)
	// Once reconnected, B hears of changes as before.
	waitFor(t, func() bool { return listeners(t, a.store) == 2 })
	if err := a.store.Revoke(ctx, "ops", ids[1]); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, bb.cache, keys[1], time.Second)
	if !strings.Contains(errs.String(), "reconnecting") {
		t.Fatalf("the error handler was not told of the reconnection: %q", errs.String())
	}
}

func listeners(t *testing.T, s *Store) int {
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'apiguard-watch' AND datname = current_database()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type errorLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(err.Error() + "\n")
}

func (l *errorLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDatabaseDown stops the PostgreSQL server under a store: Lookup fails
// with an error that is not ErrInvalidKey (the guard answers 503), and when
// the server is back the watcher reconnects and lookups work again.
func TestDatabaseDown(t *testing.T) {
	srv, err := startServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	url, err := srv.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var errs errorLog
	r := newReplica(t, url, WithErrorHandler(errs.add))
	key, info, err := r.store.Issue(ctx, "ops", NewKey{Prefix: "sk_test_", Client: apiguard.Client{ID: "m"}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Halt()
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = r.store.Lookup(c, key)
	cancel()
	if err == nil || errors.Is(err, apiguard.ErrInvalidKey) {
		t.Fatalf("Lookup with the database down: %v; want an error other than ErrInvalidKey", err)
	}
	if _, err := r.store.Secrets(ctx, "m"); err == nil {
		t.Fatal("Secrets with the database down succeeded")
	}
	if err := r.store.Revoke(ctx, "ops", info.Client.KeyID); err == nil || errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Revoke with the database down: %v", err)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.cache.Lookup(ctx, key); err != nil {
		t.Fatalf("Lookup once the database is back: %v", err)
	}
	waitFor(t, func() bool { return listeners(t, r.store) == 1 })
	other := open(t, url)
	if err := other.Revoke(ctx, "ops", info.Client.KeyID); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, r.cache, key, time.Second)
	if errs.String() == "" {
		t.Fatal("the error handler heard nothing while the database was down")
	}
}

// TestWatchMissedChanges pins that a watcher that finds change records it
// never saw pruned tells of every key.
func TestWatchMissedChanges(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		s := open(t, b.url(t), WithClock(clk.Now))
		var got []string
		w := &Watcher{s: s, fn: func(c Change) { got = append(got, c.KeyID) }}
		for _, id := range []string{"k1", "k2"} {
			if _, _, err := s.Issue(ctx, "ops", NewKey{Client: apiguard.Client{ID: "m", KeyID: id}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.catchUp(ctx, sqlSource{s.db}, 0); err != nil || strings.Join(got, " ") != "k1 k2" {
			t.Fatalf("catchUp: %v %v", got, err)
		}
		// A week later, the records the watcher saw are pruned, and it
		// missed k3's.
		clk.Add(changeRetention + time.Hour)
		if _, _, err := s.Issue(ctx, "ops", NewKey{Client: apiguard.Client{ID: "m", KeyID: "k3"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.Exec(`DELETE FROM apiguard_changes WHERE key_id = 'k3'`); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Hour)
		if _, _, err := s.Issue(ctx, "ops", NewKey{Client: apiguard.Client{ID: "m", KeyID: "k4"}}); err != nil {
			t.Fatal(err)
		}
		got = nil
		if err := w.catchUp(ctx, sqlSource{s.db}, w.last); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"k1", "k2", "k3", "k4"} {
			if !strings.Contains(" "+strings.Join(got, " ")+" ", " "+id+" ") {
				t.Fatalf("after missing changes, told of %v; want every key", got)
			}
		}
	})
}

func TestWatchClose(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, err := Open(ctx, b.url(t), WithPollInterval(10*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		w1, err := s.Watch(func(Change) {})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Watch(func(Change) {}); err != nil {
			t.Fatal(err)
		}
		w1.Close()
		w1.Close()
		if err := s.Close(); err != nil { // closes the other watcher
			t.Fatal(err)
		}
		if _, err := s.Watch(func(Change) {}); err == nil {
			t.Fatal("Watch on a closed store succeeded")
		}
	})
}

func TestPayload(t *testing.T) {
	c := Change{Seq: 7, KeyID: "key_0123456789abcdef", ClientID: "merchant@example.com"}
	if got, err := parsePayload(formatPayload(c)); err != nil || got != c {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{
		``, `{}`, `null`, `{"seq":0,"key_id":"k","client_id":"c"}`, `{"seq":1,"key_id":"","client_id":"c"}`,
		`{"seq":1,"key_id":"k","client_id":"c"} x`, `{"seq":1,"key_id":"k","client_id":"c"}}`,
		`{"seq":1,"key_id":"k","client_id":"c","extra":1}`, `{"seq":1,"key_id":"k k","client_id":"c"}`,
		`{"seq":"1","key_id":"k","client_id":"c"}`, `[1,"k","c"]`, strings.Repeat(" ", 2000),
	} {
		if _, err := parsePayload(bad); err == nil {
			t.Errorf("parsePayload(%q) succeeded", bad)
		}
	}
}

// TestWatchIdle pins that a watcher that checks its idle connection (a
// wait for notifications that times out, then a ping) keeps listening.
func TestWatchIdle(t *testing.T) {
	// Restored after the watcher is closed (cleanups run last first).
	d := pingEvery
	t.Cleanup(func() { pingEvery = d })
	pingEvery = 20 * time.Millisecond
	url := backends[0].url(t)
	var errs errorLog
	r := newReplica(t, url, WithErrorHandler(errs.add))
	key, info, err := r.store.Issue(ctx, "ops", NewKey{Prefix: "live_", Client: apiguard.Client{ID: "m"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.cache.Lookup(ctx, key); err != nil {
		t.Fatal(err)
	}
	drain(r.seen)
	time.Sleep(200 * time.Millisecond) // some ten idle checks
	other := open(t, url)
	if err := other.Revoke(ctx, "ops", info.Client.KeyID); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, r.cache, key, time.Second)
	if errs.String() != "" {
		t.Fatalf("idle checks reported errors: %s", errs.String())
	}
	if n := listeners(t, r.store); n != 1 {
		t.Fatalf("%d listening connections, want 1", n)
	}
}
