package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/internal/wire"
)

var _ apiguard.KeyStore = (*KeyStore)(nil)

// KeyStore is an apiguard.KeyStore kept in Redis, so that every replica of
// a server sees the same keys, and a key revoked through one replica is
// refused by all. Like apiguard.MemoryKeyStore it keeps the SHA-256 digest
// of each key, and the key itself only for keys added with KeepSecret
// (hash schemes need them, KeyStore.Secrets gives them). A key lives under
//
//	<prefix>key:<SHA-256 of the key, hex>   a hash: the client, scopes, role, environment, IPs, not-after
//	<prefix>kid:<key id>                    the digest of the key with that id
//	<prefix>sec:<client id>                 the ids of the client's kept secrets
//
// A key with a NotAfter expires from Redis at that time (PEXPIREAT), so a
// rotated-out key costs nothing once its overlap ends. Nothing else
// expires: the number of keys is the operators' to bound.
//
// Revoke publishes the key id on the channel <prefix>keys, which Listen
// turns into CachedKeyStore.Forget calls on every replica, so that a cache
// in front of the store (as every replica should have: a Lookup is one
// round trip to Redis) drops the key at once.
//
// Lookup returns an error matching apiguard.ErrInvalidKey for a key that is
// unknown, revoked or past its NotAfter, and any other error, within the
// timeout (WithTimeout), when Redis fails: the Guard then answers 503 and
// fails closed. The store keys its records by digest, so an unknown key and
// a wrong one cost the same round trip. It is safe for concurrent use, and
// meant for one Redis (or a cluster with the prefix in a hash tag: the
// records of one key must share a slot).
type KeyStore struct {
	rdb     redis.UniversalClient
	prefix  string
	timeout time.Duration
	now     func() time.Time
}

// NewKeyStore returns a KeyStore that keeps its keys in rdb. Options:
// WithPrefix, WithTimeout, WithClock (the time NotAfter is compared with).
func NewKeyStore(rdb redis.UniversalClient, opts ...Option) (*KeyStore, error) {
	c, err := newConfig(rdb, opts)
	if err != nil {
		return nil, err
	}
	return &KeyStore{rdb: rdb, prefix: c.prefix, timeout: c.timeout, now: c.now}, nil
}

// Record fields of a key's hash.
const (
	fClient      = "client"
	fKeyID       = "kid"
	fScopes      = "scopes"
	fRole        = "role"
	fEnv         = "env"
	fIPs         = "ips"
	fPublishable = "pub"
	fNotAfter    = "na" // Unix nanoseconds; absent: none
	fSecret      = "sec"
)

// addScript adds a key unless its id or the key itself is taken: KEYS are
// the record, the id's entry and the client's secrets; ARGV the digest,
// the key id, PEXPIREAT (0: none), the secret (empty: none kept), then the
// record's field-value pairs.
var addScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 2 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('SET', KEYS[2], ARGV[1])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'sec', ARGV[4])
  redis.call('SADD', KEYS[3], ARGV[2])
end
if ARGV[3] ~= '0' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
  redis.call('PEXPIREAT', KEYS[2], ARGV[3])
