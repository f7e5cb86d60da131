package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/internal/bounds"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Limiter is an apiguard.Limiter whose buckets live in Redis, so that the
// replicas of a server share one limit: however many replicas take from one
// key, no more than its tokens are granted.
//
// It runs the generic cell rate algorithm (a token bucket) on the Redis
// server's clock, atomically in one round trip: with one window through
// github.com/go-redis/redis_rate, with several through a script of the same
// arithmetic that checks every window and updates all or none, so that a
// request refused by one window takes nothing from the others. A bucket is
// one Redis string that expires when it is full again, named
//
//	rate:{<prefix>rl:<key>}:<limit>/<period>
//
// (the hash tag keeps a key's windows on one Redis Cluster slot; a key
// longer than 128 bytes is replaced by its SHA-256 digest). Limiters with
// the same prefix and windows share the buckets of equal keys: give each
// limit its own prefix (WithPrefix) where that is not meant.
//
// Take returns an error, within the timeout (WithTimeout), when Redis fails.
// A Limiter is safe for concurrent use.
type Limiter struct {
	rdb     redis.UniversalClient
	rate    *redis_rate.Limiter
	windows []window
	prefix  string
	timeout time.Duration
}

type window struct {
	limit  redis_rate.Limit
	suffix string // "}:10/1m0s"
}

var _ apiguard.Limiter = (*Limiter)(nil)

// NewLimiter returns a Limiter that keeps its buckets in rdb and admits a
// key's requests while every one of windows (at most bounds.MaxWindows,
// each of a whole number of microseconds per token) has a token for them.
func NewLimiter(rdb redis.UniversalClient, windows []apiguard.Window, opts ...Option) (*Limiter, error) {
	c, err := newConfig(rdb, opts)
	if err != nil {
		return nil, err
	}
	if len(windows) == 0 || len(windows) > bounds.MaxWindows {
		return nil, fmt.Errorf("redisstore: %d windows, want 1 to %d", len(windows), bounds.MaxWindows)
	}
	l := &Limiter{rdb: rdb, rate: redis_rate.NewLimiter(rdb), prefix: c.prefix, timeout: c.timeout}
	for i, w := range windows {
		if w.Limit < 1 || w.Period <= 0 || w.Period > bounds.MaxPeriod || int64(w.Limit) > int64(w.Period/time.Microsecond) {
			return nil, fmt.Errorf("redisstore: window %d (%v): want a limit of at least 1 and a period of at least a microsecond per token, at most %v", i, w, bounds.MaxPeriod)
		}
		l.windows = append(l.windows, window{
			limit:  redis_rate.Limit{Rate: w.Limit, Burst: w.Limit, Period: w.Period},
			suffix: "}:" + strconv.Itoa(w.Limit) + "/" + w.Period.String(),
		})
	}
	return l, nil
}

// Take implements apiguard.Limiter.
func (l *Limiter) Take(ctx context.Context, key string, n int) (apiguard.LimitResult, error) {
	n = max(n, 0)
	if len(key) > maxKeyLen {
		key = "sha256:" + digest(key)
	}
	base := "{" + l.prefix + "rl:" + key
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	if len(l.windows) == 1 {
		w := l.windows[0]
		res, err := l.rate.AllowN(ctx, base+w.suffix, w.limit, n)
		if err != nil {
			return apiguard.LimitResult{}, fmt.Errorf("redisstore: %w", err)
		}
		out := apiguard.LimitResult{
			Allowed:   res.RetryAfter < 0,
			Limit:     w.limit.Rate,
			Remaining: res.Remaining,
			Reset:     max(res.ResetAfter, 0),
		}
		if !out.Allowed {
			out.RetryAfter = max(res.RetryAfter, 1)
		}
		return out, nil
	}
	keys := make([]string, len(l.windows))
	args := make([]any, 1, 1+2*len(l.windows))
	args[0] = n
	for i, w := range l.windows {
		keys[i] = "rate:" + base + w.suffix
		args = append(args, w.limit.Rate, w.limit.Period.Seconds())
	}
	v, err := allowAll.Run(ctx, l.rdb, keys, args...).Slice()
	if err != nil {
		return apiguard.LimitResult{}, fmt.Errorf("redisstore: %w", err)
	}
	res, err := l.result(v)
	if err != nil {
		return apiguard.LimitResult{}, fmt.Errorf("redisstore: unexpected reply: %w", err)
	}
	return res, nil
}

