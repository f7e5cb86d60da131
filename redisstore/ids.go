package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiguard/apiguard"
)

var _ apiguard.ReplayStore = (*IDStore)(nil)

// IDStore remembers unique request ids in Redis for a while, so that every
// replica of a server refuses an id any of them has seen. An id is kept
// under
//
//	<prefix>rid:<namespace>:<SHA-256 of the id, base64url>
//
// holding a random token of 22 characters that names the call that
// recorded it, so a caller's id, whatever its length, costs Redis one
// short key until its time to live runs out, and a member of two sorted
// sets that count the ids held (<prefix>ridall) and those of the
// namespace's share (<prefix>ridn:<namespace up to its first NUL byte>):
// about 350 bytes an id in all.
//
// Its bounds, as apiguard's MemoryReplayStore: at most its capacity of ids
// held (WithCapacity, DefaultIDCapacity by default), and an eighth of it
// for the ids of one share (a namespace, or namespaces that begin alike up
// to a NUL byte, as RequestID keeps a publishable client's callers). A new
// id past its share gets apiguard.ErrStoreFull (RequestID answers 503),
// while every other namespace goes on; past the capacity, every new id
// does, until ids expire. No id is ever dropped to make room: that would
// let a caller flush ids and replay them.
//
// It is an apiguard.ReplayStore: give it to Guard.RequestID so that every
// replica refuses an id any of them has seen. Seen and Forget return an
// error, within the timeout (WithTimeout), when Redis fails.
//
// A Seen that fails may still have recorded its id: a command already
// written to a Redis that is stopped or slow runs when Redis gets to it,
// after the caller was refused with 503. So that the caller's retry is not
// refused as a duplicate, the store releases such ids: it deletes the key
// if, and only if, it still holds the failed call's token (so an id that
// another request holds is never released), in the same round trip as its
// next calls to Redis, before their own command. A release is kept until
// Redis has answered it twice (the second time after the first answer, by
// when anything sent before the failure has run), or has deleted the key.
// At most 10,000 releases wait, about 250 bytes each (2.5 MB); past that, the ids
// of further failures are not released and stay recorded until their time
// to live runs out, as an id whose Forget fails does. The retry of an id,
// on the replica that failed, releases it before recording it again; on
// another replica, the id is free once the failed replica has sent its
// releases, with its next calls to Redis (at most 64 in each).
//
// An IDStore is safe for concurrent use. It starts no goroutine.
type IDStore struct {
	rdb             redis.UniversalClient
	prefix          string
	timeout         time.Duration
	capacity, share int

	mu      sync.Mutex
	pending map[string][]release // by Redis key: a key may have several
	held    int                  // releases in pending
	order   []string             // keys of pending, oldest first; may hold keys no longer pending
}

// release is the deletion of an id a failed Seen may have recorded.
type release struct {
	token    string // the value the failed call wrote
	answered bool   // Redis answered it once without deleting the key
}

// Bounds of the releases an IDStore keeps and sends.
const (
	maxPendingReleases = 10_000 // releases waiting, at most
	releasesPerCall    = 64     // releases sent with one call, at most, besides the call's own id's
)

// DefaultIDCapacity is the number of ids an IDStore holds unless
// WithCapacity says otherwise; one share holds an eighth.
const DefaultIDCapacity = 1_000_000

// seenScript records an id unless it is held, or its share or the store is
// full: KEYS the id's key, its share's set, the set of all; ARGV the
// call's token, the ttl in ms, the id's member in the sets, the share's
// and the store's capacity. Replies 1 (fresh), 0 (held), -1 (share full),
// -2 (store full). Times are the server's.
var seenScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return -1 end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) then return -2 end
local exp = now + tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], exp, ARGV[3])
if redis.call('PEXPIRETIME', KEYS[2]) < exp then redis.call('PEXPIREAT', KEYS[2], exp) end
redis.call('ZADD', KEYS[3], exp, ARGV[3])
return 1
`)

// releaseScript deletes an id if it holds ARGV[1]: it releases an id only
// for the call that recorded it. KEYS and ARGV[2] are seenScript's.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return redis.call('DEL', KEYS[1])
`)

// forgetScript deletes an id, whoever recorded it.
var forgetScript = redis.NewScript(`
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return redis.call('DEL', KEYS[1])
`)

// NewIDStore returns an IDStore that keeps its ids in rdb.
func NewIDStore(rdb redis.UniversalClient, opts ...Option) (*IDStore, error) {
	c, err := newConfig(rdb, opts)
	if err != nil {
		return nil, err
	}
	capacity := c.capacity
	if capacity == 0 {
		capacity = DefaultIDCapacity
	}
	return &IDStore{rdb: rdb, prefix: c.prefix, timeout: c.timeout, capacity: capacity, share: max(capacity/8, 1)}, nil
}

