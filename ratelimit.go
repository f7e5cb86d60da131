package apiguard

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// A Window is one rate of a limit: a token bucket that holds Limit tokens
// and refills at Limit tokens per Period, one every Period/Limit. A key may
// spend its whole Limit at once and then Limit per Period; a request costs
// one token. (So a span of one Period admits at most 2×Limit-1 requests: a
// full bucket, then what refills. A key that keeps to Limit per Period is
// never refused.)
//
// A limit of several windows (10 per minute and 100 per hour) admits a
// request only when every window has a token for it, and a request refused
// by one window takes nothing from the others.
type Window struct {
	Limit  int           // tokens the bucket holds, and refills per Period; at least 1
	Period time.Duration // the time in which Limit tokens refill; at most MaxPeriod
}

// MaxPeriod is the longest Period of a Window.
const MaxPeriod = 366 * 24 * time.Hour

// MaxWindows is the most windows one Limiter counts.
const MaxWindows = 8

// PerSecond returns the Window of n requests per second.
func PerSecond(n int) Window { return Window{Limit: n, Period: time.Second} }

// PerMinute returns the Window of n requests per minute.
func PerMinute(n int) Window { return Window{Limit: n, Period: time.Minute} }

// PerHour returns the Window of n requests per hour.
func PerHour(n int) Window { return Window{Limit: n, Period: time.Hour} }

// String returns the window as "10/1m0s".
func (w Window) String() string { return strconv.Itoa(w.Limit) + "/" + w.Period.String() }

// checkWindows reports whether ws is a valid limit.
func checkWindows(ws []Window) error {
	if len(ws) == 0 {
		return errors.New("apiguard: a limiter needs at least one window")
	}
	if len(ws) > MaxWindows {
		return fmt.Errorf("apiguard: %d windows, at most %d", len(ws), MaxWindows)
	}
	for i, w := range ws {
		switch {
		case w.Limit < 1:
			return fmt.Errorf("apiguard: window %d (%v): limit must be at least 1", i, w)
		case w.Period <= 0 || w.Period > MaxPeriod:
			return fmt.Errorf("apiguard: window %d (%v): period must be in (0, %v]", i, w, MaxPeriod)
		case w.Period < time.Duration(w.Limit):
			return fmt.Errorf("apiguard: window %d (%v): more than one token per nanosecond", i, w)
		}
	}
	return nil
}

// LimitResult is what a Limiter reports for one Take.
//
// Limit, Remaining and Reset describe one window: when the request is
// admitted, the window nearest its limit (fewest tokens left; of equals,
// the one slowest to refill); when it is refused, the refusing window with
// the longest wait.
type LimitResult struct {
	Allowed    bool          // the tokens were taken
	Limit      int           // the window's Limit
	Remaining  int           // tokens left in the window
	Reset      time.Duration // until the window's bucket is full again
	RetryAfter time.Duration // when refused, until every window could grant the request; else 0
}

// A Limiter counts requests per key in one or more windows.
//
// Take takes n tokens from key's bucket in every window, or, when any
// window lacks them, takes nothing from any and reports the request
// refused, with the longest wait among the windows that refuse. n above a
// window's Limit is never granted; n of 0 or less takes nothing and reports
// the buckets' state. A refusal is not an error: Take returns an error only
// when its backend fails (a Redis it cannot reach), and the rate-limit
// wrapper then fails closed or open as configured.
//
// Implementations must be safe for concurrent use, and exact: however many
// goroutines (or replicas, for a shared backend) take from one key, no more
// than the windows' tokens are granted.
type Limiter interface {
	Take(ctx context.Context, key string, n int) (LimitResult, error)
}

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
	var next [MaxWindows]int64
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

// MemoryLimiter is a Limiter that keeps its buckets in memory, for one
// process. The zero value is not usable; build one with NewMemoryLimiter.
//
// It holds at most its capacity of keys (LimiterCapacity) in LRU caches
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
// caller cannot vary at will: the authenticated client (KeyByClient), or
// the IP behind an IPAllow whitelist. Keys taken from headers, or IPv6
// addresses without a whitelist, let one caller fill the limiter and make
// every new caller wait; give such a limiter a capacity above its honest
// callers' number, or put a per-IP limit in front of it.
//
// The clock (LimiterClock) may step backwards: the limiter's time then
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

