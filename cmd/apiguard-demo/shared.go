package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/redisstore"
)

// With -redis host:port the demo runs as one replica of a fleet: every
// piece of apiguard's state that the replicas must share lives in that
// Redis, under the prefix "apiguard-demo:<part>:", so that any number of
// demos started on it behave as one gateway behind a load balancer:
//
//   - every rate limit (redisstore.Limiter): the limits are exact across
//     the fleet;
//   - the client-system API's request ids (redisstore.IDStore): an id used
//     on one replica is 409 on every other;
//   - the sessions of 88Pay and of the client-system API
//     (redisstore.SessionStore): rotation state, reuse detection and
//     revocations, and their signing keys (redisstore.NewKeyRing): a
//     token minted on one replica verifies on every other;
//   - the API keys of MockPay, the Reseller API, Midtrans and 88Pay
//     (redisstore.KeyStore, seeded with the demo's fixed keys at start,
//     behind an apiguard.CachedKeyStore on each replica that
//     redisstore's Listen empties of a key revoked anywhere).
//
//   - the Reseller API's ref_ids (redisstore.IDStore, 7 days): a ref_id
//     used on one replica is 409 on every other.
//
// The client-system API's app key (a fixed publishable key), MockPay's
// payments and the Reseller API's balances and orders (the demo's business
// data, not apiguard's) stay in each replica's memory. With -db too, the API keys come from the database.
// Without -redis every store is in memory, bounded, as before.

// redisPrefix begins the name of every key the demo writes in Redis.
const redisPrefix = "apiguard-demo:"

// fleet is the demo's state in Redis: the client, the key store and the
// cache in front of it, and what must be closed at the end.
type fleet struct {
	rdb     *redis.Client
	cache   *apiguard.CachedKeyStore
	closers []func() error
}

// openFleet connects to the Redis at cfg.redis and seeds the demo's fixed
// keys it lacks. It returns nil, and no error, when cfg.redis is empty.
func openFleet(ctx context.Context, cfg config) (*fleet, error) {
	if cfg.redis == "" {
		return nil, nil
	}
	rdb := redis.NewClient(&redis.Options{Addr: cfg.redis, ContextTimeoutEnabled: true})
	f := &fleet{rdb: rdb, closers: []func() error{rdb.Close}}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		f.Close()
		return nil, fmt.Errorf("-redis %s: %w", cfg.redis, err)
	}
	keys, err := redisstore.NewKeyStore(rdb, redisstore.WithPrefix(redisPrefix+"keys:"), redisstore.WithClock(cfg.now))
	if err != nil {
		f.Close()
		return nil, err
	}
	for _, a := range apis {
		if a.keys == nil {
			continue
		}
		for _, spec := range a.keys.specs {
			if err := keys.Add(pctx, spec); err != nil {
				// Held already (added by another replica, or revoked
				// there: left as it is), unless Redis failed.
				if _, lerr := keys.Lookup(pctx, spec.Key); lerr != nil && !errors.Is(lerr, apiguard.ErrInvalidKey) {
					f.Close()
					return nil, fmt.Errorf("-redis: seeding the demo keys: %w", err)
				}
			}
		}
	}
	if f.cache, err = apiguard.NewCachedKeyStore(keys, apiguard.WithClock(cfg.now)); err != nil {
		f.Close()
		return nil, err
	}
	l, err := keys.Listen(ctx, f.cache)
	if err != nil {
		f.Close()
		return nil, err
	}
	f.closers = append(f.closers, l.Close)
	return f, nil
}

// Close closes what openFleet opened, last first. A nil fleet is closed.
func (f *fleet) Close() error {
	if f == nil {
		return nil
	}
	var errs []error
	for i := len(f.closers) - 1; i >= 0; i-- {
		errs = append(errs, f.closers[i]())
	}
	return errors.Join(errs...)
}

// limiter returns the Limiter of one limit of the demo, named name: in
// Redis with -redis, else in memory (reported on the admin side).
func (cfg config) limiter(name string, windows ...apiguard.Window) (apiguard.Limiter, error) {
	if cfg.fleet != nil {
		return redisstore.NewLimiter(cfg.fleet.rdb, windows, redisstore.WithPrefix(redisPrefix+name+":"))
	}
	l, err := apiguard.NewMemoryLimiter(windows, apiguard.WithClock(cfg.now))
	if err != nil {
		return nil, err
	}
	return l, cfg.watch(name, l)
}

// replayStore returns the store of request ids named name.
func (cfg config) replayStore(name string) (apiguard.ReplayStore, error) {
	if cfg.fleet != nil {
		return redisstore.NewIDStore(cfg.fleet.rdb, redisstore.WithPrefix(redisPrefix+name+":"))
	}
	s, err := apiguard.NewMemoryReplayStore(apiguard.WithClock(cfg.now))
	if err != nil {
		return nil, err
	}
	return s, cfg.watch(name, s)
}

// refRetention is how long a Reseller ref_id stays used in a fleet.
const refRetention = 7 * 24 * time.Hour

// fleetIDs returns the store of ids named name shared by the fleet, or nil
// without -redis (the API's own memory then keeps them).
func (cfg config) fleetIDs(name string) (*redisstore.IDStore, error) {
	if cfg.fleet == nil {
		return nil, nil
	}
	return redisstore.NewIDStore(cfg.fleet.rdb, redisstore.WithPrefix(redisPrefix+name+":"))
}

// newSessions returns the Sessions of one API, named name, and their key
// ring. Each API gets its own, as the session docs advise: one API's
// tokens never open another's routes. In memory, the ring holds a key
// made at start; with -redis, the ring is the fleet's (the first replica
// makes the key) and so is the SessionStore.
func newSessions(cfg config, name string, opts ...apiguard.Option) (*apiguard.Sessions, *apiguard.KeyRing, error) {
	opts = append([]apiguard.Option{apiguard.WithClock(cfg.now)}, opts...)
	if f := cfg.fleet; f != nil {
		prefix := redisstore.WithPrefix(redisPrefix + name + ":")
		ring, sync, err := redisstore.NewKeyRing(context.Background(), f.rdb, prefix)
		if err != nil {
			return nil, nil, err
		}
		f.closers = append(f.closers, sync.Close)
		store, err := redisstore.NewSessionStore(f.rdb, prefix)
		if err != nil {
			return nil, nil, err
		}
		s, err := apiguard.NewSessions("apiguard-demo/"+name, ring, append(opts, apiguard.WithSessionStore(store))...)
		return s, ring, err
	}
	signing, err := apiguard.GenerateSigningKey("")
	if err != nil {
		return nil, nil, err
	}
	ring, err := apiguard.NewKeyRing(signing)
	if err != nil {
		return nil, nil, err
	}
	s, err := apiguard.NewSessions("apiguard-demo/"+name, ring, opts...)
	return s, ring, err
}
