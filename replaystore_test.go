package apiguard

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMemoryReplayStore(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	s, _ := NewMemoryReplayStore(WithCapacity(100), WithClock(clock.Now))
	seen := func(ns, id string, ttl time.Duration) bool {
		t.Helper()
		fresh, err := s.Seen(ctx, ns, id, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return fresh
	}
	if !seen("a", "x", time.Minute) || seen("a", "x", time.Minute) {
		t.Error("fresh then seen")
	}
	if !seen("b", "x", time.Minute) {
		t.Error("namespaces are not apart")
	}
	if !seen("ab", "c", time.Minute) || !seen("a", "bc", time.Minute) {
		t.Error("namespace and id run together")
	}
	// Forget, then record again later: the second record outlives the
	// first one's expiry.
	s.Forget(ctx, "a", "x")
	clock.Advance(30 * time.Second)
	if !seen("a", "x", time.Minute) {
		t.Error("forgotten id not fresh")
	}
	clock.Advance(45 * time.Second) // the first record's time is out
	if seen("a", "x", time.Minute) {
		t.Error("second record dropped with the first")
	}
	if err := s.Forget(ctx, "nope", "nope"); err != nil {
		t.Error(err)
	}
	if _, err := s.Seen(ctx, "a", "y", 0); err == nil {
		t.Error("zero ttl accepted")
	}
	if !seen("a", "forever", time.Duration(1<<63-1)) || seen("a", "forever", time.Minute) {
		t.Error("huge ttl")
	}
	if _, err := NewMemoryReplayStore(WithCapacity(0)); err == nil {
		t.Error("size 0 accepted")
	}
	var zero MemoryReplayStore
	if fresh, err := zero.Seen(ctx, "a", "x", time.Minute); !fresh || err != nil {
		t.Errorf("zero value: %v %v", fresh, err)
	}
	long := strings.Repeat("n", 300)
	if !seen(long, long, time.Minute) || seen(long, long, time.Minute) {
		t.Error("long namespace and id")
	}
}

// TestMemoryReplayStoreModel runs random operations against the store and
// a plain model of it: a list of records with their namespace and expiry,
// a forgotten one removed at once, at most the capacity in all and an
// eighth of it in one namespace.
func TestMemoryReplayStoreModel(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	var fulls, shareFulls, refreshed int // so the model cannot pass without its edge cases
	for round := range 50 {
		clock := newTestClock()
		const capacity, share = 24, 3
		s, _ := NewMemoryReplayStore(WithCapacity(capacity), WithClock(clock.Now))
		type rec struct {
			ns, key string
			expires time.Time
		}
		var model []rec
		forgotten := map[rec]bool{}
		prune := func() {
			live := model[:0]
			for _, r := range model {
				if !r.expires.Before(clock.Now()) { // held through its last instant
					live = append(live, r)
				}
			}
			model = live
		}
		for op := range 600 {
			now := clock.Now()
			prune()
			ns := "ns" + strconv.Itoa(rng.IntN(12))
			key := strconv.Itoa(rng.IntN(6))
			switch rng.IntN(10) {
			case 0:
				clock.Advance(time.Duration(rng.IntN(90)) * time.Second)
			case 1:
				s.Forget(ctx, ns, key)
				for i := range model {
					if model[i].ns == ns && model[i].key == key {
						forgotten[rec{ns, key, time.Time{}}] = true
						model = append(model[:i], model[i+1:]...)
						break
					}
				}
			default:
				ttl := time.Duration(1+rng.IntN(120)) * time.Second
				held, inNS := false, 0
				for _, r := range model {
					held = held || r.ns == ns && r.key == key
					if r.ns == ns {
						inNS++
					}
				}
				wantFresh, wantErr := !held, false
				if !held && (len(model) >= capacity || inNS >= share) {
					wantFresh, wantErr = false, true
				}
				fresh, err := s.Seen(ctx, ns, key, ttl)
				if fresh != wantFresh || (err != nil) != wantErr {
					t.Fatalf("round %d op %d %s/%s: got %v %v, want %v err %v", round, op, ns, key, fresh, err, wantFresh, wantErr)
				}
				if wantErr && !errors.Is(err, ErrStoreFull) {
					t.Fatalf("error %v", err)
				}
				if wantErr && len(model) >= capacity {
					fulls++
				} else if wantErr {
					shareFulls++
				}
				if fresh && forgotten[rec{ns, key, time.Time{}}] {
					refreshed++
				}
				if fresh {
					model = append(model, rec{ns, key, now.Add(ttl)})
				}
			}
			if prune(); s.len() != len(model) {
				t.Fatalf("round %d op %d: Len %d, model %d", round, op, s.len(), len(model))
			}
		}
	}
	if fulls == 0 || shareFulls == 0 || refreshed == 0 {
		t.Errorf("model never full (%d), never at a share (%d) or never recorded a forgotten id again (%d)", fulls, shareFulls, refreshed)
	}
	t.Logf("full %d times, at a share %d times, forgotten ids recorded again %d times", fulls, shareFulls, refreshed)
}

// TestMemoryReplayStoreFloodLeavesOthersAlone: one namespace sending ten
// times the capacity in new ids, and refused requests giving theirs back,
// leave another namespace's next id fresh and replay none of the ids the
// flood recorded; the heap stays under the documented 150 bytes an id.
func TestMemoryReplayStoreFloodLeavesOthersAlone(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	const capacity = 100_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, _ := NewMemoryReplayStore(WithCapacity(capacity), WithClock(clock.Now))
	var recorded []string
	for i := range 10 * capacity {
		id := strconv.Itoa(i)
		fresh, err := s.Seen(ctx, "flood", id, time.Minute)
		if fresh {
			recorded = append(recorded, id)
		} else if !errors.Is(err, ErrStoreFull) {
			t.Fatalf("id %d: %v %v", i, fresh, err)
		}
		// Refused requests give their ids back.
		if fresh, _ := s.Seen(ctx, "refused", id, time.Minute); fresh {
			s.Forget(ctx, "refused", id)
		}
	}
	// Six more namespaces at their share fill the store but for an eighth.
	for ns := range 6 {
		for i := range capacity / 8 {
			s.Seen(ctx, "ns"+strconv.Itoa(ns), strconv.Itoa(i), time.Minute)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if len(recorded) != capacity/8 {
		t.Errorf("the flood recorded %d ids, want its share %d", len(recorded), capacity/8)
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 150*capacity {
		t.Errorf("heap grew %d bytes, more than 150 × %d", grown, capacity)
	}
	for _, id := range recorded {
		if fresh, _ := s.Seen(ctx, "flood", id, time.Minute); fresh {
			t.Fatalf("id %s of the flood replayed", id)
		}
	}
	if fresh, err := s.Seen(ctx, "honest", "1", time.Minute); !fresh || err != nil {
		t.Errorf("honest namespace after the flood: %v %v, want fresh", fresh, err)
	}
	t.Logf("%d ids held, heap %d bytes", s.len(), after.HeapAlloc-before.HeapAlloc)
	runtime.KeepAlive(s)
}
