package apiguard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// seed003 builds the client-system API of seed 003: x-app-key identifies
// the calling system, x-request-id must be unique per system.
func seed003(t testing.TB, clock *testClock, store ReplayStore) (*Guard, http.Handler) {
	keys := mustStore(t,
		KeySpec{Key: "app-public-1", Client: Client{ID: "sys-1", Publishable: true}},
		KeySpec{Key: "app-public-2", Client: Client{ID: "sys-2", Publishable: true}},
		KeySpec{Key: "server-secret", Client: Client{ID: "sys-3"}},
	)
	g := MustNew(AppKey(keys), WithClock(clock.Now), WithDialect(clientSystem()))
	return g, Chain(g.Authenticate(), g.RequestID(store, 0))(okHandler)
}

func req003(appKey, id, lang string) *http.Request {
	r := httptest.NewRequest("POST", "/external/v1/orders", nil)
	if appKey != "" {
		r.Header.Set("x-app-key", appKey)
	}
	if id != "" {
		r.Header.Set("x-request-id", id)
	}
	if lang != "" {
		r.Header.Set("x-language", lang)
	}
	return r
}

func problem(status int, title, detail, code string) string {
	return fmt.Sprintf(`{"type":"about:blank","title":%q,"status":%d,"detail":%q,"code":%q}`, title, status, detail, code)
}

// TestSeed003Errors: every refusal of seed 003's headers in the Problem
// dialect, in both languages of x-language, to the letter.
func TestSeed003Errors(t *testing.T) {
	clock := newTestClock()
	_, h := seed003(t, clock, nil)
	if w := serve(h, req003("app-public-1", "req-0001", "")); w.Code != 200 || w.Header().Get("X-Client") != "sys-1" {
		t.Fatalf("first request: %d %s", w.Code, w.Body)
	}
	cases := []struct {
		name   string
		r      *http.Request
		status int
		body   string
	}{
		{"missing id/id", req003("app-public-1", "", ""), 400, problem(400, "Bad Request", "Header wajib tidak ada: x-request-id", "missing_request_id")},
		{"missing id/en", req003("app-public-1", "", "en"), 400, problem(400, "Bad Request", "Missing required header: x-request-id", "missing_request_id")},
		{"missing id/fallback", req003("app-public-1", "", "fr"), 400, problem(400, "Bad Request", "Header wajib tidak ada: x-request-id", "missing_request_id")},
		{"duplicate/id", req003("app-public-1", "req-0001", "id"), 409, problem(409, "Conflict", "x-request-id sudah pernah digunakan", "duplicate_request_id")},
		{"duplicate/en", req003("app-public-1", "req-0001", "en"), 409, problem(409, "Conflict", "x-request-id has already been used", "duplicate_request_id")},
		{"invalid id/id", req003("app-public-1", "has space", ""), 400, problem(400, "Bad Request", "x-request-id tidak valid", "invalid_request_id")},
		{"invalid id/en", req003("app-public-1", strings.Repeat("x", 129), "en"), 400, problem(400, "Bad Request", "Invalid x-request-id", "invalid_request_id")},
		{"missing app key/id", req003("", "req-0002", ""), 401, problem(401, "Unauthorized", "Header wajib tidak ada: x-app-key", "missing_app_key")},
		{"missing app key/en", req003("", "req-0002", "en"), 401, problem(401, "Unauthorized", "Missing required header: x-app-key", "missing_app_key")},
		{"unknown app key/id", req003("app-public-9", "req-0002", ""), 401, problem(401, "Unauthorized", "x-app-key tidak valid", "invalid_app_key")},
		{"unknown app key/en", req003("app-public-9", "req-0002", "en"), 401, problem(401, "Unauthorized", "Invalid x-app-key", "invalid_app_key")},
		{"server key as app key", req003("server-secret", "req-0002", "en"), 401, problem(401, "Unauthorized", "Invalid x-app-key", "invalid_app_key")},
		{"malformed app key", req003("app public", "req-0002", "en"), 401, problem(401, "Unauthorized", "Invalid x-app-key", "invalid_app_key")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantBody(t, serve(h, tc.r), tc.status, tc.body)
		})
	}
	t.Run("two ids", func(t *testing.T) {
		r := req003("app-public-1", "req-0003", "en")
		r.Header.Add("x-request-id", "req-0004")
		wantBody(t, serve(h, r), 400, problem(400, "Bad Request", "Invalid x-request-id", "invalid_request_id"))
	})
	t.Run("two app keys", func(t *testing.T) {
		r := req003("app-public-1", "req-0003", "en")
		r.Header.Add("x-app-key", "app-public-1")
		wantBody(t, serve(h, r), 401, problem(401, "Unauthorized", "Invalid x-app-key", "invalid_app_key"))
	})
	// The refusals above used no id up: req-0002 still goes through.
	if w := serve(h, req003("app-public-1", "req-0002", "")); w.Code != 200 {
		t.Errorf("req-0002 after refusals: %d %s", w.Code, w.Body)
	}
}

