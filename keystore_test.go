package apiguard

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apiguard/apiguard/internal/wire"
)

func TestMemoryKeyStoreLifecycle(t *testing.T) {
	clock := newTestClock()
	s, err := NewMemoryKeyStore(WithClock(clock.Now), WithCapacity(3))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Add(KeySpec{Key: "sk_test_old", Client: Client{ID: "m1", KeyID: "old"}, KeepSecret: true}))
	must(s.Add(KeySpec{Key: "sk_test_new", Client: Client{ID: "m1", KeyID: "new"}, KeepSecret: true}))
	must(s.Add(KeySpec{Key: "sk_live_x", Client: Client{ID: "m2"}}))

	if err := s.Add(KeySpec{Key: "sk_test_more", Client: Client{ID: "m3"}}); !errors.Is(err, ErrStoreFull) {
		t.Errorf("full store: %v", err)
	}
	if err := s.Add(KeySpec{Key: "sk_test_old", Client: Client{ID: "m1"}}); err == nil {
		t.Error("duplicate key added")
	}
	if err := s.Add(KeySpec{Key: "", Client: Client{ID: "m1"}}); err == nil {
		t.Error("empty key added")
	}
	c, err := s.Lookup(ctx, "sk_test_old")
	if err != nil || c.ID != "m1" || c.KeyID != "old" || c.Env != Sandbox {
		t.Fatalf("lookup: %+v %v", c, err)
	}
	if c, _ := s.Lookup(ctx, "sk_live_x"); c.Env != Live || !strings.HasPrefix(c.KeyID, "key_") {
		t.Errorf("live key: %+v", c)
	}
	// Rotation: the old key keeps working through a 24 h overlap, then stops.
	if !s.Revoke("old", clock.Now().Add(24*time.Hour)) {
		t.Fatal("Revoke at a time")
	}
	clock.Advance(23 * time.Hour)
	if _, err := s.Lookup(ctx, "sk_test_old"); err != nil {
		t.Errorf("old key within overlap: %v", err)
	}
	if sec, _ := s.Secrets(ctx, "m1"); len(sec) != 2 {
		t.Errorf("secrets within overlap: %d", len(sec))
	}
	clock.Advance(time.Hour)
	if _, err := s.Lookup(ctx, "sk_test_old"); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("old key after overlap: %v", err)
	}
	if sec, _ := s.Secrets(ctx, "m1"); len(sec) != 1 || sec[0].Key != "sk_test_new" || sec[0].Client.KeyID != "new" {
		t.Errorf("secrets after overlap: %+v", sec)
	}
	// Revocation is immediate.
	if !s.Revoke("new", time.Time{}) || s.Revoke("new", time.Time{}) {
		t.Fatal("Revoke")
	}
	if _, err := s.Lookup(ctx, "sk_test_new"); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("revoked key: %v", err)
	}
	// Keys without KeepSecret have no plaintext.
	if sec, _ := s.Secrets(ctx, "m2"); len(sec) != 0 {
		t.Error("plaintext kept without KeepSecret")
	}
	if _, err := NewMemoryKeyStore(WithCapacity(0)); err == nil {
		t.Error("WithCapacity(0) accepted")
	}
}

func TestMemoryKeyStoreKeepsNoPlaintext(t *testing.T) {
	s := mustStore(t, KeySpec{Key: "sk_test_topsecret", Client: Client{ID: "m"}})
	for _, b := range s.text.chunks {
		if strings.Contains(b.String(), "topsecret") {
			t.Fatalf("plaintext kept: %q", b.String())
		}
	}
	for _, sl := range s.slots {
		if strings.Contains(fmt.Sprintf("%+v", sl), "topsecret") {
			t.Fatalf("plaintext kept: %+v", sl)
		}
	}
}

