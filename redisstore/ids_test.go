package redisstore

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
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
	// The keys of 1µs and 1.5ms (kept 1 and 2 ms) may be gone already on
	// a busy machine; the one of 90 s is there.
	keys := rdb.Keys(ctx, "ttl:rid:*").Val()
	if len(keys) < 1 || len(keys) > 3 || !slices.Contains(keys, s.key("ns", (90*time.Second).String())) {
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

func TestIDStoreForget(t *testing.T) {
	s := mustIDStore(t, prefix(t))
	ctx := context.Background()
	if fresh, err := s.Seen(ctx, "c", "id-1", time.Minute); !fresh || err != nil {
		t.Fatal(fresh, err)
	}
	if err := s.Forget(ctx, "c", "id-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Forget(ctx, "c", "never-seen"); err != nil {
		t.Errorf("forgetting an unknown id: %v", err)
	}
	if fresh, err := s.Seen(ctx, "c", "id-1", time.Minute); !fresh || err != nil {
		t.Errorf("after Forget: %v %v", fresh, err)
	}
}

// TestRequestIDAcrossReplicas: two replicas, each with its own IDStore and
// its own Redis client on one Redis, behind apiguard's RequestID wrapper: an
// id accepted by one is refused by the other with 409, and a request that a
// later check refuses does not use its id up.
func TestRequestIDAcrossReplicas(t *testing.T) {
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		t.Fatal(err)
	}
	keys.Add(apiguard.KeySpec{Key: "app-key", Client: apiguard.Client{ID: "app", Publishable: true}})
	p := prefix(t)
	replica := func() http.Handler {
		store := mustIDStore(t, p)
		g := apiguard.MustNew(apiguard.AppKey(keys))
		gate := g.Check(func(r *http.Request) error {
			if r.Header.Get("X-Fail") != "" {
				return apiguard.ErrForbidden
			}
			return nil
		})
		return apiguard.Chain(g.RequestID(store, time.Minute), gate)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	}
	one, two := replica(), replica()
	send := func(h http.Handler, id string, fail bool) int {
		r := httptest.NewRequest("POST", "/", nil)
		r.Header.Set("x-app-key", "app-key")
		r.Header.Set("x-request-id", id)
		if fail {
			r.Header.Set("X-Fail", "1")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for i, step := range []struct {
		h    http.Handler
		id   string
		fail bool
		want int
	}{
		{one, "r-1", false, 200},
		{two, "r-1", false, 409},
		{one, "r-1", false, 409},
		{two, "r-2", true, 403}, // refused later: the id is released
		{one, "r-2", false, 200},
		{two, "r-2", false, 409},
	} {
		if got := send(step.h, step.id, step.fail); got != step.want {
			t.Errorf("step %d: %d, want %d", i, got, step.want)
		}
	}
}

// TestIDStoreReleaseSparesAnotherHolder: the release of a failed Seen
// deletes the id only if it still holds that call's token: an id another
// request recorded meanwhile stays recorded.
func TestIDStoreReleaseSparesAnotherHolder(t *testing.T) {
	s := mustIDStore(t, prefix(t))
	ctx := context.Background()
	if fresh, err := s.Seen(ctx, "ns", "held", time.Minute); !fresh || err != nil {
		t.Fatalf("first Seen: %v, %v", fresh, err)
	}
	// A call that failed on the same id, with its own token.
	s.hold(s.key("ns", "held"), release{token: newToken()})
	for range 2 { // a release is kept until answered twice
		if fresh, err := s.Seen(ctx, "ns", "other-"+newToken(), time.Minute); !fresh || err != nil {
			t.Fatalf("Seen sending the release: %v, %v", fresh, err)
		}
	}
	if s.held != 0 {
		t.Errorf("%d releases still pending after two answers", s.held)
	}
	if fresh, err := s.Seen(ctx, "ns", "held", time.Minute); fresh || err != nil {
		t.Errorf("the id another request holds, after the release: fresh %v, %v; want held", fresh, err)
	}
}

// TestIDStoreReleasesAreBounded: at most maxPendingReleases wait; the
// releases of further failures are dropped.
func TestIDStoreReleasesAreBounded(t *testing.T) {
	s := mustIDStore(t, prefix(t))
	for i := range maxPendingReleases + 10 {
		s.hold(s.key("ns", strconv.Itoa(i)), release{token: "t"})
	}
	if s.held != maxPendingReleases || len(s.pending) != maxPendingReleases {
		t.Errorf("%d releases held in %d keys, want %d", s.held, len(s.pending), maxPendingReleases)
	}
	// They leave releasesPerCall at a time, so a call's cost is bounded.
	if fresh, err := s.Seen(context.Background(), "ns", "x", time.Minute); !fresh || err != nil {
		t.Fatal(fresh, err)
	}
	answered := 0
	for _, rs := range s.pending {
		for _, r := range rs {
			if r.answered {
				answered++
			}
		}
	}
	if answered != releasesPerCall || s.held != maxPendingReleases {
		t.Errorf("after one call %d releases answered of %d held, want %d of %d (answered once, they wait for a second answer)",
			answered, s.held, releasesPerCall, maxPendingReleases)
	}
}

// TestIDStoreOneNamespaceCannotFillTheStore: a share (a namespace, or the
// namespaces of one publishable client's callers) holds an eighth of the
// capacity; past it, its new ids get ErrStoreFull while every other
// namespace goes on; past the capacity, every new id does, until ids are
// forgotten or expire. No held id is ever dropped to make room.
func TestIDStoreOneNamespaceCannotFillTheStore(t *testing.T) {
	s := mustIDStore(t, prefix(t), WithCapacity(16)) // shares of 2
	ctx := context.Background()
	seen := func(ns, id string) (bool, error) { return s.Seen(ctx, ns, id, time.Minute) }
	for i := range 2 {
		if fresh, err := seen("greedy", strconv.Itoa(i)); !fresh || err != nil {
			t.Fatalf("greedy id %d: %v, %v", i, fresh, err)
		}
	}
	if _, err := seen("greedy", "2"); !errors.Is(err, apiguard.ErrStoreFull) {
		t.Fatalf("past its share: %v, want ErrStoreFull", err)
	}
	if fresh, err := seen("greedy", "0"); fresh || err != nil {
		t.Errorf("a held id of a full share: %v, %v; want held, not dropped", fresh, err)
	}
	// A publishable client's callers share one share.
	if fresh, err := seen("app\x00ip:203.0.113.1", "a"); !fresh || err != nil {
		t.Fatal(fresh, err)
	}
	if fresh, err := seen("app\x00ip:203.0.113.2", "a"); !fresh || err != nil {
		t.Fatal(fresh, err)
	}
	if _, err := seen("app\x00ip:203.0.113.3", "a"); !errors.Is(err, apiguard.ErrStoreFull) {
		t.Errorf("a third caller of a full share: %v, want ErrStoreFull", err)
	}
	// Others go on, up to the capacity.
	for i := range 6 {
		for j := range 2 {
			if fresh, err := seen("client-"+strconv.Itoa(i), strconv.Itoa(j)); !fresh || err != nil {
				t.Fatalf("client %d id %d: %v, %v", i, j, fresh, err)
			}
		}
	}
	if _, err := seen("latecomer", "x"); !errors.Is(err, apiguard.ErrStoreFull) {
		t.Fatalf("past the capacity: %v, want ErrStoreFull", err)
	}
	// Forgetting makes room.
	if err := s.Forget(ctx, "greedy", "1"); err != nil {
		t.Fatal(err)
	}
	if fresh, err := seen("latecomer", "x"); !fresh || err != nil {
		t.Errorf("once an id is forgotten: %v, %v", fresh, err)
	}
}