// result reads the reply of allowAll.
func (l *Limiter) result(v []any) (apiguard.LimitResult, error) {
	ints := func(i int) (int, error) {
		if i >= len(v) {
			return 0, errors.New("short reply")
		}
		x, ok := v[i].(int64)
		if !ok {
			return 0, fmt.Errorf("item %d is %T", i, v[i])
		}
		return int(x), nil
	}
	secs := func(i int) (time.Duration, error) {
		if i >= len(v) {
			return 0, errors.New("short reply")
		}
		s, ok := v[i].(string)
		if !ok {
			return 0, fmt.Errorf("item %d is %T", i, v[i])
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("item %d is %q", i, s)
		}
		return max(time.Duration(f*float64(time.Second)), 0), nil
	}
	allowed, err := ints(0)
	if err != nil {
		return apiguard.LimitResult{}, err
	}
	if allowed == 0 {
		i, err1 := ints(1)
		rem, err2 := ints(2)
		wait, err3 := secs(3)
		reset, err4 := secs(4)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return apiguard.LimitResult{}, err
		}
		if i < 1 || i > len(l.windows) {
			return apiguard.LimitResult{}, fmt.Errorf("window %d", i)
		}
		return apiguard.LimitResult{
			Limit:      l.windows[i-1].limit.Rate,
			Remaining:  rem,
			Reset:      reset,
			RetryAfter: max(wait, 1),
		}, nil
	}
	res := apiguard.LimitResult{Allowed: true, Remaining: math.MaxInt}
	for i, w := range l.windows {
		rem, err1 := ints(2 + 2*i)
		reset, err2 := secs(3 + 2*i)
		if err := errors.Join(err1, err2); err != nil {
			return apiguard.LimitResult{}, err
		}
		if rem < res.Remaining || rem == res.Remaining && reset > res.Reset {
			res.Limit, res.Remaining, res.Reset = w.limit.Rate, rem, reset
		}
	}
	return res, nil
}

// allowAll is redis_rate's GCRA script made to take cost tokens from every
// window of KEYS, or from none. ARGV is cost, then the limit and period (in
// seconds) of each window. A bucket holds the theoretical arrival time in
// seconds since 2017, as redis_rate's do, so the two read each other's.
//
// It returns {0, i, remaining, retry_after, reset_after} when window i
// refuses (the one with the longest wait), else {1, 0} followed by the
// remaining tokens and the reset_after of each window.
var allowAll = redis.NewScript(`
redis.replicate_commands()

local cost = tonumber(ARGV[1])
local jan_1_2017 = 1483228800
local now = redis.call("TIME")
now = (now[1] - jan_1_2017) + (now[2] / 1000000)

local tats, news, intervals, offsets = {}, {}, {}, {}
local refuser, wait = 0, 0
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i])
  local period = tonumber(ARGV[2 * i + 1])
  local interval = period / limit
  local tat = redis.call("GET", KEYS[i])
  if not tat then
    tat = now
  else
    tat = tonumber(tat)
  end
  tat = math.max(tat, now)
  local new_tat = tat + interval * cost
  local diff = now - (new_tat - interval * limit)
  tats[i], news[i], intervals[i], offsets[i] = tat, new_tat, interval, interval * limit
  if cost > 0 and diff < 0 and (refuser == 0 or -diff > wait) then
    refuser, wait = i, -diff
  end
end

if refuser > 0 then
  local i = refuser
  local remaining = math.max(math.floor((now - (tats[i] - offsets[i])) / intervals[i]), 0)
  return {0, i, remaining, tostring(wait), tostring(tats[i] - now)}
end

local out = {1, 0}
for i = 1, #KEYS do
  local reset_after = news[i] - now
  if reset_after > 0 then
    redis.call("SET", KEYS[i], news[i], "EX", math.ceil(reset_after))
  end
  out[#out + 1] = math.max(math.floor((now - (news[i] - offsets[i])) / intervals[i]), 0)
  out[#out + 1] = tostring(reset_after)
end
return out
`)