end
return 0
`)

// errKeyTaken and errKeyIDTaken are what Add returns for a key, or a key
// id, the store holds already.
var (
	errKeyIDTaken = errors.New("redisstore: a key with that id exists")
	errKeyTaken   = errors.New("redisstore: the key exists")
)

// Add stores spec as apiguard.MemoryKeyStore.Add does: Client.ID is
// required, an empty Client.KeyID gets a random one, a zero Client.Env is
// taken from the key's prefix (apiguard.EnvironmentOf). It fails on a key
// or key id the store holds already, on a NotAfter in the past, on a
// registered IP range with host bits set (203.0.113.7/24: write
// 203.0.113.7/32 or 203.0.113.0/24), and when Redis fails.
func (s *KeyStore) Add(ctx context.Context, spec apiguard.KeySpec) error {
	c := spec.Client
	switch {
	case !wire.ValidCredential(spec.Key):
		return errors.New("redisstore: a key must be 1 to 1024 printable ASCII characters without spaces")
	case c.ID == "":
		return errors.New("redisstore: a key needs a Client.ID")
	case !spec.NotAfter.IsZero() && !spec.NotAfter.After(s.now()):
		return errors.New("redisstore: NotAfter is in the past")
	}
	if c.KeyID == "" {
		var b [12]byte
		rand.Read(b[:])
		c.KeyID = "key_" + hex.EncodeToString(b[:])
	}
	if c.Env == apiguard.AnyEnvironment {
		c.Env = apiguard.EnvironmentOf(spec.Key)
	}
	scopes, _ := json.Marshal(c.Scopes)
	ips := make([]string, len(c.IPs))
	for i, p := range c.IPs {
		p, err := wire.CheckPrefix(p)
		if err != nil {
			return fmt.Errorf("redisstore: the registered IPs of key %q: %w", c.KeyID, err)
		}
		ips[i] = p.String()
	}
	ipsJSON, _ := json.Marshal(ips)
	d := keyDigest(spec.Key)
	args := []any{d, c.KeyID, "0", "",
		fClient, c.ID, fKeyID, c.KeyID, fScopes, scopes, fRole, c.Role,
		fEnv, strconv.Itoa(int(c.Env)), fIPs, ipsJSON, fPublishable, strconv.FormatBool(c.Publishable)}
	if !spec.NotAfter.IsZero() {
		args[2] = strconv.FormatInt(spec.NotAfter.UnixMilli(), 10)
		args = append(args, fNotAfter, strconv.FormatInt(spec.NotAfter.UnixNano(), 10))
	}
	if spec.KeepSecret {
		args[3] = spec.Key
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := addScript.Run(ctx, s.rdb, []string{s.recordKey(d), s.idKey(c.KeyID), s.secretsKey(c.ID)}, args...).Int()
	switch {
	case err != nil:
		return fmt.Errorf("redisstore: %w", err)
	case n == 1:
		return errKeyIDTaken
	case n == 2:
		return errKeyTaken
	}
	return nil
}

// Lookup implements apiguard.KeyStore: one HGETALL.
func (s *KeyStore) Lookup(ctx context.Context, key string) (*apiguard.Client, error) {
	if !wire.ValidCredential(key) {
		return nil, apiguard.ErrInvalidKey
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rec, err := s.rdb.HGetAll(ctx, s.recordKey(keyDigest(key))).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	c, _, ok := s.client(rec)
	if !ok {
		return nil, apiguard.ErrInvalidKey
	}
	return c, nil
}

// client decodes a record, and reports whether it is a live key.
func (s *KeyStore) client(rec map[string]string) (*apiguard.Client, string, bool) {
	if len(rec) == 0 || rec[fClient] == "" {
		return nil, "", false
	}
	if na, ok := rec[fNotAfter]; ok {
		n, err := strconv.ParseInt(na, 10, 64)
		if err != nil || !s.now().Before(time.Unix(0, n)) {
			return nil, "", false
		}
	}
	c := &apiguard.Client{ID: rec[fClient], KeyID: rec[fKeyID], Role: rec[fRole]}
	if json.Unmarshal([]byte(rec[fScopes]), &c.Scopes) != nil {
		return nil, "", false
	}
	env, err := strconv.Atoi(rec[fEnv])
	if err != nil {
		return nil, "", false
	}
	c.Env = apiguard.Environment(env)
	c.Publishable = rec[fPublishable] == "true"
	var ips []string
	if json.Unmarshal([]byte(rec[fIPs]), &ips) != nil {
		return nil, "", false
	}
	for _, ip := range ips {
		p, err := netip.ParsePrefix(ip)
		if err != nil {
			return nil, "", false
		}
		c.IPs = append(c.IPs, p)
	}
	return c, rec[fSecret], true
}

// Secrets implements apiguard.KeyStore: the live kept secrets of clientID.
func (s *KeyStore) Secrets(ctx context.Context, clientID string) ([]apiguard.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ids, err := s.rdb.SMembers(ctx, s.secretsKey(clientID)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	var out []apiguard.Secret
	for _, id := range ids {
		d, err := s.rdb.Get(ctx, s.idKey(id)).Result()
		if errors.Is(err, redis.Nil) {
			continue // revoked or expired
		} else if err != nil {
			return nil, fmt.Errorf("redisstore: %w", err)
		}
		rec, err := s.rdb.HGetAll(ctx, s.recordKey(d)).Result()
		if err != nil {
			return nil, fmt.Errorf("redisstore: %w", err)
		}
		if c, secret, ok := s.client(rec); ok && secret != "" && c.ID == clientID {
			out = append(out, apiguard.Secret{Key: secret, Client: c})
		}
	}
	return out, nil
}

// revokeScript revokes a key by id: KEYS[1] is the id's entry (the record
// and the client's secrets are found through it); ARGV the key id, the
// package's prefix, and the time in Unix nanoseconds and milliseconds from
// which it is refused (0: now, and the key is deleted). It returns 0 for an
// unknown id.
var revokeScript = redis.NewScript(`
local d = redis.call('GET', KEYS[1])
if not d then return 0 end
local rec = ARGV[2] .. 'key:' .. d
if ARGV[3] == '0' then
  local client = redis.call('HGET', rec, 'client')
  redis.call('DEL', rec, KEYS[1])
  if client then redis.call('SREM', ARGV[2] .. 'sec:' .. client, ARGV[1]) end