// TestRequestIDPerClient: one id is one id per client; a client cannot use
// up another's.
func TestRequestIDPerClient(t *testing.T) {
	_, h := seed003(t, newTestClock(), nil)
	for i, tc := range []struct {
		key    string
		status int
	}{{"app-public-1", 200}, {"app-public-2", 200}, {"app-public-1", 409}, {"app-public-2", 409}} {
		if w := serve(h, req003(tc.key, "same-id", "")); w.Code != tc.status {
			t.Errorf("request %d (%s): %d, want %d", i, tc.key, w.Code, tc.status)
		}
	}
}

func TestRequestIDRetention(t *testing.T) {
	clock := newTestClock()
	store, err := NewMemoryReplayStore(WithCapacity(10), WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	keys := mustStore(t, KeySpec{Key: "app", Client: Client{ID: "sys", Publishable: true}})
	g := MustNew(AppKey(keys), WithClock(clock.Now))
	h := g.RequestID(store, time.Minute)(okHandler)
	do := func() int { return serve(h, req003("app", "r-1", "")).Code }
	for i, step := range []struct {
		advance time.Duration
		want    int
	}{{0, 200}, {59 * time.Second, 409}, {time.Second, 409}, {time.Nanosecond, 200}, {30 * time.Second, 409}} {
		clock.Advance(step.advance)
		if got := do(); got != step.want {
			t.Errorf("step %d: %d, want %d", i, got, step.want)
		}
	}
}

// TestRequestIDConcurrentDuplicate: of many concurrent requests with one
// id, exactly one goes through.
func TestRequestIDConcurrentDuplicate(t *testing.T) {
	_, h := seed003(t, newTestClock(), nil)
	const n = 64
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			codes[i] = serve(h, req003("app-public-1", "dup-1", "")).Code
		})
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	if count[200] != 1 || count[409] != n-1 {
		t.Errorf("answers %v, want one 200 and %d 409", count, n-1)
	}
}

// TestRequestIDOneClientCannotFillStore: a client at its share of the
// store (an eighth) gets 503 for new ids and keeps the ids it holds, while
// another client's next request is answered as if nothing happened.
func TestRequestIDOneClientCannotFillStore(t *testing.T) {
	clock := newTestClock()
	store, _ := NewMemoryReplayStore(WithCapacity(24), WithClock(clock.Now))
	_, h := seed003(t, clock, store)
	for i := range 3 {
		if w := serve(h, req003("app-public-1", "id-"+strconv.Itoa(i), "")); w.Code != 200 {
			t.Fatalf("id %d: %d", i, w.Code)
		}
	}
	wantBody(t, serve(h, req003("app-public-1", "id-new", "en")), 503,
		problem(503, "Service Unavailable", "Service unavailable", "unavailable"))
	if w := serve(h, req003("app-public-2", "id-new", "")); w.Code != 200 {
		t.Errorf("another client while the first is at its share: %d, want 200", w.Code)
	}
	// The oldest id is still remembered.
	if w := serve(h, req003("app-public-1", "id-0", "")); w.Code != 409 {
		t.Errorf("id-0 at the share: %d, want 409", w.Code)
	}
	clock.Advance(10*time.Minute + time.Nanosecond)
	if w := serve(h, req003("app-public-1", "id-new", "")); w.Code != 200 {
		t.Errorf("after the retention: %d, want 200", w.Code)
	}
	if n := store.len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
}