// TestMemoryKeyStoreIndexHoldsNoPointers: what a MemoryKeyStore holds per
// key (its maps and slots) holds no pointer, so that the garbage collector
// never scans it and a store of a million keys costs a request no more
// than a store of one (regression: two pointers per key, *keyEntry and
// *Client, made Bearer 1.6 times its floor at a million keys).
func TestMemoryKeyStoreIndexHoldsNoPointers(t *testing.T) {
	s := mustStore(t)
	for name, typ := range map[string]reflect.Type{
		"byDigest": reflect.TypeOf(s.byDigest),
		"byID":     reflect.TypeOf(s.byID),
		"secrets":  reflect.TypeOf(s.secrets),
		"slots":    reflect.TypeOf(s.slots).Elem(),
		"free":     reflect.TypeOf(s.free).Elem(),
	} {
		if typ.Kind() == reflect.Map {
			if hasPointers(typ.Key()) || hasPointers(typ.Elem()) {
				t.Errorf("%s: %v holds pointers", name, typ)
			}
		} else if hasPointers(typ) {
			t.Errorf("%s: %v holds pointers", name, typ)
		}
	}
}

// hasPointers reports whether a value of t holds a pointer.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	}
	return true
}

// TestMemoryKeyStoreChurnStaysBounded: adding and revoking keys over and
// over keeps the store's text, slots and shared lists at the size of the
// keys it holds, and a client handed out before the store compacts its
// text keeps its values.
func TestMemoryKeyStoreChurnStaysBounded(t *testing.T) {
	s, err := NewMemoryKeyStore(WithCapacity(1000))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Add(KeySpec{Key: "sk_test_keeper", Client: Client{ID: "keeper", KeyID: "kk", Role: "gold", Scopes: []string{"a", "b"}}}); err != nil {
		t.Fatal(err)
	}
	kept, err := s.Lookup(ctx, "sk_test_keeper")
	if err != nil {
		t.Fatal(err)
	}
	for round := range 50 {
		for i := range 500 {
			id := fmt.Sprintf("r%d-k%d", round, i)
			spec := KeySpec{Key: "sk_test_" + id, Client: Client{ID: "c-" + id, KeyID: id, Scopes: []string{id}}, KeepSecret: i%2 == 0}
			if err := s.Add(spec); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 500 {
			if !s.Revoke(fmt.Sprintf("r%d-k%d", round, i), time.Time{}) {
				t.Fatal("Revoke")
			}
		}
	}
	text := 0
	for _, b := range s.text.chunks {
		text += b.Cap()
	}
	if text > 4*arenaChunk || len(s.slots) > 501 || len(s.scopes.index) != 1 || len(s.byID) != 1 || len(s.secrets) != 0 {
		t.Errorf("after churn: %d bytes of text, %d slots, %d scope lists, %d ids, %d secret chains",
			text, len(s.slots), len(s.scopes.index), len(s.byID), len(s.secrets))
	}
	if kept.ID != "keeper" || kept.KeyID != "kk" || kept.Role != "gold" || strings.Join(kept.Scopes, ",") != "a,b" {
		t.Errorf("a client handed out before compaction: %+v", kept)
	}
	if c, err := s.Lookup(ctx, "sk_test_keeper"); err != nil || c.ID != kept.ID || c.KeyID != kept.KeyID || c.Role != kept.Role {
		t.Errorf("after compaction: %+v, %v", c, err)
	}
}

func TestGenerateKey(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		k, err := GenerateKey("sandbox_sk_test_")
		if err != nil || !strings.HasPrefix(k, "sandbox_sk_test_") || len(k) != len("sandbox_sk_test_")+43 || !wire.ValidCredential(k) {
			t.Fatalf("%q %v", k, err)
		}
		if seen[k] {
			t.Fatal("repeated key")
		}
		seen[k] = true
	}
	for _, p := range []string{"a b", "x:", "é", "a/b"} {
		if _, err := GenerateKey(p); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
}

func TestKeyStoresConcurrent(t *testing.T) {
	clock := newTestClock()
	s, _ := NewMemoryKeyStore(WithClock(clock.Now))
	cached, _ := NewCachedKeyStore(s, WithCapacity(64), WithClock(clock.Now))
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				key := fmt.Sprintf("k-%d-%d", w, i)
				if err := s.Add(KeySpec{Key: key, Client: Client{ID: "c", KeyID: key}, KeepSecret: true}); err != nil {
					t.Error(err)
					return
				}
				for _, st := range []KeyStore{s, cached} {
					if c, err := st.Lookup(context.Background(), key); err != nil || c.KeyID != key {
						t.Errorf("lookup %s: %v", key, err)
					}
				}
				s.Revoke(key, clock.Now().Add(time.Hour))
				s.Secrets(context.Background(), "c")
				if i%2 == 0 {
					s.Revoke(key, time.Time{})
				}
			}
		}(w)
	}
	wg.Wait()
	if s.len() != 400 {
		t.Errorf("Len = %d, want 400", s.len())
	}
}

