package apiguard

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/textproto"
	"reflect"
	"time"

	"github.com/apiguard/apiguard/internal/wire"
)

// An Option configures one of the package's constructors: New, the stores
// (NewMemoryKeyStore, NewCachedKeyStore, NewMemoryLimiter,
// NewMemoryReplayStore), NewSessions, the hash schemes (HashSignature,
// HMACSignature) and Guard.RateLimit. Each option says where it applies;
// given anywhere else, or with a value out of range, it makes the
// constructor fail with an error that names it.
type Option struct {
	name  string
	to    target
	apply func(*config) error
}

// target is the set of constructors an Option applies to.
type target uint16

const (
	toGuard target = 1 << iota
	toKeyStore
	toKeyCache
	toLimiter
	toReplayStore
	toSessions
	toHash
	toRateLimit
)

var targetNames = [...]string{"New", "NewMemoryKeyStore", "NewCachedKeyStore", "NewMemoryLimiter", "NewMemoryReplayStore", "NewSessions", "a hash scheme", "RateLimit"}

func (t target) String() string {
	for i, n := range targetNames {
		if t == 1<<i {
			return n
		}
	}
	return "?"
}

// config is what options set. Each constructor reads the fields that
// concern it; zero values mean the constructor's defaults.
type config struct {
	now      func() time.Time
	capacity int

	// Guard
	dialect Dialect
	env     Environment
	envSet  bool
	observe func(Decision)
	logger  *slog.Logger
	ip      ipResolver

	// CachedKeyStore
	ttl, negTTL time.Duration
	ttlSet      bool

	// Sessions
	leeway    time.Duration
	leewaySet bool
	lifetimes [UserToken + 1]time.Duration
	sessions  SessionStore

	// hash schemes
	bodyLimit int64
	required  []string

	// RateLimit
	failOpen bool
	minRetry time.Duration

	// Guard: buffered bodies
	bodyBudget int64

	// Guard: failed attempts (WithFailureLimit)
	failures *failureLimit
}

// configure applies opts for the constructor t.
func configure(t target, opts []Option) (config, error) {
	var c config
	for _, o := range opts {
		if o.apply == nil {
			return c, fmt.Errorf("apiguard: %v: a zero Option", t)
		}
		if o.to&t == 0 {
			return c, fmt.Errorf("apiguard: %s does not apply to %v", o.name, t)
		}
		if err := o.apply(&c); err != nil {
			return c, fmt.Errorf("apiguard: %s: %w", o.name, err)
		}
	}
	return c, nil
}

// clock returns c's clock, time.Now by default.
func (c *config) clock() func() time.Time {
	if c.now == nil {
		return time.Now
	}
	return c.now
}

// capacityOr returns c's capacity, def by default.
func (c *config) capacityOr(def int) int {
	if c.capacity == 0 {
		return def
	}
	return c.capacity
}

// WithClock sets the clock. It applies to New (request times, the
// environment of keys), the stores (expiry, rate buckets) and NewSessions:
// give them all the same clock. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return Option{"WithClock", toGuard | toKeyStore | toKeyCache | toLimiter | toReplayStore | toSessions, func(c *config) error {
		if now == nil {
			return errors.New("nil clock")
		}
		c.now = now
		return nil
	}}
}

// WithCapacity sets how many entries a bounded store holds, at least 1:
// keys for NewMemoryKeyStore (default 100,000), cached lookups for
// NewCachedKeyStore (default 10,000), keys for NewMemoryLimiter (default
// 100,000), request ids for NewMemoryReplayStore (default 100,000), and
// session families for NewSessions (default 100,000; Sessions then hold a
// tenth as many revocations). Each store's documentation says what happens
// when it is full.
func WithCapacity(n int) Option {
	return Option{"WithCapacity", toKeyStore | toKeyCache | toLimiter | toReplayStore | toSessions, func(c *config) error {
		if n < 1 {
			return fmt.Errorf("capacity %d, want at least 1", n)
		}
		c.capacity = n
		return nil
	}}
}

// WithEnvironment makes a Guard (New) accept only clients of env, and
// Sessions (NewSessions) issue tokens only to clients of env and accept
// only tokens issued in env. A sandbox Guard refuses live keys, and keys of
// no known environment, with ErrInvalidKey, and the reverse. The default,
// AnyEnvironment, accepts all.
func WithEnvironment(env Environment) Option {
	return Option{"WithEnvironment", toGuard | toSessions, func(c *config) error {
		if env > Live {
			return fmt.Errorf("unknown environment %d", env)
		}
		c.env, c.envSet = env, true
		return nil
	}}
}

// WithDialect sets how a Guard (New) renders rejections. It fails on a nil
// Dialect and on a JSONDialect without its Body. The default is Problem().
func WithDialect(d Dialect) Option {
	return Option{"WithDialect", toGuard, func(c *config) error {
		if isNil(d) {
			return fmt.Errorf("%v, not a Dialect", nilName(d))
		}
		if jd, ok := d.(*JSONDialect); ok && jd.Body == nil {
			return errors.New("a JSONDialect without its Body")
		}
		c.dialect = d
		return nil
	}}
}

