package apiguard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// slowKeys is a KeyStore whose every Lookup takes d on clock.
type slowKeys struct {
	KeyStore
	clock *testClock
	d     time.Duration
}

func (s slowKeys) Lookup(ctx context.Context, key string) (*Client, error) {
	s.clock.Advance(s.d)
	return s.KeyStore.Lookup(ctx, key)
}

// slowLimiter is a Limiter whose every Take takes d on clock.
type slowLimiter struct {
	Limiter
	clock *testClock
	d     time.Duration
}

func (s slowLimiter) Take(ctx context.Context, key string, n int) (LimitResult, error) {
	s.clock.Advance(s.d)
	return s.Limiter.Take(ctx, key, n)
}

// slowReplay is a ReplayStore whose every Seen takes d on clock.
type slowReplay struct {
	ReplayStore
	clock *testClock
	d     time.Duration
}

func (s slowReplay) Seen(ctx context.Context, ns, id string, ttl time.Duration) (bool, error) {
	s.clock.Advance(s.d)
	return s.ReplayStore.Seen(ctx, ns, id, ttl)
}

// recorder collects Decisions.
type recorder struct{ ds []Decision }

func (r *recorder) observe(d Decision) {
	d.Request = nil // not kept, as the contract says
	r.ds = append(r.ds, d)
}

