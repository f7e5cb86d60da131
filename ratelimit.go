package apiguard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"
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
				Code:       "rate_limited",
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