// TestRequestIDRefusedRequestsDoNotFillStore: the ids of requests a later
// check refuses free their place at once, so refused requests alone never
// fill a client's share.
func TestRequestIDRefusedRequestsDoNotFillStore(t *testing.T) {
	clock := newTestClock()
	store, _ := NewMemoryReplayStore(WithCapacity(8), WithClock(clock.Now))
	keys := mustStore(t, KeySpec{Key: "app", Client: Client{ID: "sys", Publishable: true}})
	g := MustNew(AppKey(keys), WithClock(clock.Now))
	refuse := g.wrap("check", false, func(http.ResponseWriter, *http.Request, *state) error { return ErrForbidden })
	refused := g.RequestID(store, time.Minute)(refuse(okHandler))
	for i := range 100 {
		if w := serve(refused, req003("app", "r-"+strconv.Itoa(i), "")); w.Code != 403 {
			t.Fatalf("request %d: %d, want 403", i, w.Code)
		}
	}
	if n := store.len(); n != 0 {
		t.Errorf("%d ids held after refused requests, want 0", n)
	}
	h := g.RequestID(store, time.Minute)(okHandler)
	if w := serve(h, req003("app", "next", "")); w.Code != 200 {
		t.Errorf("next request: %d, want 200", w.Code)
	}
}

// fakeReplayStore fails on demand and counts Forget calls.
type fakeReplayStore struct {
	MemoryReplayStore
	fail    error
	forgets []string
	mu      sync.Mutex
}

func (f *fakeReplayStore) Seen(ctx context.Context, ns, id string, ttl time.Duration) (bool, error) {
	if f.fail != nil {
		return false, f.fail
	}
	return f.MemoryReplayStore.Seen(ctx, ns, id, ttl)
}

func (f *fakeReplayStore) Forget(ctx context.Context, ns, id string) error {
	f.mu.Lock()
	f.forgets = append(f.forgets, ns+"/"+id)
	f.mu.Unlock()
	return f.MemoryReplayStore.Forget(ctx, ns, id)
}

func TestRequestIDStoreFailureFailsClosed(t *testing.T) {
	store := &fakeReplayStore{fail: errors.New("redis: connection refused password=hunter2")}
	var denied []Decision
	keys := mustStore(t, KeySpec{Key: "app", Client: Client{ID: "sys", Publishable: true}})
	g := MustNew(AppKey(keys), WithDialect(Reseller()), WithObserver(func(d Decision) {
		if d.Allowed {
			return
		}
		denied = append(denied, d)
	}))
	w := serve(g.RequestID(store, 0)(okHandler), req003("app", "r-1", ""))
	if w.Code != 503 || strings.Contains(w.Body.String(), "hunter2") {
		t.Errorf("status %d body %s", w.Code, w.Body)
	}
	if len(denied) != 1 || !errors.Is(denied[0].Err, ErrUnavailable) || !errors.Is(denied[0].Err, store.fail) {
		t.Errorf("denial %+v", denied)
	}
}

// TestRequestIDReleasedOnLaterRefusal: an id recorded by RequestID is
// forgotten when a wrapper after it refuses the request, and kept when the
// handler is reached, whatever the handler answers.
func TestRequestIDReleasedOnLaterRefusal(t *testing.T) {
	clock := newTestClock()
	store := &fakeReplayStore{}
	store.now = clock.Now
	keys := mustStore(t, KeySpec{Key: "app", Client: Client{ID: "sys", Publishable: true}})
	g := MustNew(AppKey(keys), WithClock(clock.Now))
	blocked := g.Check(func(r *http.Request) error {
		if r.Header.Get("X-Block") != "" {
			return ErrForbidden
		}
		return nil
	})
	failing := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.Deny(w, r, ErrInvalidBody) })
	h := Chain(g.RequestID(store, 0), blocked)(failing)
	r := req003("app", "r-1", "")
	r.Header.Set("X-Block", "1")
	if w := serve(h, r); w.Code != 403 {
		t.Fatalf("blocked: %d", w.Code)
	}
	if len(store.forgets) != 1 || store.forgets[0] != "sys\x00ip:192.0.2.1/r-1" {
		t.Fatalf("forgets %v", store.forgets)
	}
	// The handler's own refusal is an answer: the id is used.
	if w := serve(h, req003("app", "r-1", "")); w.Code != 400 {
		t.Fatalf("handler: %d", w.Code)
	}
	if w := serve(h, req003("app", "r-1", "")); w.Code != 409 {
		t.Fatalf("retry after the handler answered: %d, want 409", w.Code)
	}
	if len(store.forgets) != 1 {
		t.Errorf("forgets %v", store.forgets)
	}
	// Two RequestID wrappers on one store see one id once.
	h2 := Chain(g.RequestID(store, 0), g.RequestID(store, 0))(okHandler)
	if w := serve(h2, req003("app", "r-2", "")); w.Code != 200 {
		t.Errorf("nested wrappers: %d", w.Code)
	}
	// A store that is a value of a type == cannot compare does not panic;
	// each wrapper then stands for itself.
	v := valueStore{nil, &MemoryReplayStore{}}
	h3 := Chain(g.RequestID(v, 0), g.RequestID(v, 0))(okHandler)
	if w := serve(h3, req003("app", "r-3", "")); w.Code != 409 {
		t.Errorf("nested wrappers on an incomparable store: %d", w.Code)
	}
}

