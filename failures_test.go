package apiguard

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// failureGuard is 88Pay's token endpoint with a limit of 3 failed attempts
// a minute per address and per claimed merchant in its network.
func failureGuard(t *testing.T, clock *testClock) (*Guard, *MemoryLimiter, http.Handler) {
	t.Helper()
	keys := mustStore(t,
		KeySpec{Key: "sk_test_right1", Client: Client{ID: "MCH-1"}},
		KeySpec{Key: "sk_test_right2", Client: Client{ID: "MCH-2"}},
	)
	l, err := NewMemoryLimiter([]Window{PerMinute(3)}, WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(MerchantKey(keys), WithClock(clock.Now), WithDialect(Pay88()), WithFailureLimit(l, ByHeader("X-Merchant-Id")))
	if err != nil {
		t.Fatal(err)
	}
	return g, l, g.Authenticate()(okHandler)
}

func tokenRequest(remote, key, merchant string) *http.Request {
	r := httptest.NewRequest("POST", "/api/auth/token", nil)
	r.RemoteAddr = remote
	if key != "" {
		r.Header.Set("X-Api-Key", key)
	}
	if merchant != "" {
		r.Header.Set("X-Merchant-Id", merchant)
	}
	return r
}

// TestFailedAttemptsCannotLockOutTheOwner: a caller guessing a merchant's
// key is refused with 429 after its budget of failures, even with the
// right key (no oracle), while the merchant itself, from another network,
// gets through; guesses from the guesser's network at that merchant share
// one budget, however many addresses they come from.
func TestFailedAttemptsCannotLockOutTheOwner(t *testing.T) {
	clock := newTestClock()
	_, _, h := failureGuard(t, clock)
	type step struct {
		name       string
		r          *http.Request
		status     int
		retryAfter string
	}
	steps := []step{}
	for i := range 3 {
		steps = append(steps, step{"guess " + strconv.Itoa(i), tokenRequest("198.51.100.7:1", "sk_test_guess"+strconv.Itoa(i), "MCH-1"), 401, ""})
	}
	steps = append(steps,
		step{"the fourth guess", tokenRequest("198.51.100.7:1", "sk_test_guess4", "MCH-1"), 429, "20"},
		step{"the right key from the guesser's address", tokenRequest("198.51.100.7:2", "sk_test_right1", "MCH-1"), 429, "20"},
		step{"the owner from elsewhere", tokenRequest("203.0.113.9:1", "sk_test_right1", "MCH-1"), 200, ""},
		step{"the owner again", tokenRequest("203.0.113.9:1", "sk_test_right1", "MCH-1"), 200, ""},
		step{"another address of the guesser's /24 at the same merchant", tokenRequest("198.51.100.8:1", "sk_test_guess5", "MCH-1"), 429, "20"},
		step{"that address at another merchant", tokenRequest("198.51.100.8:1", "sk_test_guess6", "MCH-2"), 401, ""},
		step{"another merchant's owner from the guesser's /24", tokenRequest("198.51.100.9:1", "sk_test_right2", "MCH-2"), 200, ""},
		step{"the guesser's address at another merchant", tokenRequest("198.51.100.7:1", "sk_test_right2", "MCH-2"), 429, "20"},
		step{"no credentials are not a failure", tokenRequest("192.0.2.1:1", "", ""), 401, ""},
	)
	// An IPv6 guesser varying its address within its /48.
	for i := range 3 {
		steps = append(steps, step{"IPv6 guess " + strconv.Itoa(i), tokenRequest("[2001:db8:1:"+strconv.Itoa(i)+"::1]:1", "sk_test_x", "MCH-1"), 401, ""})
	}
	steps = append(steps,
		step{"an IPv6 guess from a fresh /64 of that /48", tokenRequest("[2001:db8:1:ff::1]:1", "sk_test_x", "MCH-1"), 429, "20"},
		step{"the owner from another /48", tokenRequest("[2001:db8:2::1]:1", "sk_test_right1", "MCH-1"), 200, ""},
	)
	for i, st := range steps {
		w := serve(h, st.r)
		if w.Code != st.status || w.Header().Get("Retry-After") != st.retryAfter {
			t.Errorf("step %d, %s: %d, Retry-After %q; want %d, %q", i, st.name, w.Code, w.Header().Get("Retry-After"), st.status, st.retryAfter)
		}
		if w.Code == 429 {
			wantBody(t, w, 429, `{"status":"Error","code":429,"message":"Rate limit exceeded"}`)
		}
	}
	for range 10 {
		if w := serve(h, tokenRequest("192.0.2.1:1", "", "")); w.Code != 401 {
			t.Fatalf("missing credentials: %d, want 401 each time", w.Code)
		}
	}
	// A token refills in 20 s: one more guess, then 429 again.
	clock.Advance(20 * time.Second)
	for i, want := range []int{401, 429} {
		if w := serve(h, tokenRequest("198.51.100.7:1", "sk_test_guess", "MCH-1")); w.Code != want {
			t.Errorf("after 20 s, guess %d: %d, want %d", i, w.Code, want)
		}
	}
}

// TestFailureLimitCountsOnlyFailures: requests with the right credentials
// take nothing from the budgets, in whatever wrapper the Guard identifies
// the caller, once a request.
func TestFailureLimitCountsOnlyFailures(t *testing.T) {
	clock := newTestClock()
	g, l, _ := failureGuard(t, clock)
	h := Chain(g.Authenticate(), g.RequireScope(), g.RateLimit(l, ByClient()))(okHandler)
	for i := range 3 { // within the rate limit's 3 a minute
		if w := serve(h, tokenRequest("198.51.100.7:1", "sk_test_right1", "MCH-1")); w.Code != 200 {
			t.Fatalf("success %d: %d", i, w.Code)
		}
	}
	// One failure goes through three identity wrappers: it is counted once.
	for i, want := range []int{401, 401, 401, 429} {
		if w := serve(h, tokenRequest("198.51.100.7:1", "sk_test_wrong", "MCH-2")); w.Code != want {
			t.Errorf("failure %d: %d, want %d", i, w.Code, want)
		}
	}
}

func TestWithFailureLimitMisuse(t *testing.T) {
	keys := mustStore(t)
	l, _ := NewMemoryLimiter([]Window{PerMinute(3)})
	for name, opt := range map[string]Option{
		"nil limiter":     WithFailureLimit(nil),
		"nil *limiter":    WithFailureLimit((*MemoryLimiter)(nil)),
		"zero limiter":    WithFailureLimit(&MemoryLimiter{}),
		"zero bucket":     WithFailureLimit(l, Bucket{}),
		"proven identity": WithFailureLimit(l, ByClient()),
	} {
		if _, err := New(Bearer(keys), opt); err == nil || !strings.Contains(err.Error(), "WithFailureLimit") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := NewMemoryLimiter([]Window{PerMinute(3)}, WithFailureLimit(l)); err == nil {
		t.Error("WithFailureLimit accepted by NewMemoryLimiter")
	}
}

// TestFailureLimitFailsClosed: a failing Limiter refuses with 503 before
// the credentials are looked at.
func TestFailureLimitFailsClosed(t *testing.T) {
	keys := mustStore(t, KeySpec{Key: "sk_test_right1", Client: Client{ID: "MCH-1"}})
	var denied []Decision
	g := MustNew(MerchantKey(keys), WithFailureLimit(failingLimiter{}), WithObserver(func(d Decision) {
		if !d.Allowed {
			denied = append(denied, d)
		}
	}))
	if w := serve(g.Authenticate()(okHandler), tokenRequest("192.0.2.1:1", "sk_test_right1", "MCH-1")); w.Code != 503 {
		t.Errorf("failing limiter: %d, want 503", w.Code)
	}
	if len(denied) != 1 || !errors.Is(denied[0].Err, ErrUnavailable) || denied[0].Cause != "limiter_failed" {
		t.Errorf("decisions %+v", denied)
	}
}

// FuzzFailureLimitSparesTheOwner: whatever a guesser outside the owner's
// network sends (its address, the merchant it claims, up to 40 guesses),
// every answer is 401 or 429, and the owner's right key from its own
// network still gets through.
func FuzzFailureLimitSparesTheOwner(f *testing.F) {
	f.Add([]byte{198, 51, 100, 7}, "MCH-1", uint8(10))
	f.Add(netip.MustParseAddr("2001:db8::1").AsSlice(), "MCH-1", uint8(40))
	f.Add([]byte{203, 0, 114, 9}, "mch-1", uint8(5))
	f.Add([]byte{198, 51, 100, 7}, "", uint8(3))
	owner := netip.MustParsePrefix("203.0.113.0/24")
	f.Fuzz(func(t *testing.T, ip []byte, merchant string, n uint8) {
		a, ok := netip.AddrFromSlice(ip)
		if !ok || owner.Contains(a.Unmap()) {
			return
		}
		_, _, h := failureGuard(t, newTestClock())
		from := netip.AddrPortFrom(a, 1).String()
		for i := range int(n % 41) {
			key := "sk_test_wrong" + strconv.Itoa(i)
			if i%7 == 6 {
				key = "sk_test_right1" // a right guess among the wrong ones
			}
			w := serve(h, tokenRequest(from, key, merchant))
			if w.Code != 401 && w.Code != 429 && !(w.Code == 200 && key == "sk_test_right1" && merchant == "MCH-1") {
				t.Fatalf("guess %d from %s for %q: %d", i, from, merchant, w.Code)
			}
		}
		if w := serve(h, tokenRequest("203.0.113.9:1", "sk_test_right1", "MCH-1")); w.Code != 200 {
			t.Fatalf("the owner after guesses from %s for %q: %d", from, merchant, w.Code)
		}
	})
}

// BenchmarkFailureLimit measures Authenticate on a Guard with a limit of
// failed attempts (per IP and per claimed merchant, on a MemoryLimiter)
// against the same Guard without one, for a request with the right key.
func BenchmarkFailureLimit(b *testing.B) {
	keys := mustStore(b, KeySpec{Key: "sk_test_right1", Client: Client{ID: "MCH-1"}})
	l, _ := NewMemoryLimiter([]Window{PerMinute(5), PerHour(20)})
	r := tokenRequest("203.0.113.9:1", "sk_test_right1", "MCH-1")
	for _, c := range []struct {
		name string
		g    *Guard
	}{
		{"floor=no limit", MustNew(MerchantKey(keys))},
		{"failure limit", MustNew(MerchantKey(keys), WithFailureLimit(l, ByHeader("X-Merchant-Id")))},
	} {
		h := c.g.Authenticate()(bare)
		b.Run(c.name, func(b *testing.B) {
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}

// TestFailureBudgetKeys: the budgets' keys have ByAll's form with the IP
// first, so a MemoryLimiter counts them in the client's network's share.
func TestFailureBudgetKeys(t *testing.T) {
	clock := newTestClock()
	g, l, _ := failureGuard(t, clock)
	for _, tc := range []struct {
		remote string
		want   [2]string
	}{
		{"192.0.2.1:1", [2]string{"12:ip:192.0.2.1|6:failed|", "15:ip:192.0.2.0/24|6:failed|26:header:X-Merchant-Id:MCH-1|"}},
		{"[2001:db8:1:2::3]:1", [2]string{"20:ip:2001:db8:1:2::/64|6:failed|", "18:ip:2001:db8:1::/48|6:failed|26:header:X-Merchant-Id:MCH-1|"}},
		{"bogus", [2]string{"10:ip:unknown|6:failed|", "10:ip:unknown|6:failed|26:header:X-Merchant-Id:MCH-1|"}},
	} {
		r := tokenRequest(tc.remote, "k", "MCH-1")
		for i, want := range tc.want {
			got, err := g.failures.budget(g, r, nil, i)
			if err != nil || got != want {
				t.Errorf("%s budget %d: %q, %v; want %q", tc.remote, i, got, err, want)
			}
			if _, ip := l.group(got); !ip && tc.remote != "bogus" {
				t.Errorf("%s budget %d: %q not counted as an IP key", tc.remote, i, got)
			}
		}
	}
}