// TestObserverSeesEveryDecision: each wrapper that runs reports one
// Decision, allowed or refused, with the stores' time as the Guard's clock
// saw it and the limiter's answer.
func TestObserverSeesEveryDecision(t *testing.T) {
	clock := newTestClock()
	keys := slowKeys{mustStore(t, KeySpec{Key: keyA, Client: Client{ID: "a", KeyID: "kid-a", Scopes: []string{"pay"}}}), clock, 3 * time.Millisecond}
	mem, err := NewMemoryLimiter([]Window{PerMinute(1)}, WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder
	g := MustNew(Bearer(keys), WithClock(clock.Now), WithObserver(rec.observe))
	h := Chain(g.Authenticate(), g.RequireScope("pay"), g.RateLimit(slowLimiter{mem, clock, 2 * time.Millisecond}, ByClient()))(okHandler)

	for _, want := range []int{200, 429} {
		if w := serve(h, bearerRequest()); w.Code != want {
			t.Fatalf("status %d, want %d", w.Code, want)
		}
	}
	type brief struct {
		wrapper      string
		allowed      bool
		code, client string
		keys, lim    time.Duration
		limit        int
	}
	var got []brief
	for _, d := range rec.ds {
		b := brief{wrapper: d.Wrapper, allowed: d.Allowed, keys: d.KeyStore, lim: d.Limiter, limit: d.Limit.Limit}
		if d.Err != nil {
			b.code = d.Err.Code
		}
		if d.Client != nil {
			b.client = d.Client.ID + "/" + d.Client.KeyID
		}
		if d.Guard != g {
			t.Errorf("%s: Guard %p, want %p", d.Wrapper, d.Guard, g)
		}
		got = append(got, b)
	}
	ms := time.Millisecond
	want := []brief{
		{"authenticate", true, "", "a/kid-a", 3 * ms, 0, 0},
		{"require_scope", true, "", "a/kid-a", 0, 0, 0},
		{"rate_limit", true, "", "a/kid-a", 0, 2 * ms, 1},
		{"authenticate", true, "", "a/kid-a", 3 * ms, 0, 0},
		{"require_scope", true, "", "a/kid-a", 0, 0, 0},
		{"rate_limit", false, "rate_limited", "a/kid-a", 0, 2 * ms, 1},
	}
	if len(got) != len(want) {
		t.Fatalf("decisions %+v\nwant %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("decision %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestObserverReplayStoreTime: RequestID's store time is reported.
func TestObserverReplayStoreTime(t *testing.T) {
	clock := newTestClock()
	keys := mustStore(t, KeySpec{Key: "app", Client: Client{ID: "sys", Publishable: true}})
	mem, err := NewMemoryReplayStore(WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder
	g := MustNew(AppKey(keys), WithDialect(Reseller()), WithClock(clock.Now), WithObserver(rec.observe))
	h := g.RequestID(slowReplay{mem, clock, 5 * time.Millisecond}, time.Hour)(okHandler)
	serve(h, req003("app", "r-1", ""))
	serve(h, req003("app", "r-1", ""))
	if len(rec.ds) != 2 || !rec.ds[0].Allowed || rec.ds[1].Allowed ||
		rec.ds[0].ReplayStore != 5*time.Millisecond || rec.ds[1].ReplayStore != 5*time.Millisecond ||
		rec.ds[1].Err.Code != "duplicate_request_id" || rec.ds[0].Wrapper != "request_id" {
		t.Errorf("decisions %+v", rec.ds)
	}
}

// TestCauses: refusals that look alike to the caller (one body, one
// status) are told apart by Decision.Cause and the log line, and neither
// carries the key.
func TestCauses(t *testing.T) {
	clock := newTestClock()
	const (
		live    = "live_sk_live_merchant0001"
		sandbox = "sandbox_sk_test_merchant0002"
		bare    = "plainkeywithoutprefix0003"
		pub     = "sandbox_pk_test_frontend0004"
		expired = "sandbox_sk_test_expired0005"
		revoked = "sandbox_sk_test_revoked0006"
	)
	keys := mustStore(t,
		KeySpec{Key: live, Client: Client{ID: "m1", KeyID: "k1"}},
		KeySpec{Key: sandbox, Client: Client{ID: "m2", KeyID: "k2"}},
		KeySpec{Key: bare, Client: Client{ID: "m3", KeyID: "k3"}},
		KeySpec{Key: pub, Client: Client{ID: "m4", KeyID: "k4", Publishable: true}},
		KeySpec{Key: expired, Client: Client{ID: "m5", KeyID: "k5"}, NotAfter: clock.Now().Add(-time.Second)},
		KeySpec{Key: revoked, Client: Client{ID: "m6", KeyID: "k6"}},
	)
	keys.now = clock.Now
	keys.Revoke("k6", clock.Now().Add(-time.Second))

	bearer := func(key string) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest("GET", "/v1/charges", nil)
			r.Header.Set("Authorization", "Bearer "+key)
			return r
		}
	}
	tests := []struct {
		name   string
		scheme Scheme
		env    Environment
		req    func() *http.Request
		code   string
		cause  string
		level  string
	}{
		{"unknown key", Bearer(keys), Sandbox, bearer("sandbox_sk_test_nosuchkey"), "invalid_key", "unknown_key", "INFO"},
		{"expired key", Bearer(keys), Sandbox, bearer(expired), "invalid_key", "expired_key", "INFO"},
		{"revoked key", Bearer(keys), Sandbox, bearer(revoked), "invalid_key", "revoked_key", "INFO"},
		{"live key on a sandbox guard", Bearer(keys), Sandbox, bearer(live), "invalid_key", "wrong_environment", "INFO"},
		// Issue 16, item 2: a key of no known prefix on a sandbox Guard.
		{"key of no environment on a sandbox guard", Bearer(keys), Sandbox, bearer(bare), "invalid_key", "unknown_environment", "INFO"},
		{"publishable key on a server route", Bearer(keys), Sandbox, bearer(pub), "invalid_key", "publishable_key", "INFO"},
		{"server key as an app key", AppKey(keys), Sandbox, func() *http.Request { return req003(sandbox, "", "") }, "invalid_app_key", "server_key", "INFO"},
		{"two Authorization headers", Bearer(keys), Sandbox, func() *http.Request {
			r := bearer(sandbox)()
			r.Header.Add("Authorization", "Bearer "+sandbox)
			return r
		}, "invalid_key", "malformed_key", "INFO"},
		{"key store down", Bearer(failingStore{}), Sandbox, bearer(sandbox), "unavailable", "key_store_failed", "ERROR"},
	}
	bodies := map[string]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			var rec recorder
			g := MustNew(tc.scheme, WithEnvironment(tc.env), WithClock(clock.Now), WithObserver(rec.observe),
				WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
			r := tc.req()
			r.RemoteAddr = "192.0.2.7:1234"
			w := serve(g.Authenticate()(okHandler), r)
			if len(rec.ds) != 1 {
				t.Fatalf("%d decisions", len(rec.ds))
			}
			d := rec.ds[0]
			if d.Allowed || d.Err.Code != tc.code || d.Cause != tc.cause || d.Wrapper != "authenticate" {
				t.Errorf("decision %s/%s by %s, want %s/%s", d.Err.Code, d.Cause, d.Wrapper, tc.code, tc.cause)
			}
			if prev, ok := bodies[tc.code]; ok && prev != w.Body.String() {
				t.Errorf("body %s differs from that of another %s: %s", w.Body, tc.code, prev)
			}
			bodies[tc.code] = w.Body.String()
			if strings.Contains(w.Body.String(), tc.cause) {
				t.Errorf("the cause reached the caller: %s", w.Body)
			}
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("log %q: %v", logs.String(), err)
			}
			want := map[string]any{"level": tc.level, "msg": "apiguard: request denied", "code": tc.code,
				"cause": tc.cause, "wrapper": "authenticate", "ip": "192.0.2.7", "method": r.Method, "path": r.URL.Path,
				"status": float64(w.Code)}
			delete(line, "time")
			for k, v := range want {
				if line[k] != v {
					t.Errorf("log %s = %v, want %v", k, line[k], v)
				}
			}
			if len(line) != len(want) {
				t.Errorf("log line %v has fields beyond %v", line, want)
			}
			for _, secret := range []string{live, sandbox, bare, pub, expired, revoked, "nosuchkey", "10.0.0.1"} {
				if strings.Contains(logs.String(), secret) {
					t.Errorf("log carries %q: %s", secret, logs.String())
				}
			}
			if !errors.Is(d.Err, ErrInvalidKey) && tc.code == "invalid_key" {
				t.Errorf("%v does not match ErrInvalidKey", d.Err)
			}
		})
	}
}

