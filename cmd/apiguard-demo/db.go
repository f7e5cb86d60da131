package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"strings"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/sqlstore"
)

// With -db URL the demo's API keys live in a database, managed with the
// apiguard operator command (github.com/apiguard/apiguard/sqlstore/cmd/apiguard),
// instead of in memory:
//
//   - MockPay, the Reseller API, Midtrans and 88Pay look their keys up in
//     the database through one apiguard.CachedKeyStore, which a
//     sqlstore.Watcher tells of every change (LISTEN/NOTIFY on PostgreSQL,
//     a poll every 500 ms on SQLite): a key issued, rotated or revoked with
//     the command takes effect in every running demo within a second.
//   - Each API takes only the keys that begin with its own prefixes
//     (apiKeys), as the real APIs' keys do: a MockPay key is no Midtrans
//     key. Issue a key for an API with --prefix (see demoKeys.prefixes).
//   - The demo's fixed keys (DEMO.md) are seeded: at start, each of them
//     whose key id the database does not hold is added, by the actor
//     "apiguard-demo". A key the database holds, even revoked or rotated,
//     is left as it is, so a demo key revoked with the command stays
//     revoked when the demo restarts. Those keys are public: give -db a
//     database of demo keys, never one with real keys.
//
// The client-system API's app key and the sessions' signing keys stay in
// memory.

// demoKeys are the fixed keys of one API and the prefixes its keys begin
// with.
type demoKeys struct {
	prefixes []string
	specs    []apiguard.KeySpec
}

// keyDB is the demo's key database: a Store, the cache in front of it and
// the watcher that keeps the cache up to date.
type keyDB struct {
	store *sqlstore.Store
	cache *apiguard.CachedKeyStore
	watch *sqlstore.Watcher
}

// openKeyDB opens the database at cfg.db, brings its schema up to date,
// seeds the demo's fixed keys it lacks and starts watching it for changes.
// It returns nil, and no error, when cfg.db is empty.
func openKeyDB(ctx context.Context, cfg config, out io.Writer) (*keyDB, error) {
	if cfg.db == "" {
		return nil, nil
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := sqlstore.Open(octx, cfg.db, sqlstore.WithClock(cfg.now),
		sqlstore.WithErrorHandler(func(err error) { log.Printf("apiguard-demo: -db: %v", err) }))
	if err != nil {
		return nil, fmt.Errorf("-db %s: %w", sqlstore.RedactURL(cfg.db), err)
	}
	added, err := seedKeys(octx, st)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("-db %s: seeding the demo keys: %w", sqlstore.RedactURL(cfg.db), err)
	}
	cache, err := apiguard.NewCachedKeyStore(st, apiguard.WithClock(cfg.now))
	if err != nil {
		st.Close()
		return nil, err
	}
	w, err := st.Watch(sqlstore.Invalidate(cache))
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("-db %s: %w", sqlstore.RedactURL(cfg.db), err)
	}
	fmt.Fprintf(out, "keys: from %s (%d demo keys added); manage them with the apiguard command\n",
		sqlstore.RedactURL(cfg.db), added)
	return &keyDB{store: st, cache: cache, watch: w}, nil
}

// seedKeys adds each fixed key of the demo whose key id st does not hold,
// and returns how many it added. Two demos seeding one database at once
// both succeed.
func seedKeys(ctx context.Context, st *sqlstore.Store) (int, error) {
	added := 0
	for _, a := range apis {
		if a.keys == nil {
			continue
		}
		for _, spec := range a.keys.specs {
			_, err := st.Key(ctx, spec.Client.KeyID)
			if err == nil {
				continue
			}
			if !errors.Is(err, sqlstore.ErrUnknownKey) {
				return added, err
			}
			if _, err := st.Add(ctx, "apiguard-demo", spec); err != nil {
				// Another demo may have added it meanwhile.
				if _, kerr := st.Key(ctx, spec.Client.KeyID); kerr != nil {
					return added, err
				}
				continue
			}
			added++
		}
	}
	return added, nil
}

// Close stops the watcher and closes the database. A nil keyDB is closed.
func (k *keyDB) Close() error {
	if k == nil {
		return nil
	}
	k.watch.Close()
	return k.store.Close()
}

// keyStore returns the KeyStore of one API: its view of the database with
// -db, of the fleet's Redis with -redis, else a MemoryKeyStore holding its
// fixed keys.
func (cfg config) keyStore(dk *demoKeys) (apiguard.KeyStore, error) {
	switch {
	case cfg.keys != nil:
		return apiKeys{next: cfg.keys.cache, prefixes: dk.prefixes}, nil
	case cfg.fleet != nil:
		return apiKeys{next: cfg.fleet.cache, prefixes: dk.prefixes}, nil
	}
	mem, err := apiguard.NewMemoryKeyStore(apiguard.WithClock(cfg.now))
	if err != nil {
		return nil, err
	}
	for _, spec := range dk.specs {
		if err := mem.Add(spec); err != nil {
			return nil, err
		}
	}
	return mem, nil
}

// apiKeys is one API's view of the key database: the keys that begin with
// one of its prefixes. A key with another prefix is refused before the
// database is asked; the prefix is no secret, so refusing it early tells a
// caller nothing it did not know.
type apiKeys struct {
	next     apiguard.KeyStore
	prefixes []string
}

func (a apiKeys) owns(key string) bool {
	for _, p := range a.prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// Lookup implements apiguard.KeyStore.
func (a apiKeys) Lookup(ctx context.Context, key string) (*apiguard.Client, error) {
	if !a.owns(key) {
		return nil, apiguard.ErrInvalidKey
	}
	return a.next.Lookup(ctx, key)
}

// Secrets implements apiguard.KeyStore: the client's kept secrets that
// begin with one of the API's prefixes.
func (a apiKeys) Secrets(ctx context.Context, clientID string) ([]apiguard.Secret, error) {
	all, err := a.next.Secrets(ctx, clientID)
	if err != nil {
		return nil, err
	}
	out := []apiguard.Secret{}
	for _, s := range all {
		if a.owns(s.Key) {
			out = append(out, s)
		}
	}
	return out, nil
}

var _ apiguard.KeyStore = apiKeys{}
