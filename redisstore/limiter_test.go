package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/internal/bounds"
	"github.com/redis/go-redis/v9"
)

func mustLimiter(t testing.TB, rdb redis.UniversalClient, windows []apiguard.Window, opts ...Option) *Limiter {
	t.Helper()
	l, err := NewLimiter(rdb, windows, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func take(t testing.TB, l apiguard.Limiter, key string, n int) apiguard.LimitResult {
	t.Helper()
	res, err := l.Take(context.Background(), key, n)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// near reports whether d is within a second below want: Redis's clock runs
// while a test does.
func near(d, want time.Duration) bool { return d <= want && d > want-time.Second }

func TestNewLimiterConfig(t *testing.T) {
	rdb := shared.client(t)
	plain := redis.NewClient(&redis.Options{Addr: shared.addr})
	defer plain.Close()
	ok := []apiguard.Window{apiguard.PerMinute(10)}
	tests := []struct {
		name    string
		rdb     redis.UniversalClient
		windows []apiguard.Window
		opts    []Option
	}{
		{"no client", nil, ok, nil},
		{"client without ContextTimeoutEnabled", plain, ok, nil},
		{"no windows", rdb, nil, nil},
		{"too many windows", rdb, make([]apiguard.Window, bounds.MaxWindows+1), nil},
		{"zero limit", rdb, []apiguard.Window{{Limit: 0, Period: time.Minute}}, nil},
		{"zero period", rdb, []apiguard.Window{{Limit: 1}}, nil},
		{"long period", rdb, []apiguard.Window{{Limit: 1, Period: bounds.MaxPeriod + 1}}, nil},
		{"sub-microsecond tokens", rdb, []apiguard.Window{{Limit: 1001, Period: time.Millisecond}}, nil},
		{"zero timeout", rdb, ok, []Option{WithTimeout(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewLimiter(tt.rdb, tt.windows, tt.opts...); err == nil {
				t.Error("no error")
			}
		})
	}
	if _, err := NewIDStore(plain); err == nil {
		t.Error("NewIDStore: client without ContextTimeoutEnabled accepted")
	}
	if _, err := NewLimiter(rdb, []apiguard.Window{{Limit: 1000, Period: time.Millisecond}}); err != nil {
		t.Errorf("a token per microsecond: %v", err)
	}
}

// TestLimiter runs the same sequence on one window (redis_rate) and on
// several (the script).
func TestLimiter(t *testing.T) {
	rdb := shared.client(t)
	for _, ws := range [][]apiguard.Window{
		{apiguard.PerHour(3)},
		{apiguard.PerHour(3), {Limit: 100, Period: 24 * time.Hour}},
	} {
		t.Run(fmt.Sprint(ws[0].Limit, "/", ws[0].Period)+"+"+itoa(len(ws)), func(t *testing.T) {
			l := mustLimiter(t, rdb, ws, prefix(t))
			for i := range 3 {
				res := take(t, l, "k", 1)
				if !res.Allowed || res.Limit != 3 || res.Remaining != 2-i || !near(res.Reset, time.Duration(i+1)*20*time.Minute) {
					t.Fatalf("take %d: %+v", i+1, res)
				}
			}
			res := take(t, l, "k", 1)
			if res.Allowed || res.Limit != 3 || res.Remaining != 0 || !near(res.RetryAfter, 20*time.Minute) || !near(res.Reset, time.Hour) {
				t.Fatalf("take 4: %+v", res)
			}
			if res := take(t, l, "other", 1); !res.Allowed || res.Remaining != 2 {
				t.Fatalf("another key: %+v", res)
			}
			if res := take(t, l, "k", 0); !res.Allowed || res.Remaining != 0 {
				t.Fatalf("peek: %+v", res)
			}
			if res := take(t, l, "new", 4); res.Allowed {
				t.Fatalf("4 of 3: %+v", res)
			}
		})
	}
}

func itoa(n int) string { return string(rune('0' + n)) }

// TestSeveralWindows shows that a request refused by one window takes
// nothing from the others, that RetryAfter is the longest wait among the
// refusing windows, and which window the result describes.
func TestSeveralWindows(t *testing.T) {
	rdb := shared.client(t)
	ctx := context.Background()
	day := func(n int) apiguard.Window { return apiguard.Window{Limit: n, Period: 24 * time.Hour} }
	for _, tt := range []struct {
		name    string
		windows []apiguard.Window
		refuser int // the window that refuses the third request
	}{
		{"the hour refuses, the day keeps its tokens", []apiguard.Window{apiguard.PerHour(2), day(5)}, 0},
		{"the day refuses, the hour keeps its tokens", []apiguard.Window{apiguard.PerHour(5), day(2)}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := "sw" + itoa(tt.refuser) + ":"
			l := mustLimiter(t, rdb, tt.windows, WithPrefix(p))
			keys := []string{"rate:{" + p + "rl:k}:" + fmt.Sprint(tt.windows[0].Limit, "/", tt.windows[0].Period), "rate:{" + p + "rl:k}:" + fmt.Sprint(tt.windows[1].Limit, "/", tt.windows[1].Period)}
			rdb.Del(ctx, keys...)
			take(t, l, "k", 1)
			take(t, l, "k", 1)
			before := rdb.MGet(ctx, keys...).Val()
			for range 3 {
				res := take(t, l, "k", 1)
				if res.Allowed || res.Limit != 2 {
					t.Fatalf("third request: %+v, want refused by the window of 2", res)
				}
			}
			if after := rdb.MGet(ctx, keys...).Val(); !reflect.DeepEqual(before, after) {
				t.Fatalf("refusals changed the buckets: %v -> %v", before, after)
			}
		})
	}
	t.Run("retry after the longest wait", func(t *testing.T) {
		l := mustLimiter(t, rdb, []apiguard.Window{apiguard.PerMinute(1), day(1), apiguard.PerHour(1)}, prefix(t))
		take(t, l, "k", 1)
		res := take(t, l, "k", 1)
		if res.Allowed || res.Limit != 1 || !near(res.RetryAfter, 24*time.Hour) || !near(res.Reset, 24*time.Hour) {
			t.Errorf("%+v, want refused for a day", res)
		}
	})
	t.Run("the result describes the window nearest its limit", func(t *testing.T) {
		l := mustLimiter(t, rdb, []apiguard.Window{apiguard.PerMinute(5), apiguard.PerHour(3)}, prefix(t))
		if res := take(t, l, "k", 1); res.Limit != 3 || res.Remaining != 2 || !near(res.Reset, 20*time.Minute) {
			t.Errorf("%+v, want the hour window with 2 left", res)
		}
	})
	t.Run("one window and several share a bucket", func(t *testing.T) {
		p := prefix(t)
		one := mustLimiter(t, rdb, []apiguard.Window{apiguard.PerHour(4)}, p)
		two := mustLimiter(t, rdb, []apiguard.Window{apiguard.PerHour(4), day(100)}, p)
		take(t, one, "k", 2)
		if res := take(t, two, "k", 1); !res.Allowed || res.Remaining != 1 {
			t.Errorf("the script after redis_rate: %+v", res)
		}
		if res := take(t, one, "k", 1); !res.Allowed || res.Remaining != 0 {
			t.Errorf("redis_rate after the script: %+v", res)
		}
	})
}

// TestExactness hammers one key from many goroutines, and from two
// limiters with clients of their own (two replicas): exactly the limit is
// admitted.
func TestExactness(t *testing.T) {
	const goroutines, each, limit = 16, 25, 150
	for _, ws := range [][]apiguard.Window{
		{apiguard.PerHour(limit)},
		{apiguard.PerHour(limit), {Limit: 1000, Period: 24 * time.Hour}},
		{{Limit: 1000, Period: 24 * time.Hour}, apiguard.PerHour(limit), apiguard.PerMinute(limit + 10)},
	} {
		for _, replicas := range []int{1, 2} {
			t.Run(itoa(len(ws))+" windows, "+itoa(replicas)+" replicas", func(t *testing.T) {
				p := prefix(t)
				var ls []*Limiter
				for range replicas {
					ls = append(ls, mustLimiter(t, shared.client(t), ws, p, WithTimeout(10*time.Second)))
				}
				var admitted atomic.Int64
				var wg sync.WaitGroup
				for g := range goroutines {
					l := ls[g%replicas]
					wg.Go(func() {
						for range each {
							res, err := l.Take(context.Background(), "hot", 1)
							if err != nil {
								t.Error(err)
								return
							}
							if res.Allowed {
								admitted.Add(1)
							}
						}
					})
				}
				wg.Wait()
				if n := admitted.Load(); n != limit {
					t.Errorf("%d admitted, want %d", n, limit)
				}
			})
		}
	}
}

func TestLongKeysHashed(t *testing.T) {
	rdb := shared.client(t)
	l := mustLimiter(t, rdb, []apiguard.Window{apiguard.PerHour(1)}, WithPrefix("long:"))
	long := strings.Repeat("x", 10_000)
	take(t, l, long, 1)
	if res := take(t, l, long, 1); res.Allowed {
		t.Error("the long key was not counted")
	}
	if res := take(t, l, long+"y", 1); !res.Allowed {
		t.Error("two long keys share a bucket")
	}
	keys := rdb.Keys(context.Background(), "rate:{long:*").Val()
	if len(keys) != 2 {
		t.Fatalf("keys %q", keys)
	}
	for _, k := range keys {
		if len(k) > 100 {
			t.Errorf("key of %d bytes", len(k))
		}
	}
}

// TestRateLimitWrapper serves requests through apiguard's wrapper on a
// Redis limiter.
func TestRateLimitWrapper(t *testing.T) {
	g := apiguard.MustNew(nil, apiguard.WithDialect(apiguard.Pay88()))
	l := mustLimiter(t, shared.client(t), []apiguard.Window{apiguard.PerMinute(10), apiguard.PerHour(100)}, prefix(t))
	mw := g.RateLimit(l, apiguard.ByIP())
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for i := range 10 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/api/auth/token", nil))
		if w.Code != 200 || w.Header().Get("RateLimit-Remaining") != itoa(9-i) {
			t.Fatalf("request %d: %d %v", i+1, w.Code, w.Header())
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/api/auth/token", nil))
	if w.Code != 429 || w.Header().Get("Retry-After") != "6" || w.Header().Get("RateLimit-Limit") != "10" {
		t.Errorf("11th: %d %v", w.Code, w.Header())
	}
	wantJSON(t, w.Body.Bytes(), `{"status":"Error","code":429,"message":"Rate limit exceeded"}`)
}

func wantJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := errors.Join(json.Unmarshal(got, &g), json.Unmarshal([]byte(want), &w)); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body %s, want %s", got, want)
	}
}