// Seen records id in namespace (a client, an API) for ttl, rounded up to a
// whole millisecond, and reports whether it is fresh: true the first time,
// false while an earlier record lives. It is one atomic script, so of
// several requests with one id, on any replicas, exactly one is fresh.
// A new id past its share or the capacity gets apiguard.ErrStoreFull.
// When it fails otherwise, the id is released (see IDStore).
func (s *IDStore) Seen(ctx context.Context, namespace, id string, ttl time.Duration) (fresh bool, err error) {
	if ttl <= 0 {
		return false, fmt.Errorf("redisstore: ttl %v, want a positive duration", ttl)
	}
	ttl = (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
	key, token := s.key(namespace, id), newToken()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	keys, member := s.keys(namespace, key)
	args := []any{token, ttl.Milliseconds(), member, s.share, s.capacity}
	var res int64
	due := s.due(key)
	if len(due) == 0 {
		res, err = seenScript.Run(ctx, s.rdb, keys, args...).Int64()
	} else {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(due))
		for i, d := range due {
			dkeys, dmember := s.keysOf(d.key)
			cmds[i] = releaseScript.Eval(ctx, pipe, dkeys, d.token, dmember)
		}
		seen := seenScript.Eval(ctx, pipe, keys, args...)
		pipe.Exec(ctx) // each command's own error is read below
		s.settle(due, cmds)
		res, err = seen.Int64()
	}
	switch {
	case err != nil:
		s.hold(key, release{token: token})
		return false, fmt.Errorf("redisstore: %w", err)
	case res < 0:
		return false, apiguard.ErrStoreFull
	}
	return res == 1, nil
}

// keys returns the keys of seenScript for the id whose key is key, in
// namespace, and its member in the sets.
func (s *IDStore) keys(namespace, key string) ([]string, string) {
	share, _, _ := strings.Cut(namespace, "\x00")
	member := key[len(s.prefix)+len("rid:"):] // the namespace and the digest
	return []string{key, s.prefix + "ridn:" + share, s.prefix + "ridall"}, member
}

// keysOf is keys for the key of an id alone.
func (s *IDStore) keysOf(key string) ([]string, string) {
	member := key[len(s.prefix)+len("rid:"):]
	namespace := member[:len(member)-1-digestLen]
	return s.keys(namespace, key)
}

// digestLen is the length of digest's result.
const digestLen = 43

// Forget removes id from namespace, so that it is fresh again (RequestID
// calls it when a later check refuses the request that recorded the id).
// Forgetting an id that is not held is not an error.
func (s *IDStore) Forget(ctx context.Context, namespace, id string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	keys, member := s.keys(namespace, s.key(namespace, id))
	if err := forgetScript.Run(ctx, s.rdb, keys, member).Err(); err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	return nil
}

// key is the Redis key of id in namespace. The digest has a fixed length,
// so no namespace and id can make another pair's key.
func (s *IDStore) key(namespace, id string) string {
	return s.prefix + "rid:" + namespace + ":" + digest(id)
}

// newToken returns 128 random bits in unpadded base64url: the value a Seen
// writes, which names it.
func newToken() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// dueRelease is a release taken from the pending ones to be sent.
type dueRelease struct {
	key string
	release
}

// due takes the releases to send with a call for key: key's own first,
// so that its retry is not refused by its own failed record, then the
// oldest, up to releasesPerCall more.
func (s *IDStore) due(key string) []dueRelease {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == 0 {
		return nil
	}
	var out []dueRelease
	take := func(k string) {
		for _, r := range s.pending[k] {
			out = append(out, dueRelease{k, r})
		}
		s.held -= len(s.pending[k])
		delete(s.pending, k)
	}
	take(key)
	own := len(out)
	i := 0
	for ; i < len(s.order) && len(out)-own < releasesPerCall; i++ {
		take(s.order[i])
	}
	s.order = s.order[i:]
	if s.held == 0 {
		s.order = nil
	} else if len(s.order) > 2*len(s.pending)+releasesPerCall {
		// Keys taken as a call's own stay in order; drop them.
		s.order = s.order[:0:0]
		for k := range s.pending {
			s.order = append(s.order, k)
		}
	}
	return out
}

// settle puts back the releases Redis did not answer, and those it
// answered for the first time without deleting the key.
func (s *IDStore) settle(due []dueRelease, cmds []*redis.Cmd) {
	for i, d := range due {
		n, err := cmds[i].Int()
		switch {
		case err == nil && (n == 1 || d.answered):
			// Deleted, or answered twice: nothing sent before the first
			// answer is left to run.
		case err == nil:
			d.answered = true
			s.hold(d.key, d.release)
		default:
			s.hold(d.key, d.release)
		}
	}
}

// hold keeps r until it can be sent, unless maxPendingReleases wait.
func (s *IDStore) hold(key string, r release) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held >= maxPendingReleases {
		return
	}
	if s.pending == nil {
		s.pending = make(map[string][]release)
	}
	if len(s.pending[key]) == 0 {
		s.order = append(s.order, key)
	}
	s.pending[key] = append(s.pending[key], r)
	s.held++
}
