package apiguard

import (
	"context"
	"hash/maphash"
	"math"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MemoryLimiter is a Limiter that keeps its buckets in memory, for one
// process. The zero value is not usable; build one with NewMemoryLimiter.
//
// It holds at most its capacity of keys (WithCapacity) in least recently
// used order, in shards, so that goroutines on several cores rarely wait
// for each other; its tables hold no pointer, so the garbage collector does
// not scan them. A key is identified by a 64-bit
// keyed hash of its string (hash/maphash, seeded at random per limiter), so
// that an entry costs the same whatever the key's length (see below for
// its memory). Two keys share a bucket only
// if their hashes collide, a chance of about n²/2⁶⁵ among n live keys that
// no caller can aim for.
//
// Eviction never hands a key a fresh start. When a shard is full, a new key
// may take the place of a key whose buckets are all full again (which
// forgets nothing: a full bucket is what a new key gets). The shard looks
// at its least recently granted keys, and moves those still refilling to
// the front. When none of the keys it looks at can go, the new key is
// refused, with RetryAfter the time until the first of them is full.
//
// So that no one caller can fill it, keys are counted in groups, and a
// group holds at most its share of each shard:
//
//   - an IP key (ByIP, ByIPPrefix, or ByAll with such a part first) counts
//     in its network: the /16 of an IPv4 address, the /48 of an IPv6 one;
//     a network's share is an eighth of the capacity;
//   - any other key (ByClient, ByHeader, ByRoute, BucketFunc) counts in its
//     kind ("client", "header", "func", "route"), whose share is half the
//     capacity: a flood of junk header values fills at most half, and
//     never touches IP keys or keys of other kinds.
//
// A group at its share keeps the buckets of its keys (no debt is
// forgotten); its new keys count together in one bucket of the group's in
// each shard, so an attacker with a whole /16 or /48 (or inventing header
// values) gets at most one bucket per shard for its new keys, and so do
// honest callers new to that group meanwhile. It takes eight networks at
// their share, or two kinds, to fill the limiter, and a new caller in
// another group is answered as by an empty limiter until then. So count
// by what a caller cannot vary at will (ByClient, or the IP behind an
// IPAllow whitelist); a header a later check proves belongs with ByAll
// after the IP. At its bound the limiter uses about 100 bytes a key for
// one or two windows, 125 for up to four.
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
	seed     maphash.Seed
	now      func() time.Time // WithClock's clock; nil: time.Now, read as time.Since(epoch)
	epoch    time.Time
	store    store
	capacity int // the most keys it holds (WithCapacity)
}

// store is a MemoryLimiter's shards, for one number of windows: a
// *shards[V] of a tats type V.
type store interface {
	len() int
}

// defaultLimiterCapacity is the number of keys a MemoryLimiter holds
// unless WithCapacity says otherwise.
const defaultLimiterCapacity = 100_000

// NewMemoryLimiter returns a MemoryLimiter that admits a key's requests
// while every one of windows (at most 8) has a token for them.
// Its options are WithCapacity (the most keys it holds, at least 1; 100,000
// by default; a key costs about 100 bytes, see MemoryLimiter, which also
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
	capacity := c.capacityOr(defaultLimiterCapacity)
	ws := compile(windows)
	// With the default clock the limiter reads only the monotonic clock
	// (time.Since), which costs half of time.Now.
	l := &MemoryLimiter{seed: maphash.MakeSeed(), now: c.now, epoch: c.clock()(), capacity: capacity}
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
	return l.take(key, nil, int64(max(n, 0))), nil
}

