package apiguard

import (
	"context"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// state returns the tats of key in l, to show what a Take changed.
func (l *MemoryLimiter) state(key string) ([]int64, bool) {
	h := maphash.String(l.seed, key)
	switch s := l.store.(type) {
	case *shards[[1]int64]:
		return peekShards(s, h)
	case *shards[[2]int64]:
		return peekShards(s, h)
	case *shards[[4]int64]:
		return peekShards(s, h)
	case *shards[[8]int64]:
		return peekShards(s, h)
	}
	panic("unknown store")
}

func peekShards[V tats](s *shards[V], h uint64) ([]int64, bool) {
	sh := &s.shards[h>>s.shift]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, ok := sh.lru.find(h)
	if !ok {
		return nil, false
	}
	out := make([]int64, len(s.ws))
	for w := range out {
		out[w] = sh.lru.nodes[i].tats[w]
	}
	return out, true
}

// TestClockBackwardsMintsNoTokens steps the clock back and forth around a
// drained bucket (x/time/rate's Limiter would hand out a second bucketful).
func TestClockBackwardsMintsNoTokens(t *testing.T) {
	clock := newTestClock()
	l := mustLimiter(t, clock, []Window{PerMinute(10), PerHour(100)})
	for range 10 {
		take(t, l, "k", 1)
	}
	for _, step := range []time.Duration{-time.Hour, 30 * time.Minute, 30 * time.Minute, 6*time.Second - 1} {
		clock.Advance(step)
		if res := take(t, l, "k", 1); res.Allowed {
			t.Fatalf("after a step of %v: a token was minted", step)
		}
	}
	clock.Advance(1) // 6 s after the bucket was drained
	if res := take(t, l, "k", 1); !res.Allowed {
		t.Fatal("the token due 6 s after draining was refused")
	}
	if res := take(t, l, "k", 1); res.Allowed {
		t.Fatal("two tokens in 6 s")
	}
}

// TestStaleClockReadNotRefused pins a bug the parallel benchmark found: a
// goroutine that read the clock, then waited for the lock while another
// took a token at a later time, was refused as if its request came before
// the other's. Both tokens were there at the later time.
func TestStaleClockReadNotRefused(t *testing.T) {
	l := mustLimiter(t, newTestClock(), []Window{{Limit: 2, Period: 2 * time.Second}})
	h := maphash.String(l.seed, "k")
	s := int64(time.Second)
	for i, step := range []struct {
		now     int64
		allowed bool
	}{
		{10 * s, true},
		{12 * s, true},      // the bucket is full again: one token of two taken
		{10*s + s/2, true},  // read before the previous take: the second token
		{12 * s, false},     // none left
		{11*s + s/2, false}, // a stale read mints nothing
		{13 * s, true},
	} {
		if res := l.store.(*shards[[1]int64]).take(l, "", nil, h, step.now, 1); res.Allowed != step.allowed {
			t.Errorf("take %d at %v: %+v, want allowed %v", i, time.Duration(step.now), res, step.allowed)
		}
	}
}

// TestEvictionKeepsDebts fills a small limiter and shows that a drained
// bucket is never evicted for a fresh one, and that new keys wait while no
// bucket can go.
func TestEvictionKeepsDebts(t *testing.T) {
	clock := newTestClock()
	l := mustLimiter(t, clock, []Window{PerMinute(2)}, WithCapacity(4))
	take(t, l, "drained", 2)
	for _, k := range []string{"b", "c", "d"} {
		take(t, l, k, 1) // each full again in 30 s
	}
	res := take(t, l, "new", 1)
	if res.Allowed || res.RetryAfter != 30*time.Second {
		t.Fatalf("a new key in a full limiter: %+v, want refused for 30s", res)
	}
	if res := take(t, l, "drained", 1); res.Allowed {
		t.Fatal("the drained key got a fresh start")
	}
	clock.Advance(30 * time.Second)
	for _, k := range []string{"new", "e", "f"} {
		if res := take(t, l, k, 1); !res.Allowed {
			t.Fatalf("%s once b, c, d are full: %+v", k, res)
		}
	}
	if res := take(t, l, "g", 1); res.Allowed {
		t.Fatal("a fifth key in a limiter of 4")
	}
	if res := take(t, l, "drained", 2); res.Allowed {
		t.Fatal("the drained key has two tokens 30 s after draining")
	}
	if res := take(t, l, "drained", 1); !res.Allowed {
		t.Fatal("the drained key's refilled token was refused")
	}
	if n := l.len(); n != 4 {
		t.Errorf("%d keys held, want 4", n)
	}
}

func heapAlloc() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestMemoryBounded feeds 1,000,000 distinct client IPs through the
// wrapper's key into a limiter of 100,000 keys: it holds no more than its
// capacity, and its heap is about capacity × 100 bytes.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("feeds a million keys")
	}
	capacity, feed := 100_000, 1_000_000
	if rateLimitRace {
		capacity, feed = 10_000, 100_000 // the race detector is slow; the bound is the same
	}
	for _, flood := range []struct {
		name string
		step time.Duration
	}{{"clock running", time.Millisecond}, {"clock stopped", 0}} {
		t.Run(flood.name, func(t *testing.T) {
			clock := newTestClock()
			base := heapAlloc()
			l := mustLimiter(t, clock, []Window{PerMinute(20)}, WithCapacity(capacity))
			g := MustNew(nil)
			r := ipRequest("")
			admitted := 0
			for i := range feed {
				r.RemoteAddr = "10." + strconv.Itoa(i>>16) + "." + strconv.Itoa(i>>8&0xff) + "." + strconv.Itoa(i&0xff) + ":1"
				key, _ := ByIP().key(g, r, nil)
				if take(t, l, key, 1).Allowed {
					admitted++
				}
				clock.Advance(flood.step)
			}
			grown := heapAlloc() - base
			held := l.len()
			t.Logf("%d IPs fed, %d admitted, %d keys held, heap +%d bytes (%.1f per key held)",
				feed, admitted, held, grown, float64(grown)/float64(held))
			if held > capacity {
				t.Errorf("%d keys held, capacity %d", held, capacity)
			}
			if grown > uint64(capacity)*140 {
				t.Errorf("heap grew %d bytes, more than capacity × 140", grown)
			}
			runtime.KeepAlive(l)
		})
	}
}

