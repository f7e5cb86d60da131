package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiguard/apiguard"
)

var _ apiguard.SessionStore = (*SessionStore)(nil)

// DefaultSessionCapacity is the number of sessions a SessionStore tracks
// unless WithCapacity says otherwise.
const DefaultSessionCapacity = 1_000_000

// perUser is the number of sessions of one user a SessionStore tracks, as
// apiguard's memory store does.
const perUser = 16

// SessionStore is an apiguard.SessionStore kept in Redis: give it to
// apiguard.NewSessions with apiguard.WithSessionStore on every replica, and
// a refresh token minted on one replica is exchanged on any other, a
// session revoked on one (by an operator, or for refresh-token reuse) is
// refused by all at once, and two replicas presented one refresh token
// mint one successor between them. Each decision (Start, Rotate and the
// revocations) is one Lua script, atomic in Redis; Revoked, called for
// every token verified, is one MGET.
//
// Its keys, under the prefix (WithPrefix):
//
//	sess:<sid>      a hash per tracked session: user, live refresh token id,
//	                end, revoked for reuse; expires at its end
//	sessu:<user>    a sorted set per user of their sessions, in login order
//	sessall         a sorted set of every tracked session, by end
//	rev:s:<sid>     a revoked session: until when
//	rev:u:<user>    a revoked subject: tokens issued up to when, until when
//
// A user or session id longer than 128 bytes is replaced by its SHA-256
// digest in key names. The scripts reach a session's keys from the sorted
// sets, so on Redis Cluster every key of the store must live in one slot:
// give WithPrefix a hash tag, such as "{apiguard}:".
//
// Its bounds: at most 16 sessions per user, as the memory store (a user's
// new login forgets their oldest session that is not revoked; when all 16
// are revoked for reuse, Start fails with apiguard.ErrStoreFull until the
// first revocation ends), and at most the capacity in all (WithCapacity,
// DefaultSessionCapacity by default; past it, Start of a user below their
// share fails with apiguard.ErrStoreFull, which Login answers with 503,
// until sessions end). A tracked session takes about 300 bytes of Redis.
// Operators' revocations are kept until they end, uncounted: only an
// operator makes them.
//
// Every call is bounded by the timeout (WithTimeout); a call that fails or
// times out returns an error, and Sessions refuse the request with 503.
// Redis must keep its data across a restart (appendonly yes) for
// revocations and rotation state to survive it: after a restart without
// persistence, revoked tokens verify again until they expire, and
// refresh tokens of sessions started before it are refused (their
// users log in again).
type SessionStore struct {
	rdb      redis.UniversalClient
	prefix   string
	timeout  time.Duration
	capacity int
}

// NewSessionStore returns a SessionStore that keeps its sessions in rdb.
// Its options: WithPrefix, WithTimeout, WithCapacity.
func NewSessionStore(rdb redis.UniversalClient, opts ...Option) (*SessionStore, error) {
	c, err := newConfig(rdb, opts)
	if err != nil {
		return nil, err
	}
	capacity := c.capacity
	if capacity == 0 {
		capacity = DefaultSessionCapacity
	}
	return &SessionStore{rdb: rdb, prefix: c.prefix, timeout: c.timeout, capacity: capacity}, nil
}

// Scripts' status replies.
const (
	replyFull   = "full"
	replyReused = -1
)

// startScript tracks a session: KEYS sess:<sid>, sessu:<user>, sessall;
// ARGV sid, user, refresh, now, end (Unix ms), per user, capacity, the
// prefix of session hashes.
var startScript = redis.NewScript(`
local now = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local live = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local f = redis.call('HMGET', ARGV[8] .. id, 'end', 'burnt')
  if f[1] and tonumber(f[1]) > now then
    live[#live + 1] = {id, f[2]}
  else
    redis.call('ZREM', KEYS[2], id)
  end
end
if #live >= tonumber(ARGV[6]) then
  local room = false
  for _, s in ipairs(live) do
    if s[2] ~= '1' then
      redis.call('DEL', ARGV[8] .. s[1])
      redis.call('ZREM', KEYS[2], s[1])
      redis.call('ZREM', KEYS[3], s[1])
      room = true
      break
    end
  end
  if not room then return 'full' end
elseif redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[7]) then
  return 'full'
end
redis.call('HSET', KEYS[1], 'sub', ARGV[2], 'ref', ARGV[3], 'end', ARGV[5], 'uk', KEYS[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local order = now
if last[2] and tonumber(last[2]) >= now then order = tonumber(last[2]) + 1 end
redis.call('ZADD', KEYS[2], order, ARGV[1])
if redis.call('PEXPIRETIME', KEYS[2]) < tonumber(ARGV[5]) then
  redis.call('PEXPIREAT', KEYS[2], ARGV[5])
end
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
return 'ok'
`)

// revokeUntil, in the scripts: revoke session key k until u (Unix ms),
// unless it is revoked for longer already.
const revokeUntil = `
local function revoke(k, u)
  local cur = redis.call('GET', k)
  if not cur or tonumber(cur) < tonumber(u) then
    redis.call('SET', k, u, 'PXAT', u)
  end
end
`