type valueStore struct {
	_ []int
	*MemoryReplayStore
}

// TestRequestIDStackInAnyOrder: for every order of Authenticate, RequestID,
// RequestTime and IPAllow, one sequence of requests gets the same answers,
// because refused requests do not use their ids up.
func TestRequestIDStackInAnyOrder(t *testing.T) {
	clock := newTestClock()
	keys := mustStore(t,
		KeySpec{Key: "app-1", Client: Client{ID: "sys-1", Publishable: true}},
		KeySpec{Key: "app-2", Client: Client{ID: "sys-2", Publishable: true}},
	)
	g := MustNew(AppKey(keys), WithDialect(Reseller()), WithClock(clock.Now))
	allow, _ := ParsePrefixes("203.0.113.0/24")
	req := func(key, id, remote string, age, advance time.Duration) func() *http.Request {
		return func() *http.Request {
			clock.Advance(advance)
			r := req003(key, id, "")
			r.RemoteAddr = remote
			r.Header.Set("X-Request-Time", strconv.FormatInt(clock.Now().Add(-age).Unix(), 10))
			return r
		}
	}
	// Alone, RequestID would use r-1 up on the first request; stacked, the
	// refusal of a later wrapper gives it back. So the verdicts are declared.
	checkAnyOrder(t, anyOrder{
		stack: func() []namedWrapper {
			store, _ := NewMemoryReplayStore(WithCapacity(100), WithClock(clock.Now))
			return []namedWrapper{
				{"auth", g.Authenticate()},
				{"id", g.RequestID(store, 0)},
				{"time", g.RequestTime(0)},
				{"allow", g.IPAllow(allow...)},
			}
		},
		requests: []orderReq{
			{"expired", "sys-1", req("app-1", "r-1", "203.0.113.5:1", time.Hour, 0)},
			{"not whitelisted", "sys-1", req("app-1", "r-1", "192.0.2.5:1", 0, 0)},
			{"unknown app", "", req("app-9", "r-1", "203.0.113.5:1", 0, 0)},
			{"first use", "sys-1", req("app-1", "r-1", "203.0.113.5:1", 0, 0)},
			{"replay", "sys-1", req("app-1", "r-1", "203.0.113.5:1", 0, 0)},
			{"replay from elsewhere", "sys-1", req("app-1", "r-1", "192.0.2.5:1", 0, 0)},
			{"another system's r-1", "sys-2", req("app-2", "r-1", "203.0.113.5:1", 0, 0)},
			{"no id", "sys-1", req("app-1", "", "203.0.113.5:1", 0, 0)},
			{"after the retention", "sys-1", req("app-1", "r-1", "203.0.113.5:1", 0, 11*time.Minute)},
		},
		says: map[string]map[string]int{
			"expired":               {"time": 400},
			"not whitelisted":       {"allow": 403},
			"unknown app":           {"auth": 401, "id": 401},
			"replay":                {"id": 409},
			"replay from elsewhere": {"allow": 403}, // under a public key, another address is another caller
			"no id":                 {"id": 400},
		},
	})
}