// TestBytesPerKey measures the heap of a limiter holding 1,000,000 keys.
func TestBytesPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("holds a million keys")
	}
	keys := 1_000_000
	if rateLimitRace {
		keys = 100_000
	}
	for _, ws := range [][]Window{{PerMinute(20)}, {PerMinute(10), PerHour(100)}, {Window{5, time.Second}, PerMinute(10), PerHour(100), PerHour(24 * 100)}} {
		clock := newTestClock()
		base := heapAlloc()
		// Room to spare: keys spread over shards unevenly.
		l := mustLimiter(t, clock, ws, WithCapacity(keys*11/10))
		var buf []byte
		for i := range keys {
			// Addresses spread over every /16, each network at a few keys.
			buf = netip.AddrFrom4([4]byte{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)}).AppendTo(append(buf[:0], "ip:"...))
			l.Take(context.Background(), string(buf), 1)
		}
		grown := heapAlloc() - base
		if n := l.len(); n != keys {
			t.Fatalf("%d keys held, want %d", n, keys)
		}
		perKey := float64(grown) / float64(keys)
		t.Logf("%d windows: %.1f bytes per key after %d keys", len(ws), perKey, keys)
		if len(ws) <= 2 && perKey >= 125 {
			t.Errorf("%d windows: %.1f bytes per key, want under 125", len(ws), perKey)
		}
		runtime.KeepAlive(l)
	}
}

// TestMatchesTokenBucket compares the limiter with x/time/rate's token
// bucket on random requests under a clock running forward.
func TestMatchesTokenBucket(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, w := range []Window{Window{5, time.Second}, PerMinute(20), PerMinute(7), PerHour(100)} {
		clock := newTestClock()
		l := mustLimiter(t, clock, []Window{w})
		ref := rate.NewLimiter(rate.Every(w.Period/time.Duration(w.Limit)), w.Limit)
		interval := w.Period / time.Duration(w.Limit)
		for i := range 5000 {
			// Steps of whole milliseconds plus a little, away from the
			// instants at which float and integer arithmetic could differ.
			clock.Advance(time.Duration(rng.Int64N(int64(interval)*2/int64(time.Millisecond)))*time.Millisecond + 1)
			n := 1 + rng.IntN(2)
			got := take(t, l, "k", n).Allowed
			if want := ref.AllowN(clock.Now(), n); got != want {
				t.Fatalf("%v request %d (n=%d): allowed %v, x/time/rate %v", w, i, n, got, want)
			}
		}
	}
}

// FuzzMemoryLimiter runs a sequence of takes under a clock that may step
// either way and checks that no tokens are minted: since its first grant,
// at time f, no window has granted more than its Limit plus what refills
// from f to the latest time seen (GCRA's tat is at least f plus the tokens
// granted, and at most the latest time plus the window). It also checks
// that a refusal changes nothing and that results are consistent.
func FuzzMemoryLimiter(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 0, 1, 0, 1, 200, 1, 0, 1})
	f.Add([]byte{10, 3, 0x80, 1, 0x7f, 2, 0, 9, 0, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		clock := newTestClock()
		latest := clock.Now()
		var first time.Time // of the first grant
		ws := []Window{{Limit: 3, Period: 3 * time.Second}, {Limit: 5, Period: 20 * time.Second}}
		l := mustLimiter(t, clock, ws)
		granted := 0
		for i := 0; i+1 < len(ops); i += 2 {
			clock.Advance(time.Duration(int8(ops[i])) * 100 * time.Millisecond)
			if clock.Now().After(latest) {
				latest = clock.Now()
			}
			n := int(ops[i+1] % 7)
			before, _ := l.state("k")
			res := take(t, l, "k", n)
			after, _ := l.state("k")
			if !res.Allowed {
				if fmt.Sprint(before) != fmt.Sprint(after) {
					t.Fatalf("op %d: a refusal changed %v to %v", i/2, before, after)
				}
				if res.RetryAfter <= 0 || res.Remaining >= n {
					t.Fatalf("op %d: refused n=%d with %+v", i/2, n, res)
				}
				continue
			}
			if res.Remaining < 0 || res.Remaining > res.Limit || res.Reset < 0 || res.RetryAfter != 0 {
				t.Fatalf("op %d: %+v", i/2, res)
			}
			if n == 0 {
				continue
			}
			if granted == 0 {
				first = clock.Now()
			}
			granted += n
			for _, w := range ws {
				elapsed := latest.Sub(first)
				most := w.Limit + int(elapsed/(w.Period/time.Duration(w.Limit)))
				if granted > most {
					t.Fatalf("op %d: %d granted by %v, at most %d in %v", i/2, granted, w, most, elapsed)
				}
			}
		}
	})
}