// DefaultLimiterCapacity is the number of keys a MemoryLimiter holds unless
// told otherwise (LimiterCapacity).
const DefaultLimiterCapacity = 100_000

// A LimiterOption configures a MemoryLimiter.
type LimiterOption func(*limiterConfig) error

type limiterConfig struct {
	capacity int
	now      func() time.Time
}

// LimiterCapacity sets the most keys a MemoryLimiter holds, at least 1. A
// key costs about 120 bytes (see MemoryLimiter), which also says what
// happens when it is full. The default is DefaultLimiterCapacity.
func LimiterCapacity(keys int) LimiterOption {
	return func(c *limiterConfig) error {
		if keys < 1 {
			return fmt.Errorf("apiguard: limiter capacity %d, want at least 1", keys)
		}
		c.capacity = keys
		return nil
	}
}

// LimiterClock sets the clock of a MemoryLimiter; give it the clock given
// to the Guard's WithClock. The default is time.Now.
func LimiterClock(now func() time.Time) LimiterOption {
	return func(c *limiterConfig) error {
		if now == nil {
			return errors.New("apiguard: LimiterClock needs a clock")
		}
		c.now = now
		return nil
	}
}

// NewMemoryLimiter returns a MemoryLimiter that admits a key's requests
// while every one of windows (at most MaxWindows) has a token for them.
func NewMemoryLimiter(windows []Window, opts ...LimiterOption) (*MemoryLimiter, error) {
	if err := checkWindows(windows); err != nil {
		return nil, err
	}
	c := limiterConfig{capacity: DefaultLimiterCapacity, now: time.Now}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	ws := compile(windows)
	l := &MemoryLimiter{seed: maphash.MakeSeed(), now: c.now, epoch: c.now()}
	var err error
	switch n := len(ws); {
	case n == 1:
		l.store, err = newShards[[1]int64](ws, c.capacity)
	case n == 2:
		l.store, err = newShards[[2]int64](ws, c.capacity)
	case n <= 4:
		l.store, err = newShards[[4]int64](ws, c.capacity)
	default:
		l.store, err = newShards[[8]int64](ws, c.capacity)
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
	var cur [MaxWindows]int64
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

// A KeyFunc returns the key of the bucket a request draws from: what a rate
// limit counts by. An error refuses the request, rendered as Guard.Deny
// renders it. A KeyFunc must be safe for concurrent use and may be called
// more than once for one request.
//
// Keys of different KeyFuncs of this package never collide: each begins
// with the name of what it counts by ("ip:", "client:", ...).
type KeyFunc func(g *Guard, r *http.Request) (string, error)

// KeyByIP counts by client IP (Guard.ClientIP): an IPv4 address, or the /64
// network of an IPv6 address, since one host owns a whole /64. Requests
// whose IP cannot be told share one bucket.
func KeyByIP(g *Guard, r *http.Request) (string, error) { return ipKey(g, r, 32, 64) }

// KeyByIPPrefix returns a KeyFunc that counts by the network of the client
// IP: its first v4Bits bits for IPv4 (0 to 32), v6Bits for IPv6 (0 to 128).
// KeyByIP is KeyByIPPrefix(32, 64).
func KeyByIPPrefix(v4Bits, v6Bits int) (KeyFunc, error) {
	if v4Bits < 0 || v4Bits > 32 || v6Bits < 0 || v6Bits > 128 {
		return nil, fmt.Errorf("apiguard: IP prefix /%d, /%d out of range", v4Bits, v6Bits)
	}
	return func(g *Guard, r *http.Request) (string, error) { return ipKey(g, r, v4Bits, v6Bits) }, nil
}

func ipKey(g *Guard, r *http.Request, v4, v6 int) (string, error) {
	ip, ok := g.ClientIP(r)
	if !ok {
		return "ip:unknown", nil
	}
	ip = ip.Unmap()
	var buf [64]byte
	b := append(buf[:0], "ip:"...)
	bits := v6
	if ip.Is4() {
		bits = v4
	}
	if bits < ip.BitLen() {
		b = netip.PrefixFrom(ip, bits).Masked().AppendTo(b)
	} else {
		b = ip.WithZone("").AppendTo(b)
	}
	return string(b), nil
}

// errNeedState tells the rate-limit wrapper that a KeyFunc needs the
// request's state (the caller's identity) and must be called again once
// the wrapper has set it up.
var errNeedState = errors.New("apiguard: KeyByClient outside a Guard wrapper")

// KeyByClient counts by authenticated client (Client.ID): an account, a
// merchant, a user. It resolves the caller as RequireScope does, so the
// rate-limit wrapper works outside or inside Authenticate, and refuses with
// 401 where g cannot establish an identity.
func KeyByClient(g *Guard, r *http.Request) (string, error) {
	s := stateFrom(r.Context())
	if s == nil {
		return "", errNeedState
	}
	c, err := g.identify(s, r)
	if err != nil {
		return "", err
	}
	return "client:" + c.ID, nil
}

// KeyByRoute counts by route: the ServeMux pattern that matched the request
// (Request.Pattern), such as "GET /product". Outside a ServeMux route, where
// the pattern is empty, it counts by method and path, which a caller varies
// at will: place the wrapper on the route.
func KeyByRoute(_ *Guard, r *http.Request) (string, error) {
	if r.Pattern != "" {
		return "route:" + r.Pattern, nil
	}
	return "route:" + r.Method + " " + r.URL.Path, nil
}

// KeyByHeader returns a KeyFunc that counts by the first value of the
// request header name (such as "X-Merchant-Id"). Requests without it share
// one bucket. A caller chooses its headers: count by a header only where a
// later check proves it, or together with the IP (KeyBy).
func KeyByHeader(name string) KeyFunc {
	name = http.CanonicalHeaderKey(name)
	prefix := "header:" + name + ":"
	return func(_ *Guard, r *http.Request) (string, error) {
		if v := r.Header[name]; len(v) > 0 {
			return prefix + v[0], nil
		}
		return prefix, nil
	}
}

// KeyBy returns a KeyFunc that counts by all of keys together: KeyBy(KeyByIP,
// KeyByRoute) gives each client IP its own bucket on each route. The parts
// are length-prefixed, so no two lists of parts make one key. KeyBy() counts
// every request in one bucket.
func KeyBy(keys ...KeyFunc) KeyFunc {
	keys = append([]KeyFunc(nil), keys...)
	return func(g *Guard, r *http.Request) (string, error) {
		var b []byte
		for _, k := range keys {
			part, err := k(g, r)
			if err != nil {
				return "", err
			}
			b = strconv.AppendInt(b, int64(len(part)), 10)
			b = append(b, ':')
			b = append(b, part...)
			b = append(b, '|')
		}
		return string(b), nil
	}
}

// A RateLimitOption configures the wrapper Guard.RateLimit returns.
type RateLimitOption func(*rateLimiter) error

// RateLimitFailOpen makes the wrapper admit requests, without rate-limit
// headers, when its Limiter fails (a Redis down); the Guard's logger, if any,
// notes each one. The default is to fail closed: 503 with ErrUnavailable.
func RateLimitFailOpen() RateLimitOption {
	return func(rl *rateLimiter) error { rl.failOpen = true; return nil }
}

// RateLimitMinRetryAfter makes refusals ask clients to wait at least d
// (88Pay's documentation says "retry after 60 seconds"). The default is 0:
// Retry-After is the wait the Limiter reports.
func RateLimitMinRetryAfter(d time.Duration) RateLimitOption {
	return func(rl *rateLimiter) error {
		if d < 0 {
			return fmt.Errorf("apiguard: negative minimum Retry-After %v", d)
		}
		rl.minRetry = d
		return nil
	}
}

type rateLimiter struct {
	g        *Guard
	l        Limiter
	key      KeyFunc
	failOpen bool
	minRetry time.Duration
}

// RateLimit returns a wrapper that takes a token from l for each request,
// in the bucket key names, and refuses the request with 429 (ErrRateLimited)
// when l has none for it.
//
// A limit counts every request that reaches it, and a token taken is not
// given back when a later check refuses the request. This is the one
// deliberate exception to "stack in any order": where the limit stands
// decides what it counts. Outside Authenticate it counts failed attempts
// too (what slows a caller guessing keys); inside, only authenticated
// requests. KeyByClient always counts authenticated requests only.
//
// Every response it lets through or refuses carries the rate-limit headers
// of the IETF draft (draft-ietf-httpapi-ratelimit-headers), for the window
// nearest its limit:
//
//	RateLimit-Limit: 10      the window's limit
//	RateLimit-Remaining: 3   tokens left in it
//	RateLimit-Reset: 42      seconds until it is full again, rounded up
//
// and a refusal carries Retry-After, in seconds rounded up: the longest
// wait among the windows that refuse. The denial hook sees every refusal.
//
// When l fails, the wrapper refuses with 503 (ErrUnavailable), or admits
// the request if RateLimitFailOpen is set. An error of key refuses the
// request as Deny renders it: KeyByClient refuses with 401 a caller g
// cannot identify.
func (g *Guard) RateLimit(l Limiter, key KeyFunc, opts ...RateLimitOption) (Middleware, error) {
	if l == nil {
		return nil, errors.New("apiguard: RateLimit needs a Limiter")
	}
	if key == nil {
		return nil, errors.New("apiguard: RateLimit needs a KeyFunc")
	}
	rl := &rateLimiter{g: g, l: l, key: key}
	for _, o := range opts {
		if err := o(rl); err != nil {
			return nil, err
		}
	}
	return func(next http.Handler) http.Handler { return &rateLimitHandler{rl, next} }, nil
}

type rateLimitHandler struct {
	*rateLimiter
	next http.Handler
}

// Canonical forms of the rate-limit headers' names.
const (
	hdrLimit     = "Ratelimit-Limit"
	hdrRemaining = "Ratelimit-Remaining"
	hdrReset     = "Ratelimit-Reset"
)

func (h *rateLimitHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The state is set up only when a KeyFunc needs the caller's identity,
	// or to refuse: counting by IP costs no allocation for it.
	s := stateFrom(r.Context())
	key, err := h.key(h.g, r)
	if err == errNeedState && s == nil {
		s, r = begin(r)
		key, err = h.key(h.g, r)
	}
	if err != nil {
		h.deny(w, r, s, err)
		return
	}
	res, err := h.l.Take(r.Context(), key, 1)
	if err != nil {
		if !h.failOpen {
			h.deny(w, r, s, fmt.Errorf("%w: rate limiter: %w", ErrUnavailable, err))
			return
		}
		if h.g.logger != nil {
			h.g.logger.LogAttrs(r.Context(), slog.LevelWarn, "apiguard: rate limiter failed; request admitted",
				slog.String("method", r.Method), slog.String("path", r.URL.Path))
		}
	} else {
		vs := make([]string, 3)
		vs[0] = strconv.Itoa(res.Limit)
		vs[1] = strconv.Itoa(res.Remaining)
		vs[2] = strconv.FormatInt(ceilSeconds(res.Reset), 10)
		hd := w.Header()
		hd[hdrLimit], hd[hdrRemaining], hd[hdrReset] = vs[0:1:1], vs[1:2:2], vs[2:3:3]
		if !res.Allowed {
			h.deny(w, r, s, &Error{
				Status:     http.StatusTooManyRequests,
				Code:       CodeRateLimited,
				RetryAfter: max(res.RetryAfter, h.minRetry, 1),
				Err:        ErrRateLimited,
			})
			return
		}
	}
	if s != nil {
		r = s.forward(r)
	}
	h.next.ServeHTTP(w, r)
}

func (h *rateLimitHandler) deny(w http.ResponseWriter, r *http.Request, s *state, err error) {
	if s == nil {
		s, r = begin(r)
	}
	h.g.deny(w, r, s, err)
}

// ceilSeconds returns d in whole seconds, rounded up, and 0 for d <= 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
