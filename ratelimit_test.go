package apiguard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func mustLimiter(t testing.TB, clock *testClock, windows []Window, opts ...Option) *MemoryLimiter {
	t.Helper()
	if clock != nil {
		opts = append(opts, WithClock(clock.Now))
	}
	l, err := NewMemoryLimiter(windows, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustRateLimit(t testing.TB, g *Guard, l Limiter, key Bucket, opts ...Option) Middleware {
	t.Helper()
	return g.RateLimit(l, key, opts...)
}

// mustPanic calls f and reports whether it panicked with an error whose
// text holds want.
func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		err, _ := recover().(error)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("panic %v, want an error naming %q", err, want)
		}
	}()
	f()
}

func take(t testing.TB, l Limiter, key string, n int) LimitResult {
	t.Helper()
	res, err := l.Take(context.Background(), key, n)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestLimiterConfig(t *testing.T) {
	windows := map[string][]Window{
		"none":           nil,
		"zero limit":     {{0, time.Minute}},
		"negative limit": {{-1, time.Minute}},
		"zero period":    {{1, 0}},
		"long period":    {{1, maxPeriod + 1}},
		"sub-ns":         {{10, 5}},
		"too many":       make([]Window, maxWindows+1),
	}
	for name, ws := range windows {
		t.Run(name, func(t *testing.T) {
			if _, err := NewMemoryLimiter(ws); err == nil {
				t.Error("no error")
			}
		})
	}
	ok := []Window{Window{1, time.Second}, PerMinute(10), PerHour(100), {1, maxPeriod}, {7, 7}}
	if _, err := NewMemoryLimiter(ok); err != nil {
		t.Errorf("valid windows: %v", err)
	}
	if _, err := NewMemoryLimiter(ok[:1], WithCapacity(0)); err == nil {
		t.Error("capacity 0 accepted")
	}
	if _, err := NewMemoryLimiter(ok[:1], WithClock(nil)); err == nil {
		t.Error("nil clock accepted")
	}
	for _, bits := range [][2]int{{-1, 64}, {33, 64}, {32, -1}, {32, 129}} {
		if _, err := ByIPPrefix(bits[0], bits[1]); err == nil {
			t.Errorf("ByIPPrefix%v accepted", bits)
		}
	}
	g := MustNew(nil)
	l := mustLimiter(t, nil, ok[:1])
	var nilLimiter *MemoryLimiter
	mustPanic(t, "Limiter", func() { g.RateLimit(nil, ByIP()) })
	mustPanic(t, "Limiter", func() { g.RateLimit(nilLimiter, ByIP()) })
	mustPanic(t, "Bucket", func() { g.RateLimit(l, Bucket{}) })
	mustPanic(t, "Bucket", func() { g.RateLimit(l, BucketFunc(nil)) })
	mustPanic(t, "WithMinRetryAfter", func() { g.RateLimit(l, ByIP(), WithMinRetryAfter(-time.Second)) })
	mustPanic(t, "WithClock", func() { g.RateLimit(l, ByIP(), WithClock(time.Now)) })
}

// TestRateLimitSeeds replays the seeds' limits, refusals and bodies.
func TestRateLimitSeeds(t *testing.T) {
	tests := []struct {
		name       string
		dialect    Dialect
		windows    []Window
		opts       []Option
		admitted   int
		retryAfter string
		headers    [3]string // of the refusal
		body       string
	}{
		{
			name: "reseller product list: 20 per minute per IP", windows: []Window{PerMinute(20)},
			dialect:  Reseller().WithMessage("rate_limited", same("Too many requests. Please try again later.")),
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
			windows: []Window{PerMinute(10), PerHour(100)}, opts: []Option{WithMinRetryAfter(time.Minute)},
			admitted: 10, retryAfter: "60", headers: [3]string{"10", "0", "60"},
			body: `{"status":"Error","code":429,"message":"Rate limit exceeded"}`,
		},
		{
			name: "mockpay", dialect: MockPay(), windows: []Window{Window{5, time.Second}},
			admitted: 5, retryAfter: "1", headers: [3]string{"5", "0", "1"},
			body: `{"success":false,"error":{"code":"TOO_MANY_REQUESTS","message":"Too many requests"}}`,
		},
		{
			name: "problem", dialect: Problem(), windows: []Window{PerHour(2)},
			admitted: 2, retryAfter: "1800", headers: [3]string{"2", "0", "3600"},
			body: `{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"Too many requests","code":"rate_limited"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newTestClock()
			g := MustNew(nil, WithDialect(tt.dialect), WithClock(clock.Now))
			h := mustRateLimit(t, g, mustLimiter(t, clock, tt.windows), ByIP(), tt.opts...)(okHandler)
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
	h := mustRateLimit(t, g, mustLimiter(t, clock, []Window{PerMinute(3)}), ByIP())(okHandler)
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
	h := mustRateLimit(t, g, l, ByIP())(okHandler)
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
		l := mustLimiter(t, newTestClock(), []Window{PerMinute(1), PerHour(1), Window{1, time.Second}})
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

func TestByIP(t *testing.T) {
	g := MustNew(nil)
	p24, _ := ByIPPrefix(24, 48)
	tests := []struct {
		remote string
		key    Bucket
		want   string
	}{
		{"203.0.113.7:1234", ByIP(), "ip:203.0.113.7"},
		{"[::ffff:203.0.113.7]:1234", ByIP(), "ip:203.0.113.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", ByIP(), "ip:2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", ByIP(), "ip:2001:db8:1:2::/64"},
		{"[2001:db8:1:3::1]:443", ByIP(), "ip:2001:db8:1:3::/64"},
		{"[fe80::1%eth0]:443", ByIP(), "ip:fe80::/64"},
		{"garbage", ByIP(), "ip:unknown"},
		{"", ByIP(), "ip:unknown"},
		{"203.0.113.7:1234", p24, "ip:203.0.113.0/24"},
		{"[2001:db8:1:2:3:4:5:6]:443", p24, "ip:2001:db8:1::/48"},
	}
	for _, tt := range tests {
		t.Run(tt.remote, func(t *testing.T) {
			got, err := tt.key.key(g, ipRequest(tt.remote), nil)
			if err != nil || got != tt.want {
				t.Errorf("%q, %v; want %q", got, err, tt.want)
			}
		})
	}
	full, _ := ByIPPrefix(32, 128)
	if got, _ := full.key(g, ipRequest("[2001:db8::1]:1"), nil); got != "ip:2001:db8::1" {
		t.Errorf("/128: %q", got)
	}
}

// TestIPv6SharesSlash64 shows that the hosts of one /64 share a bucket.
func TestIPv6SharesSlash64(t *testing.T) {
	clock := newTestClock()
	g := MustNew(nil, WithClock(clock.Now))
	h := mustRateLimit(t, g, mustLimiter(t, clock, []Window{PerMinute(2)}), ByIP())(okHandler)
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

func TestBuckets(t *testing.T) {
	g := MustNew(nil)
	var got string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) { got, _ = ByRoute().key(g, r, nil) })
	serve(mux, httptest.NewRequest("GET", "/items/42", nil))
	if got != "route:GET /items/{id}" {
		t.Errorf("ByRoute() in a mux: %q", got)
	}
	if got, _ := ByRoute().key(g, httptest.NewRequest("POST", "/x/y", nil), nil); got != "route:POST /x/y" {
		t.Errorf("ByRoute() outside a mux: %q", got)
	}

	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Add("x-merchant-id", "MCH-1")
	r.Header.Add("x-merchant-id", "MCH-2")
	if got, _ := ByHeader("X-MERCHANT-ID").key(g, r, nil); got != "header:X-Merchant-Id:MCH-1" {
		t.Errorf("ByHeader: %q", got)
	}
	if got, _ := ByHeader("x-other").key(g, r, nil); got != "header:X-Other:" {
		t.Errorf("ByHeader, absent: %q", got)
	}

	r.RemoteAddr = "192.0.2.1:1"
	r.Pattern = "GET /"
	if got, _ := ByAll(ByIP(), ByRoute()).key(g, r, nil); got != "12:ip:192.0.2.1|11:route:GET /|" {
		t.Errorf("ByAll: %q", got)
	}
	boom := errors.New("boom")
	if _, err := ByAll(ByIP(), BucketFunc(func(*http.Request) (string, error) { return "", boom })).key(g, r, nil); err != boom {
		t.Errorf("ByAll error: %v", err)
	}
	if got, _ := BucketFunc(func(r *http.Request) (string, error) { return r.URL.Path, nil }).key(g, r, nil); got != "func:/" {
		t.Errorf("BucketFunc: %q", got)
	}
	if _, err := ByAll(ByIP(), Bucket{}).key(g, r, nil); err == nil {
		t.Error("ByAll of a zero Bucket made a key")
	}
	if ByIP().client || !ByClient().client || !ByAll(ByIP(), ByClient()).client || ByAll(ByIP(), ByRoute()).client {
		t.Error("a Bucket misreports whether it needs the caller's identity")
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
				{"rate", mustRateLimit(t, g, mustLimiter(t, clock, []Window{PerMinute(2)}), ByClient())},
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
	h := mustRateLimit(t, g, mustLimiter(t, clock, []Window{PerMinute(2)}), ByClient())(okHandler)
	if w := serve(h, req("topup_key_B")); w.Code != 200 || w.Header().Get("X-Client") != "b" {
		t.Errorf("alone: %d %q", w.Code, w.Header().Get("X-Client"))
	}
	anon := MustNew(nil, WithDialect(Reseller()))
	h = mustRateLimit(t, anon, mustLimiter(t, clock, []Window{PerMinute(2)}), ByAll(ByIP(), ByClient()))(okHandler)
	wantBody(t, serve(h, req("topup_key_A")), 401, missing)
}

// TestExactness hammers one key from many goroutines with the clock
// stopped: exactly the limit is admitted, by the limiter and through the
// wrapper.
func TestExactness(t *testing.T) {
	const goroutines, each = 8, 500
	t.Run("limiter", func(t *testing.T) {
		for _, ws := range [][]Window{{PerMinute(100)}, {PerMinute(100), PerHour(150)}, {PerHour(1000), PerMinute(100), Window{500, time.Second}}} {
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
		h := mustRateLimit(t, g, mustLimiter(t, clock, []Window{PerMinute(30)}), ByIP())(okHandler)
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

type failingLimiter struct{}

func (failingLimiter) Take(context.Context, string, int) (LimitResult, error) {
	return LimitResult{}, errors.New("redis: connection refused")
}

func TestFailureMode(t *testing.T) {
	var denials []error
	hook := WithObserver(func(d Decision) {
		if d.Allowed {
			return
		}
		denials = append(denials, d.Err)
	})
	g := MustNew(nil, WithDialect(Reseller()), hook)

	closed := mustRateLimit(t, g, failingLimiter{}, ByIP())(okHandler)
	w := serve(closed, ipRequest("192.0.2.1:1"))
	wantBody(t, w, 503, `{"status":"error","message":"Service unavailable","code":503}`)
	if len(denials) != 1 || !errors.Is(denials[0], ErrUnavailable) {
		t.Errorf("hook saw %v", denials)
	}
	if w.Header().Get("RateLimit-Limit") != "" {
		t.Error("rate-limit headers without a result")
	}

	open := mustRateLimit(t, g, failingLimiter{}, ByIP(), WithFailOpen())(okHandler)
	if w := serve(open, ipRequest("192.0.2.1:1")); w.Code != 200 || w.Header().Get("RateLimit-Limit") != "" {
		t.Errorf("fail open: %d %v", w.Code, w.Header())
	}

	clock := newTestClock()
	limited := mustRateLimit(t, g, mustLimiter(t, clock, []Window{PerMinute(1)}), ByIP(), WithFailOpen())(okHandler)
	denials = nil
	for range 3 {
		serve(limited, ipRequest("192.0.2.1:1"))
	}
	if len(denials) != 2 || !errors.Is(denials[0], ErrRateLimited) || !errors.Is(denials[1], ErrRateLimited) {
		t.Errorf("hook saw %v, want two 429s", denials)
	}
}

// FuzzByAll checks that ByAll never makes one key of two lists of parts.
func FuzzByAll(f *testing.F) {
	f.Add("a", "b", "a|", "b")
	f.Add("1:a", "", "1", ":a|0:")
	f.Fuzz(func(t *testing.T, a1, a2, b1, b2 string) {
		part := func(s string) Bucket { return BucketFunc(func(*http.Request) (string, error) { return s, nil }) }
		r := httptest.NewRequest("GET", "/", nil)
		ka, _ := ByAll(part(a1), part(a2)).key(nil, r, nil)
		kb, _ := ByAll(part(b1), part(b2)).key(nil, r, nil)
		if (ka == kb) != (a1 == b1 && a2 == b2) {
			t.Fatalf("(%q, %q) -> %q and (%q, %q) -> %q", a1, a2, ka, b1, b2, kb)
		}
		k1, _ := ByAll(part(a1)).key(nil, r, nil)
		if k1 == ka {
			t.Fatalf("one part and two parts make %q", ka)
		}
	})
}

// TestRateLimitSharedLimiter is the wiring docs/rate-limiting.md
// recommends for one budget across several APIs: one Limiter, one wrapper
// per API from that API's Guard. The APIs draw from one bucket per client,
// and each refusal is in the envelope of the API whose request it is. A
// wrapper taken from another API's Guard renders in its own Guard's
// envelope, as the page says.
func TestRateLimitSharedLimiter(t *testing.T) {
	clock := newTestClock()
	keys := mustStore(t, KeySpec{Key: "key-a", Client: Client{ID: "a"}})
	mockpay := MustNew(Bearer(keys), WithDialect(MockPay()), WithClock(clock.Now))
	reseller := MustNew(Bearer(keys), WithDialect(Reseller()), WithClock(clock.Now))
	shared := mustLimiter(t, clock, []Window{PerMinute(2)})
	mockpayH := Chain(mockpay.Authenticate(), mockpay.RateLimit(shared, ByClient()))(okHandler)
	resellerH := Chain(reseller.Authenticate(), reseller.RateLimit(shared, ByClient()))(okHandler)
	borrowed := Chain(reseller.Authenticate(), mockpay.RateLimit(shared, ByClient()))(okHandler)

	const (
		mockpay429  = `{"success":false,"error":{"code":"TOO_MANY_REQUESTS","message":"Too many requests"}}`
		reseller429 = `{"status":"error","message":"Too many requests","code":429}`
	)
	if w := serve(mockpayH, bearer("key-a")); w.Code != 200 {
		t.Fatalf("first request (MockPay): %d", w.Code)
	}
	if w := serve(resellerH, bearer("key-a")); w.Code != 200 {
		t.Fatalf("second request (Reseller): %d", w.Code)
	}
	// The budget of 2 is spent across both APIs.
	wantBody(t, serve(mockpayH, bearer("key-a")), 429, mockpay429)
	wantBody(t, serve(resellerH, bearer("key-a")), 429, reseller429)
	wantBody(t, serve(borrowed, bearer("key-a")), 429, mockpay429)
}

// fixedLimiter answers every Take with res.
type fixedLimiter struct{ res LimitResult }

func (f *fixedLimiter) Take(context.Context, string, int) (LimitResult, error) { return f.res, nil }

// TestRateLimitHeaderBytes pins the rate-limit headers byte for byte: the
// three names as the header map holds them, one value each, in decimal,
// on both sides of the table of small numbers; and a handler that writes
// into a value, or adds to one, changes neither another header nor the
// next response, and a response keeps its values after the next one.
func TestRateLimitHeaderBytes(t *testing.T) {
	g := MustNew(nil)
	f := &fixedLimiter{}
	var prev http.Header
	var prevWant [3]string
	scribble := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Ratelimit-Limit"][0] = "scribbled"
		w.Header()["Ratelimit-Remaining"] = append(w.Header()["Ratelimit-Remaining"], "more")
	})
	h := g.RateLimit(f, ByIP())(scribble)
	for _, tc := range []struct {
		res  LimitResult
		want [3]string
	}{
		{LimitResult{Limit: 50, Remaining: 49, Reset: time.Nanosecond}, [3]string{"50", "49", "1"}},
		{LimitResult{Limit: 1, Remaining: 0, Reset: 0}, [3]string{"1", "0", "0"}},
		{LimitResult{Limit: 100, Remaining: 99, Reset: 1500 * time.Millisecond}, [3]string{"100", "99", "2"}},
		{LimitResult{Limit: 4095, Remaining: 4095, Reset: 4095 * time.Second}, [3]string{"4095", "4095", "4095"}},
		{LimitResult{Limit: 4096, Remaining: 1000, Reset: 4096 * time.Second}, [3]string{"4096", "1000", "4096"}},
		{LimitResult{Limit: 1_000_000, Remaining: 999_999, Reset: 366 * 24 * time.Hour}, [3]string{"1000000", "999999", "31622400"}},
	} {
		tc.res.Allowed = true
		f.res = tc.res
		for range 2 {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, ipRequest("192.0.2.1:1"))
			got := w.Result().Header
			want := http.Header{
				"Ratelimit-Limit":     {"scribbled"},
				"Ratelimit-Remaining": {tc.want[1], "more"},
				"Ratelimit-Reset":     {tc.want[2]},
			}
			delete(got, "Content-Type")
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%+v: headers %q, want %q", tc.res, got, want)
			}
			// What the wrapper wrote, before the handler scribbled.
			w = httptest.NewRecorder()
			g.RateLimit(f, ByIP())(okHandler).ServeHTTP(w, ipRequest("192.0.2.1:1"))
			hd := w.Header()
			if got := [3][]string{hd["Ratelimit-Limit"], hd["Ratelimit-Remaining"], hd["Ratelimit-Reset"]}; !reflect.DeepEqual(got, [3][]string{{tc.want[0]}, {tc.want[1]}, {tc.want[2]}}) {
				t.Errorf("%+v: %q, want %q", tc.res, got, tc.want)
			}
			if prev != nil {
				if got := [3]string{prev["Ratelimit-Limit"][0], prev["Ratelimit-Remaining"][0], prev["Ratelimit-Reset"][0]}; got != prevWant {
					t.Errorf("the previous response's values became %q, were %q", got, prevWant)
				}
			}
			prev, prevWant = hd, tc.want
		}
	}
}

// TestRateLimitAllocatesNothing: a request the wrapper lets through, by IP
// on a MemoryLimiter that knows its key, with header values under 4096,
// costs no allocation: the strings behind the three header values come
// from a chunk for 64 responses (regression: the key
// string, the values' strings and the map's canonical names cost up to
// seven, then the array of the three values one).
func TestRateLimitAllocatesNothing(t *testing.T) {
	if rateLimitRace {
		t.Skip("the race detector makes sync.Pool drop chunks on purpose: allocations are measured without it")
	}
	clock := newTestClock()
	g := MustNew(nil, WithClock(clock.Now))
	h := mustRateLimit(t, g, mustLimiter(t, clock, []Window{PerHour(1000)}), ByIP())(bareHandler)
	for _, addr := range []string{"192.0.2.1:1", "[2001:db8::1]:1"} {
		if code, allocs := allocsPerRequest(h, ipRequest(addr)); code != http.StatusOK || allocs != 0 {
			t.Errorf("%s: status %d, %v allocations a request, want 0", addr, code, allocs)
		}
	}
}

// TestRateLimitHeaderValuesAreEachResponsesOwn: the header values
// RateLimit writes, cut from chunks shared by many responses, are each
// response's own. A handler writes into its values, in place, on 300
// requests (several chunks, from several goroutines), and every response
// keeps the values it was given, its own writes included.
func TestRateLimitHeaderValuesAreEachResponsesOwn(t *testing.T) {
	clock := newTestClock()
	g := MustNew(nil, WithClock(clock.Now))
	const n = 300
	h := mustRateLimit(t, g, mustLimiter(t, clock, []Window{PerHour(1000)}), ByIP())(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hd := w.Header()
			hd["Ratelimit-Limit"][0] = r.Header.Get("X-Mark")
			hd["Ratelimit-Reset"][0] += "!"
		}))
	var mu sync.Mutex
	got := make([]http.Header, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := ipRequest("192.0.2.1:1")
			r.Header.Set("X-Mark", strconv.Itoa(i))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			mu.Lock()
			got[i] = w.Header()
			mu.Unlock()
		})
	}
	wg.Wait()
	remaining := map[string]bool{}
	for i, hd := range got {
		if v := hd["Ratelimit-Limit"]; len(v) != 1 || v[0] != strconv.Itoa(i) {
			t.Errorf("response %d: RateLimit-Limit %q, want its own mark %q", i, v, strconv.Itoa(i))
		}
		if v := hd["Ratelimit-Reset"]; len(v) != 1 || strings.Count(v[0], "!") != 1 || !strings.HasSuffix(v[0], "!") {
			t.Errorf("response %d: RateLimit-Reset %q, want a number and its own one \"!\"", i, v)
		}
		v := hd["Ratelimit-Remaining"]
		if len(v) != 1 || remaining[v[0]] {
			t.Errorf("response %d: RateLimit-Remaining %q, given to another response too", i, v)
			continue
		}
		remaining[v[0]] = true
	}
}

// TestRateLimitByClientAddsNoAllocation: behind Authenticate, a limit by
// client on a MemoryLimiter adds no allocation to the request's one (its
// state): its key is built on the stack (regression: "client:" + ID cost
// one).
func TestRateLimitByClientAddsNoAllocation(t *testing.T) {
	if rateLimitRace {
		t.Skip("the race detector makes sync.Pool drop chunks on purpose: allocations are measured without it")
	}
	clock := newTestClock()
	g := MustNew(Bearer(mockPayStore(t)), WithClock(clock.Now))
	h := Chain(g.Authenticate(), mustRateLimit(t, g, mustLimiter(t, clock, []Window{PerHour(1000)}), ByClient()))(bareHandler)
	if code, allocs := allocsPerRequest(h, bearer(keyA)); code != http.StatusOK || allocs != 1 {
		t.Errorf("status %d, %v allocations a request, want 1 (the request's state)", code, allocs)
	}
}

// allocsPerRequest serves r to h once (a key is new once), then measures
// the allocations of a request, into a writer whose header map is reused;
// it returns the last status and the allocations.
func allocsPerRequest(h http.Handler, r *http.Request) (int, float64) {
	w := &benchWriter{h: http.Header{}}
	h.ServeHTTP(w, r)
	allocs := testing.AllocsPerRun(100, func() {
		clear(w.h)
		h.ServeHTTP(w, r)
	})
	return w.code, allocs
}