// WithObserver makes a Guard (New) call f with every Decision its wrappers
// make, the requests they let through as well as those they refuse, and
// with the refusals of Guard.Deny; for a refusal, before the response is
// written. f runs on the request's goroutine: it must be quick and safe for
// concurrent use, and must not keep the Decision's Request. While a Guard
// has an observer its wrappers time their stores' calls with its clock.
// Without one, a wrapper pays one nil check. The default is no observer.
func WithObserver(f func(Decision)) Option {
	return Option{"WithObserver", toGuard, func(c *config) error {
		if f == nil {
			return errors.New("nil observer")
		}
		c.observe = f
		return nil
	}}
}

// WithLogger makes a Guard (New) log every refusal of its wrappers and of
// Guard.Deny to l, one line "apiguard: request denied" with the attributes
// status, code (the reason's stable code), wrapper (as in Decision),
// cause (Decision.Cause, when known), method, path, ip (the client IP,
// when told), client and key_id (when a Scheme named the caller). A
// refusal is logged at level Info; a failure of a backend (a KeyStore,
// Limiter or ReplayStore error: 503) or any other 5xx at level Error. A
// line never carries a credential, the query, the body, or the text of a
// backend's error (which could hold one). A limiter failure admitted by
// WithFailOpen is logged at level Warn. The default is no logging.
func WithLogger(l *slog.Logger) Option {
	return Option{"WithLogger", toGuard, func(c *config) error {
		if l == nil {
			return errors.New("nil logger")
		}
		c.logger = l
		return nil
	}}
}

// WithTrustedProxies makes a Guard (New) believe the forwarding headers of
// peers whose address lies in one of prefixes (a load balancer, a CDN's
// ranges): for a request from such a peer the client IP is the rightmost
// address of X-Forwarded-For that is not itself a trusted proxy (or the
// header set by WithClientIPHeader), and X-Forwarded-Proto may vouch for
// HTTPS (see RequireHTTPS). IPv4-mapped IPv6 prefixes (::ffff:10.0.0.0/104)
// stand for their IPv4 prefixes. A later one replaces the set.
//
// The default is no trusted proxy: the client IP is the peer address of
// r.RemoteAddr and forwarding headers are ignored, since anyone can send
// them. An invalid prefix is an error.
func WithTrustedProxies(prefixes ...netip.Prefix) Option {
	return Option{"WithTrustedProxies", toGuard, func(c *config) error {
		for _, p := range prefixes {
			if err := checkPrefix(p); err != nil {
				return err
			}
		}
		c.ip.trusted = newIPSet(prefixes)
		return nil
	}}
}

// WithClientIPHeader makes a Guard's (New) trusted proxies name the client
// in the single header name, such as "X-Real-IP", instead of
// X-Forwarded-For. The header must then hold exactly one address (an
// optional port is ignored); several headers of that name, or a value that
// does not parse, leave the request without a client IP. It has no effect
// on requests from peers that are not trusted proxies (see
// WithTrustedProxies). The default is X-Forwarded-For.
func WithClientIPHeader(name string) Option {
	return Option{"WithClientIPHeader", toGuard, func(c *config) error {
		if !wire.ValidHeaderName(name) {
			return fmt.Errorf("bad header name %q", name)
		}
		c.ip.header = http.CanonicalHeaderKey(name)
		if c.ip.header == "X-Forwarded-For" {
			c.ip.header = ""
		}
		return nil
	}}
}

// isNil reports whether v is nil or holds a nil pointer, map, func or
// slice: a typed nil that would fail on its first use.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Slice, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// checkKeyStore reports a KeyStore that would fail at every request: nil,
// a nil pointer of a store type, or a zero CachedKeyStore. name is the
// constructor it was given to.
func checkKeyStore(name string, keys KeyStore) error {
	if isNil(keys) {
		return fmt.Errorf("apiguard: %s needs a KeyStore, not %v", name, nilName(keys))
	}
	if c, ok := keys.(*CachedKeyStore); ok && c.cache == nil {
		return fmt.Errorf("apiguard: %s needs a KeyStore, not a zero CachedKeyStore (build one with NewCachedKeyStore)", name)
	}
	return nil
}

// nilName describes the nil v for an error: "nil", or "a nil *T" for a nil
// pointer (or map, func, ...) of type T in an interface.
func nilName(v any) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprintf("a nil %T", v)
}

// WithCacheTTL sets how long a CachedKeyStore (NewCachedKeyStore) keeps
// found clients (positive, more than 0) and unknown keys (negative; 0
// disables negative caching). The defaults are 30 seconds and 5 seconds.
func WithCacheTTL(positive, negative time.Duration) Option {
	return Option{"WithCacheTTL", toKeyCache, func(c *config) error {
		if positive <= 0 || negative < 0 {
			return fmt.Errorf("TTLs %v and %v, want a positive and a non-negative one", positive, negative)
		}
		c.ttl, c.negTTL, c.ttlSet = positive, negative, true
		return nil
	}}
}