else
  redis.call('HSET', rec, 'na', ARGV[3])
  redis.call('PEXPIREAT', rec, ARGV[4])
  redis.call('PEXPIREAT', KEYS[1], ARGV[4])
end
return 1
`)

// Revoke makes the key keyID stop working at at (the zero time,
// or a time not after now: at once; later: an overlap, as a rotation
// gives the old key), and publishes keyID so that the caches of every
// replica listening (Listen) forget it. It reports whether the store held
// that key; it fails when Redis fails.
func (s *KeyStore) Revoke(ctx context.Context, keyID string, at time.Time) (bool, error) {
	ns, ms := "0", "0"
	if !at.IsZero() && at.After(s.now()) {
		ns, ms = strconv.FormatInt(at.UnixNano(), 10), strconv.FormatInt(at.UnixMilli(), 10)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := revokeScript.Run(ctx, s.rdb, []string{s.idKey(keyID)}, keyID, s.prefix, ns, ms).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: %w", err)
	}
	if err := s.rdb.Publish(ctx, s.channel(), keyID).Err(); err != nil {
		return n == 1, fmt.Errorf("redisstore: revoked, but not published: %w", err)
	}
	return n == 1, nil
}

// keyDigest is the hex SHA-256 digest of a key: the name of its record.
func keyDigest(key string) string {
	d := sha256.Sum256([]byte(key))
	return hex.EncodeToString(d[:])
}

func (s *KeyStore) recordKey(digest string) string { return s.prefix + "key:" + digest }
func (s *KeyStore) idKey(keyID string) string      { return s.prefix + "kid:" + keyID }
func (s *KeyStore) secretsKey(client string) string {
	return s.prefix + "sec:" + client
}
func (s *KeyStore) channel() string { return s.prefix + "keys" }

// A Forgetter is a cache of key lookups that can drop what it holds:
// apiguard.CachedKeyStore is one.
type Forgetter interface {
	Forget(keyID string) // drop the entries of one key id
	Purge()              // drop everything
}

// Listener makes a cache forget the keys that KeyStores on one Redis and
// prefix revoke; see Listen.
type Listener struct {
	ps   *redis.PubSub
	done chan struct{}
}

// Listen subscribes to the key ids that Revoke publishes, on any replica,
// and makes cache forget each as it arrives: a key revoked on one replica
// is refused on every listening replica within about a round trip. When
// the subscription breaks, go-redis subscribes again; what was published
// in between is lost, so cache is purged when the subscription is back.
// Listen returns once subscribed; it starts one goroutine, which Close
// ends.
func (s *KeyStore) Listen(ctx context.Context, cache Forgetter) (*Listener, error) {
	if cache == nil {
		return nil, errors.New("redisstore: Listen needs a cache")
	}
	ps := s.rdb.Subscribe(context.WithoutCancel(ctx), s.channel())
	sctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := ps.ReceiveTimeout(sctx, s.timeout); err != nil { // the subscription's confirmation
		ps.Close()
		return nil, fmt.Errorf("redisstore: subscribing: %w", err)
	}
	l := &Listener{ps: ps, done: make(chan struct{})}
	go l.run(cache)
	return l, nil
}

func (l *Listener) run(cache Forgetter) {
	defer close(l.done)
	for {
		msg, err := l.ps.Receive(context.Background())
		switch m := msg.(type) {
		case *redis.Message:
			cache.Forget(m.Payload)
		case *redis.Subscription:
			cache.Purge() // subscribed again after a break: something may be lost
		}
		if errors.Is(err, redis.ErrClosed) {
			return
		}
	}
}

// Close ends the subscription and waits for its goroutine.
func (l *Listener) Close() error {
	err := l.ps.Close()
	<-l.done
	return err
}