// BenchmarkRequestID measures the unique-id check with the memory store
// against Authenticate alone, which it needs anyway.
func BenchmarkRequestID(b *testing.B) {
	keys := mustStore(b, KeySpec{Key: "app", Client: Client{ID: "sys", Publishable: true}})
	g := MustNew(AppKey(keys))
	store, _ := NewMemoryReplayStore(WithCapacity(1 << 20))
	r := req003("app", "", "")
	r.RemoteAddr = netip.MustParseAddrPort("203.0.113.9:1").String()
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"authenticate", g.Authenticate()(bare)},
		{"authenticate+requestid", Chain(g.Authenticate(), g.RequestID(store, time.Hour))(bare)},
	} {
		b.Run(c.name, func(b *testing.B) {
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				r.Header.Set("X-Request-Id", "req-"+strconv.Itoa(i))
				c.h.ServeHTTP(w, r)
			}
		})
	}
}

// TestRequestIDReleasedByRateLimit: a request the rate limiter refuses uses
// no request id up, whether the limiter stands inside or outside RequestID
// (regression: the limiter's refusal did not give the id back).
func TestRequestIDReleasedByRateLimit(t *testing.T) {
	for _, idFirst := range []bool{true, false} {
		clock := newTestClock()
		keys := mustStore(t, KeySpec{Key: "app-key", Client: Client{ID: "app", Publishable: true}})
		g := MustNew(AppKey(keys), WithClock(clock.Now))
		store, _ := NewMemoryReplayStore(WithCapacity(100), WithClock(clock.Now))
		l, _ := NewMemoryLimiter([]Window{PerMinute(1)}, WithClock(clock.Now))
		stack := []Middleware{g.RequestID(store, 0), g.RateLimit(l, ByClient())}
		if !idFirst {
			stack[0], stack[1] = stack[1], stack[0]
		}
		h := Chain(stack...)(okHandler)
		send := func(id string) int {
			r := httptest.NewRequest("POST", "/", nil)
			r.Header.Set("x-app-key", "app-key")
			r.Header.Set("x-request-id", id)
			return serve(h, r).Code
		}
		for i, step := range []struct {
			id      string
			advance time.Duration
			want    int
		}{
			{"a", 0, 200},
			{"b", 0, 429},           // limited: b is not used up
			{"b", time.Minute, 200}, // so it goes through once the limit allows
			{"b", time.Minute, 409}, // and only once
		} {
			clock.Advance(step.advance)
			if got := send(step.id); got != step.want {
				t.Errorf("idFirst=%v step %d (%s): %d, want %d", idFirst, i, step.id, got, step.want)
			}
		}
	}
}

// TestReplayAtTheEdgeOfTheWindow: a request dated a whole window ahead (as
// RequestTime allows) is still inside the window one retention (two
// windows) after it was seen; at that very instant its id must still be
// held, so the replay is 409, and one nanosecond later RequestTime refuses
// it. No instant admits the replay, in either order of the stack.
func TestReplayAtTheEdgeOfTheWindow(t *testing.T) {
	const window = 5 * time.Minute
	for _, timeFirst := range []bool{true, false} {
		clock := newTestClock()
		t0 := clock.Now()
		keys := mustStore(t, KeySpec{Key: "sk_edge", Client: Client{ID: "c"}})
		g := MustNew(Bearer(keys), WithClock(clock.Now))
		store, _ := NewMemoryReplayStore(WithClock(clock.Now))
		stack := []Middleware{g.RequestTime(window), g.RequestID(store, 0)} // retention: two windows
		if !timeFirst {
			stack[0], stack[1] = stack[1], stack[0]
		}
		h := Chain(stack...)(okHandler)
		req := func() *http.Request {
			r := httptest.NewRequest("POST", "/order", nil)
			r.Header.Set("Authorization", "Bearer sk_edge")
			r.Header.Set("X-Request-Id", "edge-1")
			r.Header.Set("X-Request-Time", strconv.FormatInt(t0.Add(window).Unix(), 10))
			return r
		}
		if w := serve(h, req()); w.Code != 200 {
			t.Fatalf("first request: %d", w.Code)
		}
		for _, at := range []time.Duration{window, 2*window - time.Nanosecond, 2 * window, 2*window + time.Nanosecond} {
			clock.ns.Store(t0.Add(at).UnixNano())
			w := serve(h, req())
			want := 409
			if at > 2*window {
				want = 400 // RequestTime: Request expired
			}
			if w.Code != want {
				t.Errorf("time first %v, replay at t0+%v: %d, want %d", timeFirst, at, w.Code, want)
			}
		}
	}
}