// WithLeeway sets the clock skew Sessions (NewSessions) tolerate between
// issuer and verifier, from 0 to one minute: a token is accepted until its
// exp plus the leeway, and from its iat and nbf minus the leeway. Since
// iat is counted in whole seconds, a 60-second token issued at t is
// accepted until at most t+61s with the default of 1 second.
func WithLeeway(d time.Duration) Option {
	return Option{"WithLeeway", toSessions, func(c *config) error {
		if d < 0 || d > time.Minute {
			return fmt.Errorf("leeway %v is not between 0 and 1m", d)
		}
		c.leeway, c.leewaySet = d, true
		return nil
	}}
}

// WithSessionStore gives NewSessions the store of its sessions and
// revocations, such as one every replica of a server shares (the
// redisstore module has one). The default keeps them in the memory of
// the process, bounded by WithCapacity; with a store of one's own,
// WithCapacity does not apply (the store has its own bounds).
func WithSessionStore(store SessionStore) Option {
	return Option{"WithSessionStore", toSessions, func(c *config) error {
		if isNil(store) {
			return errors.New("nil SessionStore")
		}
		c.sessions = store
		return nil
	}}
}

// WithTokenLifetime sets how long Sessions' (NewSessions) tokens of kind
// live, in whole seconds from one second to a year. Verification refuses a
// token of that kind whose exp is further from its iat. The defaults are
// 60 seconds for access tokens (88Pay's), 24 hours for refresh tokens and
// 7 days for user tokens; refresh and access tokens never outlive their
// session's user token.
func WithTokenLifetime(kind TokenKind, d time.Duration) Option {
	return Option{"WithTokenLifetime", toSessions, func(c *config) error {
		switch {
		case kind < AccessToken || kind > UserToken:
			return fmt.Errorf("unknown token kind %d", kind)
		case d < time.Second || d > 366*24*time.Hour || d%time.Second != 0:
			return fmt.Errorf("%v token lifetime %v: want whole seconds from 1s to a year", kind, d)
		}
		c.lifetimes[kind] = d
		return nil
	}}
}

// WithBodyLimit sets the most a hash scheme (HashSignature,
// HMACSignature) reads of a request body, at least 1 byte; a longer body is
// refused with 413 (ErrBodyTooLarge) before any key is looked up. The
// default is 1 MiB.
func WithBodyLimit(n int64) Option {
	return Option{"WithBodyLimit", toHash, func(c *config) error {
		if n < 1 {
			return fmt.Errorf("body limit %d, want at least 1", n)
		}
		c.bodyLimit = n
		return nil
	}}
}

// WithRequiredHeaders makes a hash scheme (HashSignature, HMACSignature)
// refuse, as a missing credential, a request without any of names (such as
// X-Request-Time, which RequestTime then checks). The default is none
// beyond Authorization and the signer's header.
func WithRequiredHeaders(names ...string) Option {
	return Option{"WithRequiredHeaders", toHash, func(c *config) error {
		for _, n := range names {
			if !wire.ValidHeaderName(n) {
				return fmt.Errorf("invalid header name %q", n)
			}
			c.required = append(c.required, textproto.CanonicalMIMEHeaderKey(n))
		}
		return nil
	}}
}

// WithFailOpen makes a rate limit (Guard.RateLimit) admit requests, without
// rate-limit headers, when its Limiter fails (a Redis down); the Guard's
// logger, if any, notes each one. The default is to fail closed: 503 with
// ErrUnavailable.
func WithFailOpen() Option {
	return Option{"WithFailOpen", toRateLimit, func(c *config) error { c.failOpen = true; return nil }}
}

// WithMinRetryAfter makes a rate limit's (Guard.RateLimit) refusals ask
// clients to wait at least d (88Pay's documentation says "retry after 60
// seconds"). The default is 0: Retry-After is the wait the Limiter
// reports.
func WithMinRetryAfter(d time.Duration) Option {
	return Option{"WithMinRetryAfter", toRateLimit, func(c *config) error {
		if d < 0 {
			return fmt.Errorf("negative duration %v", d)
		}
		c.minRetry = d
		return nil
	}}
}

// WithBodyBudget sets how many bytes of request bodies a Guard's
// requests may hold buffered at once, all in-flight requests together, at
// least 1. A request whose body must be read before its key is known (a
// hash scheme, a Scheme calling ReadBody) reserves its Content-Length, or
// the most it may read when the length is unknown, before reading, and
// gives it back when it is done; a request that finds the budget spent is
// refused at once with 503 (ErrUnavailable) and Retry-After: 1, before its
// key is looked up or the handler runs. The default is 64 MiB: 64
// concurrent bodies of the hash schemes' default 1 MiB limit.
func WithBodyBudget(n int64) Option {
	return Option{"WithBodyBudget", toGuard, func(c *config) error {
		if n < 1 {
			return fmt.Errorf("body budget %d, want at least 1", n)
		}
		c.bodyBudget = n
		return nil
	}}
}