// TestObserverOnDeny: a handler's Deny is a Decision of its own.
func TestObserverOnDeny(t *testing.T) {
	var rec recorder
	g := MustNew(nil, WithObserver(rec.observe))
	g.Deny(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), ErrForbidden)
	if len(rec.ds) != 1 || rec.ds[0].Wrapper != "deny" || rec.ds[0].Err.Code != "forbidden" {
		t.Errorf("decisions %+v", rec.ds)
	}
}

// TestFill: Fill reports each bounded store's entries against the capacity
// it was built with, and nothing for anything else.
func TestFill(t *testing.T) {
	clock := newTestClock()
	keys := mustStore(t, KeySpec{Key: "sk_test_fill", Client: Client{ID: "c"}})
	cache, _ := NewCachedKeyStore(keys, WithCapacity(7))
	cache.Lookup(context.Background(), "sk_test_fill")
	limiter, _ := NewMemoryLimiter([]Window{PerMinute(1)}, WithCapacity(2048), WithClock(clock.Now))
	limiter.Take(context.Background(), "a", 1)
	limiter.Take(context.Background(), "b", 1)
	replay, _ := NewMemoryReplayStore(WithCapacity(9), WithClock(clock.Now))
	replay.Seen(context.Background(), "ns", "id-1", time.Minute)
	sk, _ := GenerateSigningKey("fill")
	ring, _ := NewKeyRing(sk)
	sessions, _ := NewSessions("test-api", ring, WithCapacity(5), WithClock(clock.Now))
	sessions.Login(context.Background(), &Client{ID: "u"})
	for name, tt := range map[string]struct {
		store             any
		entries, capacity int
	}{
		"MemoryKeyStore":    {keys, 1, defaultKeyStoreCapacity},
		"CachedKeyStore":    {cache, 1, 7},
		"MemoryLimiter":     {limiter, 2, 2048},
		"MemoryReplayStore": {replay, 1, 9},
		"Sessions":          {sessions, 1, 5},
	} {
		if n, c, ok := Fill(tt.store); !ok || n != tt.entries || c != tt.capacity {
			t.Errorf("%s: %d of %d (%v), want %d of %d", name, n, c, ok, tt.entries, tt.capacity)
		}
	}
	var nilKeys *MemoryKeyStore
	for name, s := range map[string]any{"nil": nil, "typed nil": nilKeys, "zero": &MemoryLimiter{}, "other": ring} {
		if _, _, ok := Fill(s); ok {
			t.Errorf("Fill(%s) reported a fill", name)
		}
	}
}
