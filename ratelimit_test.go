package apiguard

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func mustLimiter(t testing.TB, clock *testClock, windows []Window, opts ...LimiterOption) *MemoryLimiter {
	t.Helper()
	if clock != nil {
		opts = append(opts, LimiterClock(clock.Now))
	}
	l, err := NewMemoryLimiter(windows, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustRateLimit(t testing.TB, g *Guard, l Limiter, key KeyFunc, opts ...RateLimitOption) Middleware {
	t.Helper()
	mw, err := g.RateLimit(l, key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return mw
}

func take(t testing.TB, l Limiter, key string, n int) LimitResult {
	t.Helper()
	res, err := l.Take(context.Background(), key, n)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// state returns the tats of key in l, to show what a Take changed.
func (l *MemoryLimiter) state(key string) ([]int64, bool) {
	h := maphash.String(l.seed, key)
	switch s := l.store.(type) {
	case *shards[[1]int64]:
		return peekShards(s, h)
	case *shards[[2]int64]:
		return peekShards(s, h)
	case *shards[[4]int64]:
		return peekShards(s, h)
	case *shards[[8]int64]:
		return peekShards(s, h)
	}
	panic("unknown store")
}

func peekShards[V tats](s *shards[V], h uint64) ([]int64, bool) {
	sh := &s.shards[h>>s.shift]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	v, ok := sh.lru.Peek(h)
	if !ok {
		return nil, false
	}
	out := make([]int64, len(s.ws))
	for i := range out {
		out[i] = v[i]
	}
	return out, true
}

func TestLimiterConfig(t *testing.T) {
	windows := map[string][]Window{
		"none":           nil,
		"zero limit":     {{0, time.Minute}},
		"negative limit": {{-1, time.Minute}},
		"zero period":    {{1, 0}},
		"long period":    {{1, MaxPeriod + 1}},
		"sub-ns":         {{10, 5}},
		"too many":       make([]Window, MaxWindows+1),
	}
	for name, ws := range windows {
		t.Run(name, func(t *testing.T) {
			if _, err := NewMemoryLimiter(ws); err == nil {
				t.Error("no error")
			}
		})
	}
	ok := []Window{PerSecond(1), PerMinute(10), PerHour(100), {1, MaxPeriod}, {7, 7}}
	if _, err := NewMemoryLimiter(ok); err != nil {
		t.Errorf("valid windows: %v", err)
	}
	if _, err := NewMemoryLimiter(ok[:1], LimiterCapacity(0)); err == nil {
		t.Error("capacity 0 accepted")
	}
	if _, err := NewMemoryLimiter(ok[:1], LimiterClock(nil)); err == nil {
		t.Error("nil clock accepted")
	}
	for _, bits := range [][2]int{{-1, 64}, {33, 64}, {32, -1}, {32, 129}} {
		if _, err := KeyByIPPrefix(bits[0], bits[1]); err == nil {
			t.Errorf("KeyByIPPrefix%v accepted", bits)
		}
	}
	g := MustNew(nil)
	l := mustLimiter(t, nil, ok[:1])
	if _, err := g.RateLimit(nil, KeyByIP); err == nil {
		t.Error("nil limiter accepted")
	}
	if _, err := g.RateLimit(l, nil); err == nil {
		t.Error("nil key accepted")
	}
	if _, err := g.RateLimit(l, KeyByIP, RateLimitMinRetryAfter(-time.Second)); err == nil {
		t.Error("negative minimum Retry-After accepted")
	}
}

// TestRateLimitSeeds replays the seeds' limits, refusals and bodies.
func TestRateLimitSeeds(t *testing.T) {
	tests := []struct {
		name       string
		dialect    Dialect
		windows    []Window
		opts       []RateLimitOption
		admitted   int
		retryAfter string
		headers    [3]string // of the refusal
		body       string
	}{
		{
			name: "reseller product list: 20 per minute per IP", windows: []Window{PerMinute(20)},
			dialect:  Reseller().WithMessage(CodeRateLimited, same("Too many requests. Please try again later.")),
			admitted: 20, retryAfter: "3", headers: [3]string{"20", "0", "60"},
			body: `{"status":"error","message":"Too many requests. Please try again later.","code":429}`,
		},
		{
			name: "reseller status: 30 per minute", dialect: Reseller(), windows: []Window{PerMinute(30)},
			admitted: 30, retryAfter: "2", headers: [3]string{"30", "0", "60"},
			body: `{"status":"error","message":"Too many requests","code":429}`,
		},
		{
			name: "88pay tokens: 10 per minute and 100 per hour", dialect: Pay88(),
			windows:  []Window{PerMinute(10), PerHour(100)},
			admitted: 10, retryAfter: "6", headers: [3]string{"10", "0", "60"},
			body: `{"status":"Error","code":429,"message":"Rate limit exceeded"}`,
		},
		{
			name: "88pay tokens: retry after 60 seconds", dialect: Pay88(),
			windows: []Window{PerMinute(10), PerHour(100)}, opts: []RateLimitOption{RateLimitMinRetryAfter(time.Minute)},
			admitted: 10, retryAfter: "60", headers: [3]string{"10", "0", "60"},
			body: `{"status":"Error","code":429,"message":"Rate limit exceeded"}`,
		},
		{
			name: "mockpay", dialect: MockPay(), windows: []Window{PerSecond(5)},
			admitted: 5, retryAfter: "1", headers: [3]string{"5", "0", "1"},
			body: `{"success":false,"error":{"code":"TOO_MANY_REQUESTS","message":"Too many requests"}}`,
		},
		{
			name: "problem", dialect: Problem(), windows: []Window{PerHour(2)},
			admitted: 2, retryAfter: "1800", headers: [3]string{"2", "0", "3600"},
			body: `{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"Terlalu banyak permintaan","code":"rate_limited"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newTestClock()
			g := MustNew(nil, WithDialect(tt.dialect), WithClock(clock.Now))
			h := mustRateLimit(t, g, mustLimiter(t, clock, tt.windows), KeyByIP, tt.opts...)(okHandler)
			for i := range tt.admitted {
				w := serve(h, ipRequest("203.0.113.7:1234"))
				if w.Code != 200 {
					t.Fatalf("request %d: %d %s", i+1, w.Code, w.Body)
				}
				if got, want := w.Header().Get("RateLimit-Remaining"), strconv.Itoa(tt.admitted-i-1); got != want {
					t.Errorf("request %d: RateLimit-Remaining %s, want %s", i+1, got, want)
				}
			}
			w := serve(h, ipRequest("203.0.113.7:4321"))
			wantBody(t, w, http.StatusTooManyRequests, tt.body)
			if got := w.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
			got := [3]string{w.Header().Get("RateLimit-Limit"), w.Header().Get("RateLimit-Remaining"), w.Header().Get("RateLimit-Reset")}
			if got != tt.headers {
				t.Errorf("RateLimit-Limit, -Remaining, -Reset = %q, want %q", got, tt.headers)
			}
			if w := serve(h, ipRequest("203.0.113.8:1234")); w.Code != 200 {
				t.Errorf("another IP: %d", w.Code)
			}
		})
	}
}

func TestRateLimitHeaders(t *testing.T) {
	clock := newTestClock()
	g := MustNew(nil, WithClock(clock.Now))
	h := mustRateLimit(t, g, mustLimiter(t, clock, []Window{PerMinute(3)}), KeyByIP)(okHandler)
	steps := []struct {
		advance time.Duration
		status  int
		want    [4]string // Limit, Remaining, Reset, Retry-After
	}{
		{0, 200, [4]string{"3", "2", "20", ""}},
		{0, 200, [4]string{"3", "1", "40", ""}},
		{500 * time.Millisecond, 200, [4]string{"3", "0", "60", ""}}, // 59.5 s rounds up
		{0, 429, [4]string{"3", "0", "60", "20"}},                    // 19.5 s rounds up
		{19*time.Second + 499*time.Millisecond, 429, [4]string{"3", "0", "41", "1"}},
		{time.Millisecond, 200, [4]string{"3", "0", "60", ""}},
		{2 * time.Minute, 200, [4]string{"3", "2", "20", ""}},
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		w := serve(h, ipRequest("192.0.2.1:1"))
		hd := w.Header()
		got := [4]string{hd.Get("RateLimit-Limit"), hd.Get("RateLimit-Remaining"), hd.Get("RateLimit-Reset"), hd.Get("Retry-After")}
		if w.Code != st.status || got != st.want {
			t.Errorf("step %d: %d %q, want %d %q", i, w.Code, got, st.status, st.want)
		}
	}
}

func TestRateLimitRetryAfterRoundsUp(t *testing.T) {
	clock := newTestClock()
	l := mustLimiter(t, clock, []Window{PerMinute(7)}) // a token every 8.571428572 s
	g := MustNew(nil, WithClock(clock.Now))
	h := mustRateLimit(t, g, l, KeyByIP)(okHandler)
	for range 7 {
		serve(h, ipRequest("192.0.2.1:1"))
	}
	for _, tt := range []struct {
		advance time.Duration
		want    string
	}{{0, "9"}, {8 * time.Second, "1"}, {571 * time.Millisecond, "1"}} {
		clock.Advance(tt.advance)
		w := serve(h, ipRequest("192.0.2.1:1"))
		if w.Code != 429 || w.Header().Get("Retry-After") != tt.want {
			t.Errorf("after %v: %d Retry-After %q, want 429 %q", tt.advance, w.Code, w.Header().Get("Retry-After"), tt.want)
		}
	}
	clock.Advance(time.Millisecond)
	if w := serve(h, ipRequest("192.0.2.1:1")); w.Code != 200 {
		t.Errorf("once the token is due: %d", w.Code)
	}
}

// TestSeveralWindows shows that a refusal by one window takes nothing from
// the others, that RetryAfter is the longest wait among the refusing
// windows, and which window the result describes.
func TestSeveralWindows(t *testing.T) {
	t.Run("refused by the minute, the hour keeps its tokens", func(t *testing.T) {
		clock := newTestClock()
		l := mustLimiter(t, clock, []Window{PerMinute(2), PerHour(3)})
		take(t, l, "k", 1)
		take(t, l, "k", 1)
		before, _ := l.state("k")
		for range 5 {
			if res := take(t, l, "k", 1); res.Allowed || res.Limit != 2 || res.RetryAfter != 30*time.Second {
				t.Fatalf("third request: %+v, want refused by the minute window in 30s", res)
			}
		}
		if after, _ := l.state("k"); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("refusals changed the state: %v -> %v", before, after)
		}
		clock.Advance(30 * time.Second)
		if res := take(t, l, "k", 1); !res.Allowed || res.Limit != 3 || res.Remaining != 0 {
			t.Fatalf("third token of the hour: %+v, want allowed with the hour window at 0", res)
		}
	})
	t.Run("refused by the hour, the minute keeps its tokens", func(t *testing.T) {
		clock := newTestClock()
		l := mustLimiter(t, clock, []Window{PerMinute(2), PerHour(3)})
		for range 3 {
			take(t, l, "k", 1)
			clock.Advance(30 * time.Second)
		}
		// 90 s in: the minute window is full again, the hour window empty
		// until its first token is due 20 minutes after the start.
		before, _ := l.state("k")
		res := take(t, l, "k", 1)
		if res.Allowed || res.Limit != 3 || res.RetryAfter != 20*time.Minute-90*time.Second {
			t.Fatalf("refused by the hour: %+v", res)
		}
		if after, _ := l.state("k"); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("the refusal changed the state: %v -> %v", before, after)
		}
		clock.Advance(res.RetryAfter)
		if res := take(t, l, "k", 1); !res.Allowed {
			t.Fatalf("when the hour's token is due: %+v", res)
		}
		// The minute window still had both tokens: it took one now.
		if st, _ := l.state("k"); st[0] != int64(20*time.Minute+30*time.Second) {
			t.Fatalf("minute window's tat %v, want 20m30s", time.Duration(st[0]))
		}
		if res := take(t, l, "k", 0); res.Limit != 3 || res.Remaining != 0 {
			t.Fatalf("peek: %+v", res)
		}
	})
	t.Run("retry after the longest wait", func(t *testing.T) {
		l := mustLimiter(t, newTestClock(), []Window{PerMinute(1), PerHour(1), PerSecond(1)})
		take(t, l, "k", 1)
		res := take(t, l, "k", 1)
		want := LimitResult{Limit: 1, Reset: time.Hour, RetryAfter: time.Hour}
		if res != want {
			t.Errorf("%+v, want %+v", res, want)
		}
	})
	t.Run("headers describe the window nearest its limit", func(t *testing.T) {
		tests := []struct {
			windows []Window
			want    LimitResult
		}{
			{[]Window{PerMinute(10), PerHour(100)}, LimitResult{true, 10, 9, 6 * time.Second, 0}},
			{[]Window{PerMinute(5), PerHour(3)}, LimitResult{true, 3, 2, 20 * time.Minute, 0}},
			{[]Window{PerMinute(2), PerHour(2)}, LimitResult{true, 2, 1, 30 * time.Minute, 0}}, // a tie: the slower
		}
		for _, tt := range tests {
			l := mustLimiter(t, newTestClock(), tt.windows)
			if res := take(t, l, "k", 1); res != tt.want {
				t.Errorf("%v: %+v, want %+v", tt.windows, res, tt.want)
			}
		}
	})
	t.Run("n above a limit", func(t *testing.T) {
		l := mustLimiter(t, newTestClock(), []Window{PerMinute(5), PerHour(50)})
		if res := take(t, l, "k", 6); res.Allowed {
			t.Errorf("6 of 5 granted: %+v", res)
		}
		if res := take(t, l, "k", 5); !res.Allowed || res.Remaining != 0 {
			t.Errorf("5 of 5: %+v", res)
		}
		if res := take(t, l, "k", -3); !res.Allowed || res.Remaining != 0 {
			t.Errorf("a negative n: %+v", res)
		}
	})
}

func TestKeyByIP(t *testing.T) {
	g := MustNew(nil)
	p24, _ := KeyByIPPrefix(24, 48)
	tests := []struct {
		remote string
		key    KeyFunc
		want   string
	}{
		{"203.0.113.7:1234", KeyByIP, "ip:203.0.113.7"},
		{"[::ffff:203.0.113.7]:1234", KeyByIP, "ip:203.0.113.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", KeyByIP, "ip:2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", KeyByIP, "ip:2001:db8:1:2::/64"},
		{"[2001:db8:1:3::1]:443", KeyByIP, "ip:2001:db8:1:3::/64"},
		{"[fe80::1%eth0]:443", KeyByIP, "ip:fe80::/64"},
		{"garbage", KeyByIP, "ip:unknown"},
		{"", KeyByIP, "ip:unknown"},
		{"203.0.113.7:1234", p24, "ip:203.0.113.0/24"},
		{"[2001:db8:1:2:3:4:5:6]:443", p24, "ip:2001:db8:1::/48"},
	}
	for _, tt := range tests {
		t.Run(tt.remote, func(t *testing.T) {
			got, err := tt.key(g, ipRequest(tt.remote))
			if err != nil || got != tt.want {
				t.Errorf("%q, %v; want %q", got, err, tt.want)
			}
		})
	}
	full, _ := KeyByIPPrefix(32, 128)
	if got, _ := full(g, ipRequest("[2001:db8::1]:1")); got != "ip:2001:db8::1" {
		t.Errorf("/128: %q", got)
	}
}

// TestIPv6SharesSlash64 shows that the hosts of one /64 share a bucket.
func TestIPv6SharesSlash64(t *testing.T) {
	clock := newTestClock()
	g := MustNew(nil, WithClock(clock.Now))
	h := mustRateLimit(t, g, mustLimiter(t, clock, []Window{PerMinute(2)}), KeyByIP)(okHandler)
	for i, tt := range []struct {
		remote string
		status int
	}{
		{"[2001:db8:0:1::1]:1", 200},
		{"[2001:db8:0:1::2]:1", 200},
		{"[2001:db8:0:1:aaaa:bbbb:cccc:dddd]:1", 429},
		{"[2001:db8:0:2::1]:1", 200},
	} {
		if w := serve(h, ipRequest(tt.remote)); w.Code != tt.status {
			t.Errorf("request %d from %s: %d, want %d", i, tt.remote, w.Code, tt.status)
		}
	}
}

func TestKeyFuncs(t *testing.T) {
	g := MustNew(nil)
	var got string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) { got, _ = KeyByRoute(g, r) })
	serve(mux, httptest.NewRequest("GET", "/items/42", nil))
	if got != "route:GET /items/{id}" {
		t.Errorf("KeyByRoute in a mux: %q", got)
	}
	if got, _ := KeyByRoute(g, httptest.NewRequest("POST", "/x/y", nil)); got != "route:POST /x/y" {
		t.Errorf("KeyByRoute outside a mux: %q", got)
	}

	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Add("x-merchant-id", "MCH-1")
	r.Header.Add("x-merchant-id", "MCH-2")
	if got, _ := KeyByHeader("X-MERCHANT-ID")(g, r); got != "header:X-Merchant-Id:MCH-1" {
		t.Errorf("KeyByHeader: %q", got)
	}
	if got, _ := KeyByHeader("x-other")(g, r); got != "header:X-Other:" {
		t.Errorf("KeyByHeader, absent: %q", got)
	}

	r.RemoteAddr = "192.0.2.1:1"
	r.Pattern = "GET /"
	if got, _ := KeyBy(KeyByIP, KeyByRoute)(g, r); got != "12:ip:192.0.2.1|11:route:GET /|" {
		t.Errorf("KeyBy: %q", got)
	}
	boom := errors.New("boom")
	if _, err := KeyBy(KeyByIP, func(*Guard, *http.Request) (string, error) { return "", boom })(g, r); err != boom {
		t.Errorf("KeyBy error: %v", err)
	}
}

// TestRateLimitByClientInAnyOrder stacks Authenticate, a per-client rate
// limit and a scope check in every order: the same requests pass, the
// handler sees the same client, the key is looked up once per request, and
// a caller without identity is refused with 401.
func TestRateLimitByClientInAnyOrder(t *testing.T) {
	store := &countingStore{KeyStore: mustStore(t,
		KeySpec{Key: "topup_key_A", Client: Client{ID: "a", Scopes: []string{"order"}}},
		KeySpec{Key: "topup_key_B", Client: Client{ID: "b"}},
	)}
	req := func(key string) *http.Request {
		r := ipRequest("192.0.2.1:1")
		if key != "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		return r
	}
	a := func() *http.Request { return req("topup_key_A") }
	const invalid = `{"status":"error","message":"Invalid API key","code":401}`
	const missing = `{"status":"error","message":"Unauthorized","code":401}`
	const limited = `{"status":"error","message":"Too many requests","code":429}`
	// Each run has a limiter of its own, on a clock of its own.
	checkAnyOrder(t, anyOrder{
		stack: func() []namedWrapper {
			clock := newTestClock()
			g := MustNew(Bearer(store), WithDialect(Reseller()), WithClock(clock.Now))
			return []namedWrapper{
				{"auth", g.Authenticate()},
				{"rate", mustRateLimit(t, g, mustLimiter(t, clock, []Window{PerMinute(2)}), KeyByClient)},
				{"scope", g.RequireScope("order")},
			}
		},
		requests: []orderReq{
			{"A", "a", a},
			{"none", "", func() *http.Request { return req("") }},
			{"unknown", "", func() *http.Request { return req("topup_key_X") }},
			{"A again", "a", a},
			{"A over the limit", "a", a},
		},
		lookups: store,
		status:  map[string]int{"A": 200, "none": 401, "unknown": 401, "A again": 200, "A over the limit": 429},
		body:    map[string]string{"A": "ok", "none": missing, "unknown": invalid, "A again": "ok", "A over the limit": limited},
	})

	// Alone, and on a Guard that cannot identify anyone.
	clock := newTestClock()
	g := MustNew(Bearer(store), WithDialect(Reseller()), WithClock(clock.Now))
	h := mustRateLimit(t, g, mustLimiter(t, clock, []Window{PerMinute(2)}), KeyByClient)(okHandler)
	if w := serve(h, req("topup_key_B")); w.Code != 200 || w.Header().Get("X-Client") != "b" {
		t.Errorf("alone: %d %q", w.Code, w.Header().Get("X-Client"))
	}
	anon := MustNew(nil, WithDialect(Reseller()))
	h = mustRateLimit(t, anon, mustLimiter(t, clock, []Window{PerMinute(2)}), KeyBy(KeyByIP, KeyByClient))(okHandler)
	wantBody(t, serve(h, req("topup_key_A")), 401, missing)
}

// TestExactness hammers one key from many goroutines with the clock
// stopped: exactly the limit is admitted, by the limiter and through the
// wrapper.
func TestExactness(t *testing.T) {
	const goroutines, each = 8, 500
	t.Run("limiter", func(t *testing.T) {
		for _, ws := range [][]Window{{PerMinute(100)}, {PerMinute(100), PerHour(150)}, {PerHour(1000), PerMinute(100), PerSecond(500)}} {
			l := mustLimiter(t, newTestClock(), ws)
			var admitted atomic.Int64
			var wg sync.WaitGroup
			for range goroutines {
				wg.Go(func() {
					for range each {
						if res, _ := l.Take(context.Background(), "hot", 1); res.Allowed {
							admitted.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if n := admitted.Load(); n != 100 {
				t.Errorf("%v: %d admitted, want 100", ws, n)
			}
		}
	})
	t.Run("wrapper", func(t *testing.T) {
		clock := newTestClock()
		g := MustNew(nil, WithClock(clock.Now))
		h := mustRateLimit(t, g, mustLimiter(t, clock, []Window{PerMinute(30)}), KeyByIP)(okHandler)
		var admitted, refused atomic.Int64
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				for range 50 {
					switch serve(h, ipRequest("198.51.100.9:1")).Code {
					case 200:
						admitted.Add(1)
					case 429:
						refused.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if admitted.Load() != 30 || refused.Load() != goroutines*50-30 {
			t.Errorf("%d admitted, %d refused; want 30, %d", admitted.Load(), refused.Load(), goroutines*50-30)
		}
	})
}

// TestClockBackwardsMintsNoTokens steps the clock back and forth around a
// drained bucket (x/time/rate's Limiter would hand out a second bucketful).
func TestClockBackwardsMintsNoTokens(t *testing.T) {
	clock := newTestClock()
	l := mustLimiter(t, clock, []Window{PerMinute(10), PerHour(100)})
	for range 10 {
		take(t, l, "k", 1)
	}
	for _, step := range []time.Duration{-time.Hour, 30 * time.Minute, 30 * time.Minute, 6*time.Second - 1} {
		clock.Advance(step)
		if res := take(t, l, "k", 1); res.Allowed {
			t.Fatalf("after a step of %v: a token was minted", step)
		}
	}
	clock.Advance(1) // 6 s after the bucket was drained
	if res := take(t, l, "k", 1); !res.Allowed {
		t.Fatal("the token due 6 s after draining was refused")
	}
	if res := take(t, l, "k", 1); res.Allowed {
		t.Fatal("two tokens in 6 s")
	}
}

// TestStaleClockReadNotRefused pins a bug the parallel benchmark found: a
// goroutine that read the clock, then waited for the lock while another
// took a token at a later time, was refused as if its request came before
// the other's. Both tokens were there at the later time.
func TestStaleClockReadNotRefused(t *testing.T) {
	l := mustLimiter(t, newTestClock(), []Window{{Limit: 2, Period: 2 * time.Second}})
	h := maphash.String(l.seed, "k")
	s := int64(time.Second)
	for i, step := range []struct {
		now     int64
		allowed bool
	}{
		{10 * s, true},
		{12 * s, true},      // the bucket is full again: one token of two taken
		{10*s + s/2, true},  // read before the previous take: the second token
		{12 * s, false},     // none left
		{11*s + s/2, false}, // a stale read mints nothing
		{13 * s, true},
	} {
		if res := l.store.take(h, step.now, 1); res.Allowed != step.allowed {
			t.Errorf("take %d at %v: %+v, want allowed %v", i, time.Duration(step.now), res, step.allowed)
		}
	}
}

// TestEvictionKeepsDebts fills a small limiter and shows that a drained
// bucket is never evicted for a fresh one, and that new keys wait while no
// bucket can go.
func TestEvictionKeepsDebts(t *testing.T) {
	clock := newTestClock()
	l := mustLimiter(t, clock, []Window{PerMinute(2)}, LimiterCapacity(4))
	take(t, l, "drained", 2)
	for _, k := range []string{"b", "c", "d"} {
		take(t, l, k, 1) // each full again in 30 s
	}
	res := take(t, l, "new", 1)
	if res.Allowed || res.RetryAfter != 30*time.Second {
		t.Fatalf("a new key in a full limiter: %+v, want refused for 30s", res)
	}
	if res := take(t, l, "drained", 1); res.Allowed {
		t.Fatal("the drained key got a fresh start")
	}
	clock.Advance(30 * time.Second)
	for _, k := range []string{"new", "e", "f"} {
		if res := take(t, l, k, 1); !res.Allowed {
			t.Fatalf("%s once b, c, d are full: %+v", k, res)
		}
	}
	if res := take(t, l, "g", 1); res.Allowed {
		t.Fatal("a fifth key in a limiter of 4")
	}
	if res := take(t, l, "drained", 2); res.Allowed {
		t.Fatal("the drained key has two tokens 30 s after draining")
	}
	if res := take(t, l, "drained", 1); !res.Allowed {
		t.Fatal("the drained key's refilled token was refused")
	}
	if n := l.len(); n != 4 {
		t.Errorf("%d keys held, want 4", n)
	}
}

func heapAlloc() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestMemoryBounded feeds 1,000,000 distinct client IPs through the
// wrapper's key into a limiter of 100,000 keys: it holds no more than its
// capacity, and its heap is about capacity × 100 bytes.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("feeds a million keys")
	}
	capacity, feed := 100_000, 1_000_000
	if rateLimitRace {
		capacity, feed = 10_000, 100_000 // the race detector is slow; the bound is the same
	}
	for _, flood := range []struct {
		name string
		step time.Duration
	}{{"clock running", time.Millisecond}, {"clock stopped", 0}} {
		t.Run(flood.name, func(t *testing.T) {
			clock := newTestClock()
			base := heapAlloc()
			l := mustLimiter(t, clock, []Window{PerMinute(20)}, LimiterCapacity(capacity))
			g := MustNew(nil)
			r := ipRequest("")
			admitted := 0
			for i := range feed {
				r.RemoteAddr = "10." + strconv.Itoa(i>>16) + "." + strconv.Itoa(i>>8&0xff) + "." + strconv.Itoa(i&0xff) + ":1"
				key, _ := KeyByIP(g, r)
				if take(t, l, key, 1).Allowed {
					admitted++
				}
				clock.Advance(flood.step)
			}
			grown := heapAlloc() - base
			held := l.len()
			t.Logf("%d IPs fed, %d admitted, %d keys held, heap +%d bytes (%.1f per key held)",
				feed, admitted, held, grown, float64(grown)/float64(held))
			if held > capacity {
				t.Errorf("%d keys held, capacity %d", held, capacity)
			}
			if grown > uint64(capacity)*140 {
				t.Errorf("heap grew %d bytes, more than capacity × 140", grown)
			}
			runtime.KeepAlive(l)
		})
	}
}

// TestBytesPerKey measures the heap of a limiter holding 1,000,000 keys.
func TestBytesPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("holds a million keys")
	}
	keys := 1_000_000
	if rateLimitRace {
		keys = 100_000
	}
	for _, ws := range [][]Window{{PerMinute(20)}, {PerMinute(10), PerHour(100)}, {PerSecond(5), PerMinute(10), PerHour(100), PerHour(24 * 100)}} {
		clock := newTestClock()
		base := heapAlloc()
		// Room to spare: keys spread over shards unevenly.
		l := mustLimiter(t, clock, ws, LimiterCapacity(keys*11/10))
		var buf []byte
		for i := range keys {
			buf = strconv.AppendInt(append(buf[:0], "ip:"...), int64(i), 10)
			l.Take(context.Background(), string(buf), 1)
		}
		grown := heapAlloc() - base
		if n := l.len(); n != keys {
			t.Fatalf("%d keys held, want %d", n, keys)
		}
		perKey := float64(grown) / float64(keys)
		t.Logf("%d windows: %.1f bytes per key after %d keys", len(ws), perKey, keys)
		if len(ws) <= 2 && perKey >= 140 {
			t.Errorf("%d windows: %.1f bytes per key, want under 140", len(ws), perKey)
		}
		runtime.KeepAlive(l)
	}
}

type failingLimiter struct{}

func (failingLimiter) Take(context.Context, string, int) (LimitResult, error) {
	return LimitResult{}, errors.New("redis: connection refused")
}

func TestFailureMode(t *testing.T) {
	var denials []error
	hook := WithDenyHook(func(d Denial) { denials = append(denials, d.Err) })
	g := MustNew(nil, WithDialect(Reseller()), hook)

	closed := mustRateLimit(t, g, failingLimiter{}, KeyByIP)(okHandler)
	w := serve(closed, ipRequest("192.0.2.1:1"))
	wantBody(t, w, 503, `{"status":"error","message":"Service unavailable","code":503}`)
	if len(denials) != 1 || !errors.Is(denials[0], ErrUnavailable) {
		t.Errorf("hook saw %v", denials)
	}
	if w.Header().Get("RateLimit-Limit") != "" {
		t.Error("rate-limit headers without a result")
	}

	open := mustRateLimit(t, g, failingLimiter{}, KeyByIP, RateLimitFailOpen())(okHandler)
	if w := serve(open, ipRequest("192.0.2.1:1")); w.Code != 200 || w.Header().Get("RateLimit-Limit") != "" {
		t.Errorf("fail open: %d %v", w.Code, w.Header())
	}

	clock := newTestClock()
	limited := mustRateLimit(t, g, mustLimiter(t, clock, []Window{PerMinute(1)}), KeyByIP, RateLimitFailOpen())(okHandler)
	denials = nil
	for range 3 {
		serve(limited, ipRequest("192.0.2.1:1"))
	}
	if len(denials) != 2 || !errors.Is(denials[0], ErrRateLimited) || !errors.Is(denials[1], ErrRateLimited) {
		t.Errorf("hook saw %v, want two 429s", denials)
	}
}

// TestMatchesTokenBucket compares the limiter with x/time/rate's token
// bucket on random requests under a clock running forward.
func TestMatchesTokenBucket(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, w := range []Window{PerSecond(5), PerMinute(20), PerMinute(7), PerHour(100)} {
		clock := newTestClock()
		l := mustLimiter(t, clock, []Window{w})
		ref := rate.NewLimiter(rate.Every(w.Period/time.Duration(w.Limit)), w.Limit)
		interval := w.Period / time.Duration(w.Limit)
		for i := range 5000 {
			// Steps of whole milliseconds plus a little, away from the
			// instants at which float and integer arithmetic could differ.
			clock.Advance(time.Duration(rng.Int64N(int64(interval)*2/int64(time.Millisecond)))*time.Millisecond + 1)
			n := 1 + rng.IntN(2)
			got := take(t, l, "k", n).Allowed
			if want := ref.AllowN(clock.Now(), n); got != want {
				t.Fatalf("%v request %d (n=%d): allowed %v, x/time/rate %v", w, i, n, got, want)
			}
		}
	}
}

// FuzzMemoryLimiter runs a sequence of takes under a clock that may step
// either way and checks that no tokens are minted: since its first grant,
// at time f, no window has granted more than its Limit plus what refills
// from f to the latest time seen (GCRA's tat is at least f plus the tokens
// granted, and at most the latest time plus the window). It also checks
// that a refusal changes nothing and that results are consistent.
func FuzzMemoryLimiter(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 0, 1, 0, 1, 200, 1, 0, 1})
	f.Add([]byte{10, 3, 0x80, 1, 0x7f, 2, 0, 9, 0, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		clock := newTestClock()
		latest := clock.Now()
		var first time.Time // of the first grant
		ws := []Window{{Limit: 3, Period: 3 * time.Second}, {Limit: 5, Period: 20 * time.Second}}
		l := mustLimiter(t, clock, ws)
		granted := 0
		for i := 0; i+1 < len(ops); i += 2 {
			clock.Advance(time.Duration(int8(ops[i])) * 100 * time.Millisecond)
			if clock.Now().After(latest) {
				latest = clock.Now()
			}
			n := int(ops[i+1] % 7)
			before, _ := l.state("k")
			res := take(t, l, "k", n)
			after, _ := l.state("k")
			if !res.Allowed {
				if fmt.Sprint(before) != fmt.Sprint(after) {
					t.Fatalf("op %d: a refusal changed %v to %v", i/2, before, after)
				}
				if res.RetryAfter <= 0 || res.Remaining >= n {
					t.Fatalf("op %d: refused n=%d with %+v", i/2, n, res)
				}
				continue
			}
			if res.Remaining < 0 || res.Remaining > res.Limit || res.Reset < 0 || res.RetryAfter != 0 {
				t.Fatalf("op %d: %+v", i/2, res)
			}
			if n == 0 {
				continue
			}
			if granted == 0 {
				first = clock.Now()
			}
			granted += n
			for _, w := range ws {
				elapsed := latest.Sub(first)
				most := w.Limit + int(elapsed/(w.Period/time.Duration(w.Limit)))
				if granted > most {
					t.Fatalf("op %d: %d granted by %v, at most %d in %v", i/2, granted, w, most, elapsed)
				}
			}
		}
	})
}

// FuzzKeyBy checks that KeyBy never makes one key of two lists of parts.
func FuzzKeyBy(f *testing.F) {
	f.Add("a", "b", "a|", "b")
	f.Add("1:a", "", "1", ":a|0:")
	f.Fuzz(func(t *testing.T, a1, a2, b1, b2 string) {
		part := func(s string) KeyFunc { return func(*Guard, *http.Request) (string, error) { return s, nil } }
		r := httptest.NewRequest("GET", "/", nil)
		ka, _ := KeyBy(part(a1), part(a2))(nil, r)
		kb, _ := KeyBy(part(b1), part(b2))(nil, r)
		if (ka == kb) != (a1 == b1 && a2 == b2) {
			t.Fatalf("(%q, %q) -> %q and (%q, %q) -> %q", a1, a2, ka, b1, b2, kb)
		}
		k1, _ := KeyBy(part(a1))(nil, r)
		if k1 == ka {
			t.Fatalf("one part and two parts make %q", ka)
		}
	})
}
