// Package redisstore keeps apiguard's rate limits, unique request ids and
// API keys in Redis, so that several replicas of a server share them.
//
// A Limiter is an apiguard.Limiter: give it to Guard.RateLimit as you would
// a MemoryLimiter. An IDStore remembers request ids for a while, to refuse
// a replayed one. A KeyStore is an apiguard.KeyStore; put an
// apiguard.CachedKeyStore in front of it on each replica, and Listen, so
// that a key revoked anywhere is forgotten everywhere.
//
// Every call to Redis is bounded by a timeout (WithTimeout). For the timeout
// to bound the network reads and writes too, and not only the wait for a
// connection, the client must be built with ContextTimeoutEnabled; the
// constructors refuse a client of this package's types (Client,
// ClusterClient, Ring) built without it. When Redis is down or slow, calls
// return an error within the timeout: the rate-limit wrapper then fails
// closed (503) or open, as configured.
package redisstore

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultTimeout bounds each call to Redis unless WithTimeout says
// otherwise.
const DefaultTimeout = 100 * time.Millisecond

// DefaultPrefix begins the name of every key the package writes, unless
// WithPrefix says otherwise.
const DefaultPrefix = "apiguard:"

// An Option configures a Limiter, an IDStore, a KeyStore or a
// SessionStore.
type Option func(*config) error

type config struct {
	prefix   string
	timeout  time.Duration
	now      func() time.Time
	capacity int
}

// WithPrefix sets the prefix of the package's key names, so that several
// APIs, or several limits counting by the same key, can share a Redis. The
// default is DefaultPrefix.
func WithPrefix(prefix string) Option {
	return func(c *config) error { c.prefix = prefix; return nil }
}

// WithTimeout sets the most time one call to Redis may take, including the
// wait for a connection and the retries of the client. The default is
// DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("redisstore: timeout %v, want a positive duration", d)
		}
		c.timeout = d
		return nil
	}
}

// WithClock sets the clock a KeyStore compares a key's NotAfter with; give
// it the clock of the Guards. The default is time.Now. Redis itself drops
// a key at its NotAfter by its own clock.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("redisstore: WithClock needs a clock")
		}
		c.now = now
		return nil
	}
}

// WithCapacity sets, at least 1, how many sessions a SessionStore tracks
// (DefaultSessionCapacity by default), and how many ids an IDStore holds
// (DefaultIDCapacity by default; one share holds an eighth). Limiters and
// KeyStores take no capacity: a Limiter's buckets expire once full again,
// and a KeyStore holds the keys an operator adds.
func WithCapacity(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("redisstore: capacity %d, want at least 1", n)
		}
		c.capacity = n
		return nil
	}
}

func newConfig(rdb redis.UniversalClient, opts []Option) (config, error) {
	c := config{prefix: DefaultPrefix, timeout: DefaultTimeout, now: time.Now}
	if rdb == nil {
		return c, errors.New("redisstore: no Redis client")
	}
	var enabled bool
	switch r := rdb.(type) {
	case *redis.Client:
		enabled = r.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		enabled = r.Options().ContextTimeoutEnabled
	case *redis.Ring:
		enabled = r.Options().ContextTimeoutEnabled
	default:
		enabled = true // a client of its own: its timeouts are its own business
	}
	if !enabled {
		return c, errors.New("redisstore: the Redis client must be built with ContextTimeoutEnabled, so that timeouts bound its calls")
	}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// maxKeyLen is the longest caller-given key kept as it is in a key name;
// longer ones are replaced by their SHA-256 digest, so that a caller who
// chooses the key (a header) cannot fill Redis with long names.
const maxKeyLen = 128

// digest returns the SHA-256 digest of s in unpadded base64url.
func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
