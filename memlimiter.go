package apiguard

import (
	"context"
	"hash/maphash"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// MemoryLimiter is a Limiter that keeps its buckets in memory, for one
// process. The zero value is not usable; build one with NewMemoryLimiter.
//
// It holds at most its capacity of keys (WithCapacity) in LRU caches
// (github.com/hashicorp/golang-lru/v2), sharded so that goroutines on
// several cores rarely wait for each other. A key is identified by a 64-bit
// keyed hash of its string (hash/maphash, seeded at random per limiter), so
// that an entry costs the same whatever the key's length: about 120 bytes
// for one or two windows, 140 for up to four. Two keys share a bucket only
// if their hashes collide, a chance of about n²/2⁶⁵ among n live keys that
// no caller can aim for.
//
// Eviction never hands a key a fresh start. When a shard is full, a new key
// may take the place of a key whose buckets are all full again (which
// forgets nothing: a full bucket is what a new key gets). The shard looks
// at its least recently granted keys, and moves those still refilling to
// the front. When none of the keys it looks at can go, the new key is
// refused, with RetryAfter the time until the first of them is full: under
// a flood of new keys (an attacker cycling through addresses) new keys
// wait, and keys already counted keep their debt. So count by what a
// caller cannot vary at will: the authenticated client (ByClient()), or
// the IP behind an IPAllow whitelist. Keys taken from headers, or IPv6
// addresses without a whitelist, let one caller fill the limiter and make
// every new caller wait; give such a limiter a capacity above its honest
// callers' number, or put a per-IP limit in front of it.
//
// The clock (WithClock) may step backwards: the limiter's time then
// stands still until the clock catches up, so no tokens are minted. With
// the default clock, time.Now, steps of the wall clock do not matter at
// all, as the limiter measures time on the monotonic clock.
//
// A MemoryLimiter is safe for concurrent use, and exact: however many
// goroutines take from one key, no more than its tokens are granted. It
// starts no goroutine.
type MemoryLimiter struct {
	seed  maphash.Seed
	now   func() time.Time
	epoch time.Time
	store store
}

// store is a MemoryLimiter's shards, for one number of windows.
type store interface {
	take(h uint64, now, n int64) LimitResult
	len() int
}

// defaultLimiterCapacity is the number of keys a MemoryLimiter holds
// unless WithCapacity says otherwise.
const defaultLimiterCapacity = 100_000

// NewMemoryLimiter returns a MemoryLimiter that admits a key's requests
// while every one of windows (at most 8) has a token for them.
// Its options are WithCapacity (the most keys it holds, at least 1; 100,000
// by default; a key costs about 120 bytes, see MemoryLimiter, which also
// says what happens when it is full) and WithClock (give it the clock given
// to the Guard; time.Now by default). It fails if windows are invalid, or
// if an option is out of range or does not apply to it.
func NewMemoryLimiter(windows []Window, opts ...Option) (*MemoryLimiter, error) {
	if err := checkWindows(windows); err != nil {
		return nil, err
	}
	c, err := configure(toLimiter, opts)
	if err != nil {
		return nil, err
	}
	now, capacity := c.clock(), c.capacityOr(defaultLimiterCapacity)
	ws := compile(windows)
	l := &MemoryLimiter{seed: maphash.MakeSeed(), now: now, epoch: now()}
	switch n := len(ws); {
	case n == 1:
		l.store, err = newShards[[1]int64](ws, capacity)
	case n == 2:
		l.store, err = newShards[[2]int64](ws, capacity)
	case n <= 4:
		l.store, err = newShards[[4]int64](ws, capacity)
	default:
		l.store, err = newShards[[8]int64](ws, capacity)
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Take implements Limiter. It never returns an error.
func (l *MemoryLimiter) Take(_ context.Context, key string, n int) (LimitResult, error) {
	h := maphash.String(l.seed, key)
	now := int64(l.now().Sub(l.epoch))
	return l.store.take(h, now, int64(max(n, 0))), nil
}

// len returns the number of keys l holds.
func (l *MemoryLimiter) len() int { return l.store.len() }

var _ Limiter = (*MemoryLimiter)(nil)

// gcra is a window compiled for the generic cell rate algorithm, the exact
// integer form of a token bucket: a key's state is the theoretical arrival
// time (tat) at which its bucket is full again. Taking n tokens moves tat
// n*t later; that is allowed while tat stays within tol of now.
type gcra struct {
	limit int64 // Window.Limit
	t     int64 // emission interval, ns: Period/Limit rounded up
	tol   int64 // limit*t: how far past now a bucket's tat may run
}

func compile(ws []Window) []gcra {
	out := make([]gcra, len(ws))
	for i, w := range ws {
		l := int64(w.Limit)
		t := (int64(w.Period) + l - 1) / l
		out[i] = gcra{limit: l, t: t, tol: l * t}
	}
	return out
}

// decide takes n tokens at now from the buckets whose tats are given (a
// tat below now is a full bucket), updating tats only when every window
// grants them. It reports the result and whether tats changed.
func decide(ws []gcra, tats []int64, now, n int64) (LimitResult, bool) {
	var next [maxWindows]int64
	var wait int64
	refuser := -1
	for i := range ws {
		w := &ws[i]
		tat := max(tats[i], now)
		k := min(n, w.limit+1) // n above the limit is refused; keep n*t from overflowing
		next[i] = tat + k*w.t
		if over := next[i] - now - w.tol; n > 0 && over > 0 && (refuser < 0 || over > wait) {
			refuser, wait = i, over
		}
	}
	if refuser >= 0 {
		w := &ws[refuser]
		tat := max(tats[refuser], now)
		return LimitResult{
			Limit:      int(w.limit),
			Remaining:  int(max(now+w.tol-tat, 0) / w.t),
			Reset:      time.Duration(tat - now),
			RetryAfter: time.Duration(wait),
		}, false
	}
	res := LimitResult{Allowed: true, Remaining: math.MaxInt}
	for i := range ws {
		w := &ws[i]
		rem := int(max(now+w.tol-next[i], 0) / w.t)
		reset := time.Duration(next[i] - now)
		if rem < res.Remaining || rem == res.Remaining && reset > res.Reset {
			res.Limit, res.Remaining, res.Reset = int(w.limit), rem, reset
		}
		tats[i] = next[i]
	}
	return res, n > 0
}

// tats is the state of one key: the theoretical arrival time of each
// window, in nanoseconds since the limiter's epoch. It lives in the LRU's
// entry, which is of one size class (80 bytes) for one window or two.
type tats interface {
	[1]int64 | [2]int64 | [4]int64 | [8]int64
}

type shards[V tats] struct {
	ws     []gcra
	shift  uint // a hash's top bits pick its shard
	shards []shard[V]
}

type shard[V tats] struct {
	mu   sync.Mutex
	lru  *simplelru.LRU[uint64, V]
	cap  int
	last int64    // the latest time the shard has seen: its time never runs backwards
	_    [32]byte // keep shards' locks on separate cache lines
}

// evictScan is how many of its least recently granted keys a full shard
// looks at for one whose buckets are full.
const evictScan = 8

func newShards[V tats](ws []gcra, capacity int) (*shards[V], error) {
	n := 1
	for n < 8*runtime.GOMAXPROCS(0) && n < 256 {
		n <<= 1
	}
	for n > 1 && capacity/n < 1024 {
		n >>= 1
	}
	s := &shards[V]{ws: ws, shards: make([]shard[V], n), shift: 64}
	for ; n > 1; n >>= 1 {
		s.shift--
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.cap = capacity / len(s.shards)
		var err error
		// The LRU never evicts by itself: take makes room first.
		if sh.lru, err = simplelru.NewLRU[uint64, V](sh.cap, nil); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *shards[V]) take(h uint64, now, n int64) LimitResult {
	var cur [maxWindows]int64
	nw := len(s.ws)
	sh := &s.shards[h>>s.shift]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	// A goroutine that read the clock before others took the lock, or a
	// clock stepping backwards, sees the shard's latest time.
	if now < sh.last {
		now = sh.last
	} else {
		sh.last = now
	}
	v, ok := sh.lru.Peek(h)
	for i := 0; i < nw; i++ {
		if ok {
			cur[i] = v[i]
		} else {
			cur[i] = math.MinInt64 // a full bucket
		}
	}
	res, changed := decide(s.ws, cur[:nw], now, n)
	if !changed {
		return res
	}
	if !ok && sh.lru.Len() >= sh.cap {
		if wait, room := sh.evict(now, nw); !room {
			return LimitResult{Limit: int(s.ws[0].limit), Reset: time.Duration(wait), RetryAfter: time.Duration(wait)}
		}
	}
	for i := 0; i < nw; i++ {
		v[i] = cur[i]
	}
	sh.lru.Add(h, v)
	return res
}

// evict removes a key whose buckets are all full, if one of the evictScan
// least recently granted keys is; it moves the others to the front. It
// reports whether it made room, and if not the least time until one of the
// keys it looked at is full.
func (sh *shard[V]) evict(now int64, nw int) (wait int64, room bool) {
	wait = math.MaxInt64
	for range evictScan {
		k, v, ok := sh.lru.GetOldest()
		if !ok {
			return 0, true
		}
		var w int64
		for i := 0; i < nw; i++ {
			w = max(w, v[i]-now)
		}
		if w <= 0 {
			sh.lru.RemoveOldest()
			return 0, true
		}
		wait = min(wait, w)
		sh.lru.Get(k)
	}
	return wait, false
}

func (s *shards[V]) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.lru.Len()
		sh.mu.Unlock()
	}
	return n
}
