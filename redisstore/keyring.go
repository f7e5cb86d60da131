package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiguard/apiguard"
)

// RingSync keeps the apiguard.KeyRing of every replica the same: the keys
// that sign and verify session tokens live in Redis, under
//
//	<prefix>ring:keys     a hash: key id → the key, PEM
//	<prefix>ring:signer   the id of the key that signs
//
// and a change published on the channel <prefix>ring makes every replica
// load them again. So a token one replica signs is accepted by all, and a
// rotation reaches all of them. The keys are private keys: whoever can read
// the Redis can sign tokens, so keep it as closed as the keys themselves
// (AUTH, TLS, a network of its own).
//
// Rotate in three steps, each reaching every replica before the next:
//
//  1. Publish(new key): every replica verifies with it; none signs yet.
//     Wait at least a second (the time a change takes to reach the
//     replicas, a round trip in practice).
//  2. Promote(its id): every replica signs with it; tokens of the old key
//     still verify. Wait the longest token lifetime (60 s for 88Pay's
//     tokens; a user token lives 7 days).
//  3. Retire(the old id): the old key's tokens stop verifying everywhere.
//
// A replica that misses a change (its subscription broke) loads the whole
// ring again when the subscription is back. RingSync is safe for concurrent
// use; it starts one goroutine, which Close ends.
type RingSync struct {
	rdb     redis.UniversalClient
	prefix  string
	timeout time.Duration
	ring    *apiguard.KeyRing

	mu   sync.Mutex
	keys map[string]*apiguard.SigningKey // the keys this RingSync put in ring, by id

	ps   *redis.PubSub
	done chan struct{}
}

// NewKeyRing returns a KeyRing holding the keys kept in rdb, kept the same
// as every other replica's by the RingSync it also returns. When rdb holds
// no signing key yet, the first replica to start generates one (ECDSA
// P-256) and the others load it. Options: WithPrefix, WithTimeout.
func NewKeyRing(ctx context.Context, rdb redis.UniversalClient, opts ...Option) (*apiguard.KeyRing, *RingSync, error) {
	c, err := newConfig(rdb, opts)
	if err != nil {
		return nil, nil, err
	}
	s := &RingSync{rdb: rdb, prefix: c.prefix, timeout: c.timeout, keys: map[string]*apiguard.SigningKey{}}
	if err := s.seed(ctx); err != nil {
		return nil, nil, err
	}
	pems, signer, err := s.load(ctx)
	if err != nil {
		return nil, nil, err
	}
	first, err := apiguard.ParseSigningKey([]byte(pems[signer]), signer)
	if err != nil {
		return nil, nil, fmt.Errorf("redisstore: signing key %q: %w", signer, err)
	}
	if s.ring, err = apiguard.NewKeyRing(first); err != nil {
		return nil, nil, err
	}
	s.keys[signer] = first
	s.ps = rdb.Subscribe(context.WithoutCancel(ctx), s.channel())
	sctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if _, err := s.ps.ReceiveTimeout(sctx, c.timeout); err != nil {
		s.ps.Close()
		return nil, nil, fmt.Errorf("redisstore: subscribing: %w", err)
	}
	if err := s.apply(pems, signer); err != nil { // the keys beside the signer
		s.ps.Close()
		return nil, nil, err
	}
	s.done = make(chan struct{})
	go s.run()
	return s.ring, s, nil
}