// TestLimiterFloodsLeaveOthersAlone: with hourly windows and a frozen
// clock (so no bucket is full again and nothing can be evicted), a flood of
// new keys from 65,536 addresses of one /16, from a whole IPv6 /48, or of
// junk header values, takes only its share: a new honest caller elsewhere
// is answered exactly as by an empty limiter, drained buckets stay drained,
// and the limiter holds no more than its capacity (regression: a new
// honest client got 429 with Retry-After 31 s).
func TestLimiterFloodsLeaveOthersAlone(t *testing.T) {
	ws := []Window{PerHour(10)}
	const capacity = 8192
	ctx := context.Background()
	// Not among them: a new key of the junk's own kind (header:X-Merchant-Id),
	// which shares the kind's bucket with the junk (see MemoryLimiter).
	honest := []string{"ip:198.51.100.7", "ip:2001:db8:99::/64", "client:alice", "func:k", "13:ip:192.0.2.1|7:route:x|"}
	want := map[string]LimitResult{}
	for _, k := range honest {
		want[k], _ = mustLimiter(t, newTestClock(), ws).Take(ctx, k, 1)
	}
	floods := map[string]func(i int) string{
		"a /16": func(i int) string {
			return "ip:" + netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}).String()
		},
		"a /48": func(i int) string {
			a := [16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, byte(i >> 8), byte(i)}
			return "ip:" + netip.PrefixFrom(netip.AddrFrom16(a), 64).String()
		},
		"junk headers": func(i int) string { return "header:X-Merchant-Id:junk-" + strconv.Itoa(i) },
		"all three": func(i int) string {
			switch i % 3 {
			case 0:
				return "ip:" + netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}).String()
			case 1:
				return "header:X-Merchant-Id:junk-" + strconv.Itoa(i)
			}
			a := [16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, byte(i >> 8), byte(i)}
			return "ip:" + netip.PrefixFrom(netip.AddrFrom16(a), 64).String()
		},
	}
	for name, key := range floods {
		t.Run(name, func(t *testing.T) {
			clock := newTestClock()
			l := mustLimiter(t, clock, ws, WithCapacity(capacity))
			// The flood's first key drains its bucket.
			for range 10 {
				take(t, l, key(0), 1)
			}
			for i := 1; i < 65_536; i++ {
				take(t, l, key(i), 1)
			}
			if res := take(t, l, key(0), 1); res.Allowed {
				t.Error("the drained key got a fresh start")
			}
			if n := l.len(); n > capacity {
				t.Errorf("%d keys held, capacity %d", n, capacity)
			}
			for _, k := range honest {
				if got, _ := l.Take(ctx, k, 1); got != want[k] {
					t.Errorf("%s after the flood: %+v, want %+v", k, got, want[k])
				}
			}
		})
	}
}

// FuzzLimiterGroup: the group of any key is found without a panic, and an
// IPv4 key's group is its /16, an IPv6 key's its /48, alone or first in
// ByAll.
func FuzzLimiterGroup(f *testing.F) {
	for _, k := range []string{"ip:192.0.2.1", "ip:2001:db8::/64", "ip:unknown", "12:ip:192.0.2.1|", "client:x", "", ":", "9999:ip:", "ip:1.2", "ip:fe80::1%eth0"} {
		f.Add(k)
	}
	l := mustLimiter(f, newTestClock(), []Window{PerMinute(1)})
	f.Fuzz(func(t *testing.T, key string) {
		g, ip := l.group(key)
		a, err := netip.ParseAddr(strings.TrimPrefix(key, "ip:"))
		if !strings.HasPrefix(key, "ip:") || err != nil {
			return
		}
		if !ip {
			t.Fatalf("%q: not grouped as an IP", key)
		}
		bits := 48
		if a.Is4() {
			bits = 16
		}
		net := netip.PrefixFrom(a.WithZone(""), bits).Masked().Addr()
		if a.Is4() {
			return // its group is the text of its first two numbers; same for every address of the /16
		}
		if g2, _ := l.group("ip:" + net.String()); g2 != g {
			t.Fatalf("%q: group differs from its /48's", key)
		}
	})
}