// TestOneCallerCannotBurnAnothersRequestID: under a publishable key, which
// anyone may send, a caller who sends another caller's predictable id
// first does not make that caller's request fail with 409; each caller's
// own duplicates still do. Under a secret key the client is the caller, from
// any address.
func TestOneCallerCannotBurnAnothersRequestID(t *testing.T) {
	keys := mustStore(t,
		KeySpec{Key: "app-public-1", Client: Client{ID: "sys-1", Publishable: true}},
		KeySpec{Key: "server-secret", Client: Client{ID: "sys-3"}},
	)
	clock := newTestClock()
	app := MustNew(AppKey(keys), WithClock(clock.Now), WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")))
	server := MustNew(Bearer(keys), WithClock(clock.Now))
	store, err := NewMemoryReplayStore(WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	appH := app.RequestID(store, 0)(okHandler)
	serverH := server.RequestID(store, 0)(okHandler)
	from := func(remote, xff, id string) *http.Request {
		r := req003("app-public-1", id, "")
		r.RemoteAddr = remote
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		return r
	}
	for i, step := range []struct {
		name   string
		r      *http.Request
		h      http.Handler
		status int
	}{
		{"attacker sends the victim's next id first", from("198.51.100.7:4000", "", "order-42"), appH, 200},
		{"the victim's own request", from("203.0.113.9:5000", "", "order-42"), appH, 200},
		{"the victim's retry", from("203.0.113.9:5001", "", "order-42"), appH, 409},
		{"the attacker's retry", from("198.51.100.7:4001", "", "order-42"), appH, 409},
		{"victim through a trusted proxy", from("10.1.2.3:80", "192.0.2.55", "order-43"), appH, 200},
		{"attacker forging the victim's address left of the proxy's entry", from("10.1.2.3:80", "192.0.2.55, 198.51.100.7", "order-44"), appH, 200},
		{"the victim's id 44", from("10.1.2.3:80", "192.0.2.55", "order-44"), appH, 200},
		{"the victim's retry through the proxy", from("10.1.2.3:80", "192.0.2.55", "order-43"), appH, 409},
		{"an IPv6 caller", from("[2001:db8:1:2::1]:443", "", "order-45"), appH, 200},
		{"its retry from another address of its /64", from("[2001:db8:1:2::99]:443", "", "order-45"), appH, 409},
		{"another /64", from("[2001:db8:1:3::1]:443", "", "order-45"), appH, 200},
	} {
		if w := serve(step.h, step.r); w.Code != step.status {
			t.Errorf("step %d, %s: %d, want %d", i, step.name, w.Code, step.status)
		}
	}
	// A secret key's ids are its client's, whatever the address.
	for i, remote := range []string{"198.51.100.7:4000", "203.0.113.9:5000"} {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("Authorization", "Bearer server-secret")
		r.Header.Set("X-Request-Id", "order-42")
		if w, want := serve(serverH, r), []int{200, 409}[i]; w.Code != want {
			t.Errorf("secret key from %s: %d, want %d", remote, w.Code, want)
		}
	}
}

// TestRequestIDPublishableCallersShareTheClientsShare: the callers of one
// publishable key, from however many addresses, fill at most that client's
// share of a MemoryReplayStore; other clients go on.
func TestRequestIDPublishableCallersShareTheClientsShare(t *testing.T) {
	clock := newTestClock()
	store, _ := NewMemoryReplayStore(WithCapacity(24), WithClock(clock.Now))
	_, h := seed003(t, clock, store)
	for i := range 3 {
		r := req003("app-public-1", "id-"+strconv.Itoa(i), "")
		r.RemoteAddr = "198.51.100." + strconv.Itoa(i+1) + ":1000"
		if w := serve(h, r); w.Code != 200 {
			t.Fatalf("id %d: %d", i, w.Code)
		}
	}
	r := req003("app-public-1", "id-new", "")
	r.RemoteAddr = "198.51.100.200:1000"
	if w := serve(h, r); w.Code != 503 {
		t.Errorf("a fourth address of the client at its share: %d, want 503", w.Code)
	}
	if w := serve(h, req003("app-public-2", "id-new", "")); w.Code != 200 {
		t.Errorf("another client: %d, want 200", w.Code)
	}
}