// seedScript sets the first signing key unless there is one: KEYS are the
// keys hash and the signer; ARGV the id and the PEM.
var seedScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1])
return 1
`)

// seed makes sure rdb holds a signing key.
func (s *RingSync) seed(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := s.rdb.Exists(ctx, s.signerKey()).Result()
	if err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	if n == 1 {
		return nil
	}
	k, err := apiguard.GenerateSigningKey("")
	if err != nil {
		return err
	}
	pem, err := k.PrivatePEM()
	if err != nil {
		return err
	}
	if err := seedScript.Run(ctx, s.rdb, []string{s.keysKey(), s.signerKey()}, k.ID(), pem).Err(); err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	return nil
}

// load reads the keys and the signer's id from Redis.
func (s *RingSync) load(ctx context.Context) (map[string]string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	pipe := s.rdb.Pipeline()
	keys := pipe.HGetAll(ctx, s.keysKey())
	signer := pipe.Get(ctx, s.signerKey())
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, "", fmt.Errorf("redisstore: %w", err)
	}
	if _, ok := keys.Val()[signer.Val()]; !ok {
		return nil, "", fmt.Errorf("redisstore: the signing key %q is not among the ring's keys", signer.Val())
	}
	return keys.Val(), signer.Val(), nil
}

// apply makes the ring hold exactly the keys of pems, signing with signer.
func (s *RingSync) apply(pems map[string]string, signer string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for id, pem := range pems {
		if s.keys[id] != nil {
			continue
		}
		k, err := apiguard.ParseSigningKey([]byte(pem), id)
		if err == nil {
			err = s.ring.Add(k)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("redisstore: key %q: %w", id, err))
			continue
		}
		s.keys[id] = k
	}
	if k := s.keys[signer]; k != nil && s.ring.SigningKeyID() != signer {
		if err := s.ring.Rotate(k); err != nil {
			errs = append(errs, err)
		}
	}
	for id := range s.keys {
		if _, ok := pems[id]; !ok && s.ring.Remove(id) {
			delete(s.keys, id)
		}
	}
	return errors.Join(errs...)
}

// run reloads the ring at every change, and after the subscription breaks.
func (s *RingSync) run() {
	defer close(s.done)
	for {
		msg, err := s.ps.Receive(context.Background())
		switch msg.(type) {
		case *redis.Message, *redis.Subscription:
			if pems, signer, err := s.load(context.Background()); err == nil {
				s.apply(pems, signer)
			}
		}
		if errors.Is(err, redis.ErrClosed) {
			return
		}
	}
}

// Publish adds k to the ring of every replica, to verify tokens; none signs
// with it until Promote. k must hold its private key.
func (s *RingSync) Publish(ctx context.Context, k *apiguard.SigningKey) error {
	if k == nil {
		return errors.New("redisstore: Publish needs a key")
	}
	pem, err := k.PrivatePEM()
	if err != nil {
		return err
	}
	return s.change(ctx, func(pipe redis.Pipeliner) { pipe.HSetNX(ctx, s.keysKey(), k.ID(), pem) })
}

// Promote makes the key id, published before, the signing key of every
// replica.
func (s *RingSync) Promote(ctx context.Context, id string) error {
	ok, err := s.rdb.HExists(ctx, s.keysKey(), id).Result()
	if err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	if !ok {
		return fmt.Errorf("redisstore: no key %q in the ring: Publish it first", id)
	}
	return s.change(ctx, func(pipe redis.Pipeliner) { pipe.Set(ctx, s.signerKey(), id, 0) })
}

// Retire removes the key id from the ring of every replica: the tokens it
// signed stop verifying. The signing key cannot be retired (Promote another
// first).
func (s *RingSync) Retire(ctx context.Context, id string) error {
	signer, err := s.rdb.Get(ctx, s.signerKey()).Result()
	if err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	if signer == id {
		return fmt.Errorf("redisstore: %q is the signing key: Promote another first", id)
	}
	return s.change(ctx, func(pipe redis.Pipeliner) { pipe.HDel(ctx, s.keysKey(), id) })
}

// change runs f's commands and publishes that the ring changed, in one
// transaction.
func (s *RingSync) change(ctx context.Context, f func(redis.Pipeliner)) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		f(pipe)
		pipe.Publish(ctx, s.channel(), "changed")
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	return nil
}

// Close ends the subscription and waits for its goroutine. The ring keeps
// the keys it holds.
func (s *RingSync) Close() error {
	err := s.ps.Close()
	<-s.done
	return err
}

func (s *RingSync) keysKey() string   { return s.prefix + "ring:keys" }
func (s *RingSync) signerKey() string { return s.prefix + "ring:signer" }
func (s *RingSync) channel() string   { return s.prefix + "ring" }
