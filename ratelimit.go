package apiguard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/apiguard/apiguard/internal/bounds"
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
	Period time.Duration // the time in which Limit tokens refill; at most 366 days
}

// The most windows one Limiter counts (8), and the longest Period of a
// Window (366 days).
const (
	maxWindows = bounds.MaxWindows
	maxPeriod  = bounds.MaxPeriod
)

// PerMinute returns the Window of n requests per minute.
func PerMinute(n int) Window { return Window{Limit: n, Period: time.Minute} }

// PerHour returns the Window of n requests per hour.
func PerHour(n int) Window { return Window{Limit: n, Period: time.Hour} }

// checkWindows reports whether ws is a valid limit.
func checkWindows(ws []Window) error {
	if len(ws) == 0 {
		return errors.New("apiguard: a limiter needs at least one window")
	}
	if len(ws) > maxWindows {
		return fmt.Errorf("apiguard: %d windows, at most %d", len(ws), maxWindows)
	}
	for i, w := range ws {
		switch {
		case w.Limit < 1:
			return fmt.Errorf("apiguard: window %d (%v): limit must be at least 1", i, w)
		case w.Period <= 0 || w.Period > maxPeriod:
			return fmt.Errorf("apiguard: window %d (%v): period must be in (0, %v]", i, w, maxPeriod)
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

// A Bucket says what a rate limit counts by: which of a Limiter's buckets
// a request draws from. Make one with ByIP, ByIPPrefix, ByClient, ByRoute,
// ByHeader, ByAll or BucketFunc; the zero Bucket is not usable.
//
// The keys of different Buckets never collide: each begins with the name
// of what it counts by ("ip:", "client:", ...).
type Bucket struct {
	key    func(g *Guard, r *http.Request, s *state) (string, error)
	client bool // key needs the caller's identity, and so the request's state

	// A Bucket by IP also says its prefixes, and one by client says so, so
	// that the wrapper can build its key on the stack for a MemoryLimiter.
	ip       bool
	v4, v6   int
	byClient bool
}

// ByIP counts by client IP (Guard.ClientIP): an IPv4 address, or the /64
// network of an IPv6 address, since one host owns a whole /64. Requests
// whose IP cannot be told share one bucket.
func ByIP() Bucket { return ipBucket(32, 64) }

// ByIPPrefix counts by the network of the client IP: its first v4Bits bits
// for IPv4 (0 to 32), v6Bits for IPv6 (0 to 128). ByIP is ByIPPrefix(32,
// 64).
func ByIPPrefix(v4Bits, v6Bits int) (Bucket, error) {
	if v4Bits < 0 || v4Bits > 32 || v6Bits < 0 || v6Bits > 128 {
		return Bucket{}, fmt.Errorf("apiguard: ByIPPrefix: prefix /%d, /%d out of range", v4Bits, v6Bits)
	}
	return ipBucket(v4Bits, v6Bits), nil
}

func ipBucket(v4, v6 int) Bucket {
	return Bucket{ip: true, v4: v4, v6: v6, key: func(g *Guard, r *http.Request, _ *state) (string, error) {
		var buf [64]byte
		return string(appendIPKey(buf[:0], g, r, v4, v6)), nil
	}}
}

// appendIPKey appends to b the key of r's client IP, in its network of v4
// or v6 bits.
func appendIPKey(b []byte, g *Guard, r *http.Request, v4, v6 int) []byte {
	if v4 >= 32 && g.ip.trusted.empty() {
		// The peer is the client; an IPv4 peer's text is its key.
		if host, ok := peerIPv4(r.RemoteAddr); ok {
			return append(append(b, "ip:"...), host...)
		}
	}
	ip, ok := g.ClientIP(r)
	if !ok {
		return append(b, "ip:unknown"...)
	}
	ip = ip.Unmap()
	b = append(b, "ip:"...)
	bits := v6
	if ip.Is4() {
		bits = v4
	}
	if bits < ip.BitLen() {
		return netip.PrefixFrom(ip, bits).Masked().AppendTo(b)
	}
	return ip.WithZone("").AppendTo(b)
}

// ByClient counts by authenticated client (Client.ID): an account, a
// merchant, a user. It resolves the caller as RequireScope does, so the
// limit works outside or inside Authenticate, and refuses with 401 where
// the Guard cannot establish an identity.
func ByClient() Bucket {
	return Bucket{client: true, byClient: true, key: func(g *Guard, r *http.Request, s *state) (string, error) {
		c, err := g.identify(s, r)
		if err != nil {
			return "", err
		}
		return "client:" + c.ID, nil
	}}
}

// ByRoute counts by route: the ServeMux pattern that matched the request
// (Request.Pattern), such as "GET /product". Outside a ServeMux route,
// where the pattern is empty, it counts by method and path, which a caller
// varies at will: place the limit on the route.
func ByRoute() Bucket {
	return Bucket{key: func(_ *Guard, r *http.Request, _ *state) (string, error) {
		if r.Pattern != "" {
			return "route:" + r.Pattern, nil
		}
		return "route:" + r.Method + " " + r.URL.Path, nil
	}}
}

// ByHeader counts by the first value of the request header name (such as
// "X-Merchant-Id"). Requests without it share one bucket. A caller chooses
// its headers: count by a header only where a later check proves it, or
// together with the IP (ByAll).
func ByHeader(name string) Bucket {
	name = http.CanonicalHeaderKey(name)
	prefix := "header:" + name + ":"
	return Bucket{key: func(_ *Guard, r *http.Request, _ *state) (string, error) {
		if v := r.Header[name]; len(v) > 0 {
			return prefix + v[0], nil
		}
		return prefix, nil
	}}
}

// BucketFunc counts by what key returns for a request; an error refuses
// the request, rendered as Guard.Deny renders it. key must be safe for
// concurrent use. Its keys share a namespace of their own ("func:"), so
// two BucketFuncs on one Limiter that return the same string count in one
// bucket.
func BucketFunc(key func(r *http.Request) (string, error)) Bucket {
	if key == nil {
		return Bucket{}
	}
	return Bucket{key: func(_ *Guard, r *http.Request, _ *state) (string, error) {
		k, err := key(r)
		if err != nil {
			return "", err
		}
		return "func:" + k, nil
	}}
}

// ByAll counts by all of parts together: ByAll(ByIP(), ByRoute()) gives
// each client IP its own bucket on each route. The parts are
// length-prefixed, so no two lists of parts make one key. ByAll() counts
// every request in one bucket.
func ByAll(parts ...Bucket) Bucket {
	parts = append([]Bucket(nil), parts...)
	all := Bucket{}
	for _, p := range parts {
		all.client = all.client || p.client
	}
	all.key = func(g *Guard, r *http.Request, s *state) (string, error) {
		var b []byte
		for _, p := range parts {
			if p.key == nil {
				return "", errors.New("apiguard: ByAll of a zero Bucket")
			}
			part, err := p.key(g, r, s)
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
	return all
}

// RateLimit returns a wrapper that takes a token from l for each request,
// in the bucket by names, and refuses the request with 429 (ErrRateLimited)
// when l has none for it. Options: WithFailOpen, WithMinRetryAfter.
//
// A limit counts every request that reaches it, and a token taken is not
// given back when a later check refuses the request. This is the one
// deliberate exception to "stack in any order": where the limit stands
// decides what it counts. Outside Authenticate it counts failed attempts
// too (what slows a caller guessing keys); inside, only authenticated
// requests. ByClient always counts authenticated requests only.
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
// wait among the windows that refuse. The observer (WithObserver) sees every
// decision, and for a refusal the refusing window.
//
// When l fails, the wrapper refuses with 503 (ErrUnavailable), or admits
// the request with WithFailOpen. An error of by refuses the request as
// Deny renders it: ByClient refuses with 401 a caller the Guard cannot
// identify.
//
// A nil l (or a nil or zero *MemoryLimiter), a zero by, or an option that
// does not apply is a mistake of program start: RateLimit panics with an error that names it, as
// http.Handle does for a nil handler.
func (g *Guard) RateLimit(l Limiter, by Bucket, opts ...Option) Middleware {
	c, err := configure(toRateLimit, opts)
	switch {
	case err != nil:
	case isNil(l):
		err = fmt.Errorf("apiguard: RateLimit needs a Limiter, not %v", nilName(l))
	case isZeroLimiter(l):
		err = errors.New("apiguard: RateLimit needs a Limiter, not a zero MemoryLimiter (build one with NewMemoryLimiter)")
	case by.key == nil:
		err = errors.New("apiguard: RateLimit needs a Bucket (ByIP, ByClient, ...)")
	}
	if err != nil {
		panic(err)
	}
	mem, _ := l.(*MemoryLimiter)
	return g.wrap("rate_limit", by.client, func(w http.ResponseWriter, r *http.Request, s *state) error {
		t := s.timed()
		var res LimitResult
		var err error
		switch {
		case mem != nil && (by.ip || by.byClient):
			// The key on the stack: a string only if it is new to mem.
			var buf [128]byte
			var key []byte
			if by.ip {
				key = appendIPKey(buf[:0], g, r, by.v4, by.v6)
			} else {
				c, err := g.identify(s, r)
				if err != nil {
					return err
				}
				key = append(append(buf[:0], "client:"...), c.ID...)
			}
			t0 := t.start()
			res = mem.take("", key, 1)
			t.limiterDone(t0, res)
		default:
			var key string
			if key, err = by.key(g, r, s); err != nil {
				return err
			}
			t0 := t.start()
			res, err = l.Take(r.Context(), key, 1)
			t.limiterDone(t0, res)
		}
		if err != nil {
			if !c.failOpen {
				return fmt.Errorf("%w: rate limiter: %w", errLimiterFailed, err)
			}
			if g.logger != nil {
				g.logger.LogAttrs(r.Context(), slog.LevelWarn, "apiguard: rate limiter failed; request admitted",
					slog.String("method", r.Method), slog.String("path", r.URL.Path))
			}
			return nil
		}
		// Three strings of the request's own hold the values (numbers up
		// to 4095 come from a table of their decimal forms), cut from a
		// chunk for many requests (headerStrings), so that a request costs
		// no allocation. The names are already canonical.
		vs := headerStrings()
		vs[0] = decimal(int64(res.Limit))
		vs[1] = decimal(int64(res.Remaining))
		vs[2] = decimal(ceilSeconds(res.Reset))
		hd := w.Header()
		hd[hdrLimit], hd[hdrRemaining], hd[hdrReset] = vs[0:1:1], vs[1:2:2], vs[2:3:3]
		if !res.Allowed {
			e := NewError(ErrRateLimited)
			e.RetryAfter = max(res.RetryAfter, c.minRetry, 1)
			return e
		}
		return nil
	})
}

// isZeroLimiter reports whether l is a MemoryLimiter not made by
// NewMemoryLimiter, whose Take would panic.
func isZeroLimiter(l Limiter) bool {
	m, ok := l.(*MemoryLimiter)
	return ok && m.store == nil
}

// Canonical forms of the rate-limit headers' names.
const (
	hdrLimit     = "Ratelimit-Limit"
	hdrRemaining = "Ratelimit-Remaining"
	hdrReset     = "Ratelimit-Reset"
)

// headerSlots is for how many responses' rate-limit header values a chunk
// of headerChunks holds strings.
const headerSlots = 64

// headerChunk is what is left of a chunk of strings that headerStrings
// cuts header values from.
type headerChunk struct{ s []string }

// headerChunks holds the chunks, in a sync.Pool so that each processor
// cuts from a chunk of its own: goroutines on two cores never write to
// one cache line, and need no lock to share it.
var headerChunks = sync.Pool{New: func() any { return new(headerChunk) }}

// headerStrings returns three strings for a response's rate-limit header
// values: its own, so that a handler that writes into its header values
// changes no other response's. They are cut from a chunk for headerSlots
// responses, which is freed with the last response holding a part of it.
func headerStrings() []string {
	c := headerChunks.Get().(*headerChunk)
	if len(c.s) < 3 {
		c.s = make([]string, 3*headerSlots)
	}
	v := c.s[:3:3]
	c.s = c.s[3:]
	headerChunks.Put(c)
	return v
}

// decimals holds the decimal forms of 0 to len(offsets)-2, one after the
// other, and offsets where each begins: the values of ordinary rate-limit
// headers, as substrings that cost no allocation. It is built on first use
// (about 23 KB).
var decimals = sync.OnceValues(func() (string, []uint16) {
	var b []byte
	offsets := make([]uint16, 4097)
	for n := range 4096 {
		offsets[n] = uint16(len(b))
		b = strconv.AppendInt(b, int64(n), 10)
	}
	offsets[4096] = uint16(len(b))
	return string(b), offsets
})

// decimal returns n in decimal.
func decimal(n int64) string {
	digits, offsets := decimals()
	if n >= 0 && n < int64(len(offsets)-1) {
		return digits[offsets[n]:offsets[n+1]]
	}
	return strconv.FormatInt(n, 10)
}

// ceilSeconds returns d in whole seconds, rounded up, and 0 for d <= 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