// rotateScript: KEYS sess:<sid>, rev:s:<sid>, sessall; ARGV presented
// ("" for any), next, now, burn until (Unix ms), sid. Replies the
// session's end, 0 for a session unknown or ended, -1 for reuse.
var rotateScript = redis.NewScript(revokeUntil + `
local f = redis.call('HMGET', KEYS[1], 'ref', 'end', 'burnt', 'uk')
if not f[2] or f[3] == '1' or tonumber(f[2]) <= tonumber(ARGV[3]) then return 0 end
if ARGV[1] ~= '' and f[1] ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'burnt', '1', 'ref', '', 'end', ARGV[4])
  redis.call('PEXPIREAT', KEYS[1], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
  if f[4] and redis.call('PEXPIRETIME', f[4]) < tonumber(ARGV[4]) then
    redis.call('PEXPIREAT', f[4], ARGV[4])
  end
  revoke(KEYS[2], ARGV[4])
  return -1
end
redis.call('HSET', KEYS[1], 'ref', ARGV[2])
return tonumber(f[2])
`)

// revokeSessionScript: KEYS sess:<sid>, rev:s:<sid>, sessall; ARGV until
// (Unix ms), sid. Forgets a tracked session not revoked for reuse (that
// one keeps its place until its revocation ends).
var revokeSessionScript = redis.NewScript(revokeUntil + `
local f = redis.call('HMGET', KEYS[1], 'end', 'burnt', 'uk')
if f[1] and f[2] ~= '1' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[3], ARGV[2])
  if f[3] then redis.call('ZREM', f[3], ARGV[2]) end
end
revoke(KEYS[2], ARGV[1])
return 1
`)

// Start implements apiguard.SessionStore.
func (s *SessionStore) Start(ctx context.Context, sid, sub, refresh string, now, end time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := startScript.Run(ctx, s.rdb,
		[]string{s.sessionKey(sid), s.userKey(sub), s.allKey()},
		idPart(sid), sub, refresh, now.UnixMilli(), end.UnixMilli(), perUser, s.capacity, s.prefix+"sess:").Text()
	switch {
	case err != nil:
		return fmt.Errorf("redisstore: %w", err)
	case res == replyFull:
		return apiguard.ErrStoreFull
	}
	return nil
}

// Rotate implements apiguard.SessionStore.
func (s *SessionStore) Rotate(ctx context.Context, sid, presented, next string, now, burnUntil time.Time) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	end, err := rotateScript.Run(ctx, s.rdb,
		[]string{s.sessionKey(sid), s.revokedSessionKey(sid), s.allKey()},
		presented, next, now.UnixMilli(), burnUntil.UnixMilli(), idPart(sid)).Int64()
	switch {
	case err != nil:
		return time.Time{}, fmt.Errorf("redisstore: %w", err)
	case end == replyReused:
		return time.Time{}, apiguard.ErrRefreshTokenReused
	case end <= 0:
		return time.Time{}, nil
	}
	return time.UnixMilli(end), nil
}

// RevokeSession implements apiguard.SessionStore.
func (s *SessionStore) RevokeSession(ctx context.Context, sid string, now, until time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := revokeSessionScript.Run(ctx, s.rdb,
		[]string{s.sessionKey(sid), s.revokedSessionKey(sid), s.allKey()},
		until.UnixMilli(), idPart(sid)).Err()
	if err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	return nil
}

// RevokeSubject implements apiguard.SessionStore: one SET, replacing any
// earlier revocation of sub (this one is later, and ends later).
func (s *SessionStore) RevokeSubject(ctx context.Context, sub string, at, until time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	v := strconv.FormatInt(at.UnixMilli(), 10) + ":" + strconv.FormatInt(until.UnixMilli(), 10)
	if err := s.rdb.Do(ctx, "SET", s.revokedSubjectKey(sub), v, "PXAT", until.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	return nil
}

// Revoked implements apiguard.SessionStore: one MGET of the session's and
// the subject's revocations.
func (s *SessionStore) Revoked(ctx context.Context, sid, sub string, iat, now time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	vs, err := s.rdb.MGet(ctx, s.revokedSessionKey(sid), s.revokedSubjectKey(sub)).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: %w", err)
	}
	ms := now.UnixMilli()
	if v, ok := vs[0].(string); ok {
		until, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false, errors.New("redisstore: a session revocation that does not parse")
		}
		if ms < until {
			return true, nil
		}
	}
	if v, ok := vs[1].(string); ok {
		a, u, found := strings.Cut(v, ":")
		at, err1 := strconv.ParseInt(a, 10, 64)
		until, err2 := strconv.ParseInt(u, 10, 64)
		if !found || err1 != nil || err2 != nil {
			return false, errors.New("redisstore: a subject revocation that does not parse")
		}
		// Tokens are dated to the second: one issued in the second of the
		// revocation, even after it, is revoked.
		if ms < until && iat.Unix() <= at/1000 {
			return true, nil
		}
	}
	return false, nil
}

func (s *SessionStore) sessionKey(sid string) string        { return s.prefix + "sess:" + idPart(sid) }
func (s *SessionStore) userKey(sub string) string           { return s.prefix + "sessu:" + idPart(sub) }
func (s *SessionStore) allKey() string                      { return s.prefix + "sessall" }
func (s *SessionStore) revokedSessionKey(sid string) string { return s.prefix + "rev:s:" + idPart(sid) }
func (s *SessionStore) revokedSubjectKey(sub string) string { return s.prefix + "rev:u:" + idPart(sub) }

// idPart is id as it appears in a key name: "=" and the id up to
// maxKeyLen bytes, "#" and its SHA-256 digest past that, so that no id kept
// as it is can name the key of a digest.
func idPart(id string) string {
	if len(id) > maxKeyLen {
		return "#" + digest(id)
	}
	return "=" + id
}
