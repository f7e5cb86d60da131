package apiguard

import (
	"context"
	"errors"
	"math/rand/v2"
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
// a plain model of it: a list of records with their expiry.
func TestMemoryReplayStoreModel(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	var fulls, refreshed int // so the model cannot pass without its edge cases
	for round := range 50 {
		clock := newTestClock()
		const capacity = 20
		s, _ := NewMemoryReplayStore(WithCapacity(capacity), WithClock(clock.Now))
		type rec struct {
			key       string
			expires   time.Time
			forgotten bool
		}
		var model []rec
		prune := func() {
			live := model[:0]
			for _, r := range model {
				if r.expires.After(clock.Now()) {
					live = append(live, r)
				}
			}
			model = live
		}
		for op := range 400 {
			now := clock.Now()
			prune()
			key := strconv.Itoa(rng.IntN(30))
			switch rng.IntN(10) {
			case 0:
				clock.Advance(time.Duration(rng.IntN(90)) * time.Second)
			case 1:
				s.Forget(ctx, "ns", key)
				for i := range model {
					if model[i].key == key {
						model[i].forgotten = true
					}
				}
			default:
				ttl := time.Duration(1+rng.IntN(120)) * time.Second
				held := false
				for _, r := range model {
					held = held || r.key == key && !r.forgotten
				}
				wantFresh, wantErr := !held, false
				if !held && len(model) >= capacity {
					wantFresh, wantErr = false, true
				}
				fresh, err := s.Seen(ctx, "ns", key, ttl)
				if fresh != wantFresh || (err != nil) != wantErr {
					t.Fatalf("round %d op %d key %s: got %v %v, want %v err %v", round, op, key, fresh, err, wantFresh, wantErr)
				}
				if wantErr && !errors.Is(err, ErrStoreFull) {
					t.Fatalf("error %v", err)
				}
				if wantErr {
					fulls++
				}
				for _, r := range model {
					if fresh && r.key == key && r.forgotten {
						refreshed++
						break
					}
				}
				if fresh {
					model = append(model, rec{key, now.Add(ttl), false})
				}
			}
			if prune(); s.Len() != len(model) {
				t.Fatalf("round %d op %d: Len %d, model %d", round, op, s.Len(), len(model))
			}
		}
	}
	if fulls == 0 || refreshed == 0 {
		t.Errorf("model never full (%d) or never recorded a forgotten id again (%d)", fulls, refreshed)
	}
	t.Logf("full %d times, forgotten ids recorded again %d times", fulls, refreshed)
}