// take takes n tokens for key, or for keyBytes when it is not nil, which it
// makes a string only when the key is new. The store's type is switched
// on, rather than called through the interface, so that keyBytes stays on
// the caller's stack.
func (l *MemoryLimiter) take(key string, keyBytes []byte, n int64) LimitResult {
	var h uint64
	if keyBytes != nil {
		h = maphash.Bytes(l.seed, keyBytes)
	} else {
		h = maphash.String(l.seed, key)
	}
	var now int64
	if l.now == nil {
		now = int64(time.Since(l.epoch))
	} else {
		now = int64(l.now().Sub(l.epoch))
	}
	switch s := l.store.(type) {
	case *shards[[1]int64]:
		return s.take(l, key, keyBytes, h, now, n)
	case *shards[[2]int64]:
		return s.take(l, key, keyBytes, h, now, n)
	case *shards[[4]int64]:
		return s.take(l, key, keyBytes, h, now, n)
	case *shards[[8]int64]:
		return s.take(l, key, keyBytes, h, now, n)
	}
	panic("apiguard: a MemoryLimiter of no known store")
}

// group returns the keyed hash of the group key belongs to (see
// MemoryLimiter): its network for an IP key ("ip:" and an address or
// prefix, alone or first in ByAll), its kind otherwise.
func (l *MemoryLimiter) group(key string) (hash uint64, ip bool) {
	k := key
	// ByAll's keys are length-prefixed parts: "12:ip:192.0.2.1|...".
	if i := strings.IndexByte(k, ':'); i > 0 && i <= 4 && k[0] >= '0' && k[0] <= '9' {
		if n, err := strconv.Atoi(k[:i]); err == nil && n <= len(k)-i-1 {
			k = k[i+1 : i+1+n]
		}
	}
	if ip, ok := strings.CutPrefix(k, "ip:"); ok {
		var buf [64]byte
		b := append(buf[:0], "net:"...)
		if !strings.Contains(ip, ":") {
			// IPv4, canonical dotted: its /16 is its first two numbers.
			if i := strings.IndexByte(ip, '.'); i > 0 {
				if j := strings.IndexByte(ip[i+1:], '.'); j > 0 {
					return maphash.Bytes(l.seed, append(b, ip[:i+1+j]...)), true
				}
			}
		} else {
			a, err := netip.ParseAddr(ip)
			if err != nil {
				if p, perr := netip.ParsePrefix(ip); perr == nil {
					a, err = p.Addr(), nil
				}
			}
			if err == nil {
				b = netip.PrefixFrom(a.WithZone(""), 48).Masked().AppendTo(b)
				return maphash.Bytes(l.seed, b), true
			}
		}
	}
	if i := strings.IndexByte(k, ':'); i >= 0 {
		k = k[:i]
	}
	return maphash.String(l.seed, "kind:"+k), false
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

// plan is what admit decided: which window refuses (-1: none), and how
// long that window's wait is.
type plan struct {
	refuser int
	wait    int64
	changed bool // tats were updated
}

// admit takes n tokens at now from the buckets whose tats are given (a tat
// below now is a full bucket): it moves tats on when every window grants
// them, and otherwise reports the window that refuses and changes nothing.
// It is the part of a take that needs the shard's lock; plan.result then
// makes the LimitResult from copies, without it.
func admit(ws []gcra, tats []int64, now, n int64) plan {
	var next [maxWindows]int64
	p := plan{refuser: -1}
	for i := range ws {
		w := &ws[i]
		tat := max(tats[i], now)
		k := min(n, w.limit+1) // n above the limit is refused; keep n*t from overflowing
		next[i] = tat + k*w.t
		if over := next[i] - now - w.tol; n > 0 && over > 0 && (p.refuser < 0 || over > p.wait) {
			p.refuser, p.wait = i, over
		}
	}
	if p.refuser < 0 && n > 0 {
		copy(tats, next[:len(ws)])
		p.changed = true
	}
	return p
}

// result is the LimitResult of p, for the tats before (old) and after
// (tats) admit.
func (p plan) result(ws []gcra, old, tats []int64, now int64) LimitResult {
	if p.refuser >= 0 {
		w := &ws[p.refuser]
		tat := max(old[p.refuser], now)
		return LimitResult{
			Limit:      int(w.limit),
			Remaining:  int(max(now+w.tol-tat, 0) / w.t),
			Reset:      time.Duration(tat - now),
			RetryAfter: time.Duration(p.wait),
		}
	}
	res := LimitResult{Allowed: true, Remaining: math.MaxInt}
	for i := range ws {
		w := &ws[i]
		next := tats[i]
		if !p.changed { // n of 0: the state as it stands
			next = max(next, now)
		}
		rem := int(max(now+w.tol-next, 0) / w.t)
		reset := time.Duration(next - now)
		if rem < res.Remaining || rem == res.Remaining && reset > res.Reset {
			res.Limit, res.Remaining, res.Reset = int(w.limit), rem, reset
		}
	}
	return res
}

// tats is the state of one key: the theoretical arrival time of each
// window, in nanoseconds since the limiter's epoch. It lives in the key's
// node of its shard's keyLRU.
type tats interface {
	[1]int64 | [2]int64 | [4]int64 | [8]int64
}

type shards[V tats] struct {
	ws     []gcra
	shift  uint // a hash's top bits pick its shard
	shards []shard[V]
}

// keyLRU is a shard's keys, most recently granted first: a map from a key's
// hash to its node, and the nodes in one slice, linked by index. It holds
// no pointer, so that the garbage collector never scans it, and it finds a
// key with one map lookup. It never evicts by itself: take makes room
// first.
type keyLRU[V tats] struct {
	index      map[uint64]int32
	nodes      []node[V]
	head, tail int32 // most and least recently granted; -1 when empty
	free       int32 // a chain of unused nodes by next; -1 when none
}

// node is a key's entry: its buckets, and the group it counts in.
type node[V tats] struct {
	tats       V
	group      uint64
	key        uint64
	prev, next int32
}

func (l *keyLRU[V]) init() {
	l.index = make(map[uint64]int32)
	l.head, l.tail, l.free = -1, -1, -1
}

func (l *keyLRU[V]) len() int { return len(l.index) }

// find returns the node of key, if held.
func (l *keyLRU[V]) find(key uint64) (int32, bool) {
	i, ok := l.index[key]
	return i, ok
}

// oldest returns the least recently granted node, or -1.
func (l *keyLRU[V]) oldest() int32 { return l.tail }

// add holds key, in a node of full buckets at the front, and returns it.
func (l *keyLRU[V]) add(key, group uint64) int32 {
	i := l.free
	if i >= 0 {
		l.free = l.nodes[i].next
	} else {
		i = int32(len(l.nodes))
		l.nodes = append(l.nodes, node[V]{})
	}
	l.nodes[i] = node[V]{group: group, key: key, prev: -1, next: -1}
	l.index[key] = i
	l.pushFront(i)
	return i
}

// touch moves node i to the front.
func (l *keyLRU[V]) touch(i int32) {
	if l.head != i {
		l.unlink(i)
		l.pushFront(i)
	}
}

// remove forgets node i.
func (l *keyLRU[V]) remove(i int32) {
	l.unlink(i)
	delete(l.index, l.nodes[i].key)
	l.nodes[i] = node[V]{next: l.free}
	l.free = i
}

func (l *keyLRU[V]) unlink(i int32) {
	e := &l.nodes[i]
	if e.prev >= 0 {
		l.nodes[e.prev].next = e.next
	} else {
		l.head = e.next
	}
	if e.next >= 0 {
		l.nodes[e.next].prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (l *keyLRU[V]) pushFront(i int32) {
	e := &l.nodes[i]
	e.prev, e.next = -1, l.head
	if l.head >= 0 {
		l.nodes[l.head].prev = i
	}
	l.head = i
	if l.tail < 0 {
		l.tail = i
	}
}

type shard[V tats] struct {
	// What every take writes, on the lock's cache line, so that
	// goroutines on other cores taking in turn move as few lines as they
	// can between them.
	mu   sync.Mutex
	last int64 // the latest time the shard has seen: its time never runs backwards

	lru    keyLRU[V]
	groups map[uint64]int32 // keys held per group
	cap    int
	share  int      // the most keys of one network
	kinds  int      // the most keys of one kind that is not an IP
	_      [32]byte // keep shards' locks on separate cache lines
}

// limiterShares is how many groups at their share fill a MemoryLimiter.
const limiterShares = 8

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
		sh.share = max(sh.cap/limiterShares, 1)
		sh.kinds = max(sh.cap/2, 1)
		sh.groups = make(map[uint64]int32)
		sh.lru.init()
	}
	return s, nil
}

func (s *shards[V]) take(l *MemoryLimiter, key string, keyBytes []byte, h uint64, now, n int64) LimitResult {
	var old, cur [maxWindows]int64
	nw := len(s.ws)
	sh := &s.shards[h>>s.shift]
	sh.mu.Lock()
	// A goroutine that read the clock before others took the lock, or a
	// clock stepping backwards, sees the shard's latest time.
	if now < sh.last {
		now = sh.last
	} else {
		sh.last = now
	}
	i, ok := sh.lru.find(h)
	if !ok {
		return s.takeNew(sh, l, key, keyBytes, h, now, n)
	}
	// A key held: only admit and the write-back need the lock; the result
	// is worked out from copies after it.
	e := &sh.lru.nodes[i]
	for w := 0; w < nw; w++ {
		cur[w] = e.tats[w]
	}
	old = cur
	p := admit(s.ws, cur[:nw], now, n)
	if p.changed {
		for w := 0; w < nw; w++ {
			e.tats[w] = cur[w]
		}
		sh.lru.touch(i)
	}
	sh.mu.Unlock()
	return p.result(s.ws, old[:nw], cur[:nw], now)
}

// takeNew is take of a key sh does not hold. It is called with sh locked,
// and unlocks it.
func (s *shards[V]) takeNew(sh *shard[V], l *MemoryLimiter, key string, keyBytes []byte, h uint64, now, n int64) LimitResult {
	defer sh.mu.Unlock()
	// Its group is worked out only now, off the hot path.
	if keyBytes != nil {
		key = string(keyBytes)
	}
	group, ip := l.group(key)
	share := sh.kinds
	if ip {
		share = sh.share
	}
	i, ok := int32(-1), false
	if int(sh.groups[group]) >= share {
		// The group holds its share of the shard: its new keys count in
		// one bucket of the group's, in this shard (the group may so
		// exceed its share by one key).
		mask := uint64(1)<<s.shift - 1 // all ones for one shard
		h = h&^mask | group&mask
		i, ok = sh.lru.find(h)
	}
	var old, cur [maxWindows]int64
	nw := len(s.ws)
	for w := 0; w < nw; w++ {
		if ok {
			cur[w] = sh.lru.nodes[i].tats[w]
		} else {
			cur[w] = math.MinInt64 // a full bucket
		}
	}
	old = cur
	p := admit(s.ws, cur[:nw], now, n)
	if p.changed {
		if !ok {
			if sh.lru.len() >= sh.cap {
				if wait, room := sh.evict(now, nw); !room {
					return LimitResult{Limit: int(s.ws[0].limit), Reset: time.Duration(wait), RetryAfter: time.Duration(wait)}
				}
			}
			i = sh.lru.add(h, group)
			sh.groups[group]++
		} else {
			sh.lru.touch(i)
		}
		e := &sh.lru.nodes[i]
		for w := 0; w < nw; w++ {
			e.tats[w] = cur[w]
		}
	}
	return p.result(s.ws, old[:nw], cur[:nw], now)
}

// evict removes a key whose buckets are all full, if one of the evictScan
// least recently granted keys is; it moves the others to the front. It
// reports whether it made room, and if not the least time until one of the
// keys it looked at is full.
func (sh *shard[V]) evict(now int64, nw int) (wait int64, room bool) {
	wait = math.MaxInt64
	for range evictScan {
		i := sh.lru.oldest()
		if i < 0 {
			return 0, true
		}
		e := &sh.lru.nodes[i]
		var w int64
		for k := 0; k < nw; k++ {
			w = max(w, e.tats[k]-now)
		}
		if w <= 0 {
			if sh.groups[e.group]--; sh.groups[e.group] <= 0 {
				delete(sh.groups, e.group)
			}
			sh.lru.remove(i)
			return 0, true
		}
		wait = min(wait, w)
		sh.lru.touch(i)
	}
	return wait, false
}

func (s *shards[V]) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.lru.len()
		sh.mu.Unlock()
	}
	return n
}