// TestSecretsIndex: Secrets returns exactly a client's live kept keys among
// many clients', through additions, expiry and revocation.
func TestSecretsIndex(t *testing.T) {
	clock := newTestClock()
	s, _ := NewMemoryKeyStore(WithClock(clock.Now))
	ctx := context.Background()
	for c := 0; c < 300; c++ {
		for k := 0; k < 3; k++ {
			id := fmt.Sprintf("c%d-k%d", c, k)
			if err := s.Add(KeySpec{Key: "secret-" + id, Client: Client{ID: fmt.Sprintf("c%d", c), KeyID: id}, KeepSecret: k != 2}); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.Revoke("c7-k0", time.Time{})
	s.Revoke("c8-k1", clock.Now().Add(time.Minute))
	clock.Advance(2 * time.Minute)
	for client, want := range map[string][]string{
		"c0":     {"secret-c0-k0", "secret-c0-k1"},
		"c7":     {"secret-c7-k1"},
		"c8":     {"secret-c8-k0"},
		"nobody": {},
	} {
		got, err := s.Secrets(ctx, client)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, sec := range got {
			keys = append(keys, sec.Key)
			if sec.Client.ID != client {
				t.Errorf("%s: secret of %s", client, sec.Client.ID)
			}
		}
		if strings.Join(keys, ",") != strings.Join(want, ",") {
			t.Errorf("%s: %v, want %v", client, keys, want)
		}
	}
}

// TestMemoryKeyStoreRecentClientOfAReusedSlot: a key stored in the slot of
// a revoked key that was looked up is found with its own client, not the
// client kept for the revoked key.
func TestMemoryKeyStoreRecentClientOfAReusedSlot(t *testing.T) {
	s := mustStore(t, KeySpec{Key: "sk_test_first", Client: Client{ID: "first", KeyID: "k1"}})
	ctx := context.Background()
	if c, err := s.Lookup(ctx, "sk_test_first"); err != nil || c.ID != "first" {
		t.Fatalf("first: %+v, %v", c, err)
	}
	s.Revoke("k1", time.Time{})
	if err := s.Add(KeySpec{Key: "sk_test_second", Client: Client{ID: "second", KeyID: "k2"}}); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Lookup(ctx, "sk_test_second"); err != nil || c.ID != "second" || c.KeyID != "k2" {
		t.Errorf("second, in the first's slot: %+v, %v", c, err)
	}
	if len(s.slots) != 1 {
		t.Errorf("%d slots: the second key did not reuse the first's", len(s.slots))
	}
}

// TestMemoryKeyStoreBytesPerKey measures the heap of a MemoryKeyStore
// holding 1,000,000 keys of ordinary clients (ids of about ten bytes, one
// scope list shared by all).
func TestMemoryKeyStoreBytesPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("holds a million keys")
	}
	keys := 1_000_000
	if rateLimitRace {
		keys = 100_000
	}
	base := heapAlloc()
	s, err := NewMemoryKeyStore(WithCapacity(keys))
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		n := strconv.Itoa(i)
		if err := s.Add(KeySpec{Key: "sandbox_sk_test_" + n, Client: Client{ID: "client-" + n, KeyID: "k-" + n, Scopes: []string{"payment:read"}}}); err != nil {
			t.Fatal(err)
		}
	}
	perKey := float64(heapAlloc()-base) / float64(keys)
	t.Logf("%.1f bytes per key after %d keys", perKey, keys)
	if perKey >= 300 {
		t.Errorf("%.1f bytes per key, want under 300", perKey)
	}
	runtime.KeepAlive(s)
}
