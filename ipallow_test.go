package apiguard

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

const (
	notWhitelisted = `{"status":"error","message":"IP belum di whitelist","code":403}`
	notRegistered  = `{"status":"error","message":"IP address not authorized","code":403}`
)

func TestIPAllow(t *testing.T) {
	allow, err := ParsePrefixes("203.0.113.7", "198.51.100.0/24", "2001:db8:1::/48", "::ffff:192.0.2.0/120")
	if err != nil {
		t.Fatal(err)
	}
	g := MustNew(nil, WithDialect(Reseller()), WithTrustedProxies(proxies...))
	h := g.IPAllow(allow...)(okHandler)
	for _, tc := range []struct {
		name   string
		r      *http.Request
		accept bool
	}{
		{"v4 single", ipRequest("203.0.113.7:1"), true},
		{"v4 neighbour", ipRequest("203.0.113.8:1"), false},
		{"v4 range", ipRequest("198.51.100.200:1"), true},
		{"v4 outside", ipRequest("198.51.101.1:1"), false},
		{"v4 via mapped prefix", ipRequest("192.0.2.44:1"), true},
		{"v4-mapped peer", ipRequest("[::ffff:198.51.100.1]:1"), true},
		{"v6 range", ipRequest("[2001:db8:1:ffff::1]:1"), true},
		{"v6 outside", ipRequest("[2001:db8:2::1]:1"), false},
		{"v6 zone", ipRequest("[2001:db8:1::1%eth0]:1"), true},
		{"via proxy", ipRequest("10.0.0.2:1", "X-Forwarded-For", "203.0.113.7"), true},
		{"via proxy, forged leftmost", ipRequest("10.0.0.2:1", "X-Forwarded-For", "203.0.113.7, 192.0.2.1"), true},
		{"via proxy, forged leftmost outside", ipRequest("10.0.0.2:1", "X-Forwarded-For", "203.0.113.7, 8.8.8.8"), false},
		{"untrusted peer forging xff", ipRequest("8.8.8.8:1", "X-Forwarded-For", "203.0.113.7"), false},
		{"proxy itself", ipRequest("10.0.0.2:1"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, tc.r)
			if tc.accept {
				if w.Code != 200 {
					t.Errorf("status %d, want 200", w.Code)
				}
				return
			}
			wantBody(t, w, 403, notWhitelisted)
		})
	}
	// Nothing on the list, or only an invalid prefix: nobody.
	for _, mw := range []Middleware{g.IPAllow(), g.IPAllow(netip.Prefix{})} {
		wantBody(t, serve(mw(okHandler), ipRequest("203.0.113.7:1")), 403, notWhitelisted)
	}
}

func TestRegisteredIP(t *testing.T) {
	store := mustStore(t,
		KeySpec{Key: "key-a", Client: Client{ID: "a", IPs: []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32"), netip.MustParsePrefix("2001:db8:a::/48")}}},
		KeySpec{Key: "key-m", Client: Client{ID: "m", IPs: []netip.Prefix{netip.MustParsePrefix("::ffff:198.51.100.0/120")}}},
		KeySpec{Key: "key-any", Client: Client{ID: "any"}},
	)
	g := MustNew(Bearer(store), WithDialect(Reseller()))
	req := func(key, remote string) *http.Request {
		r := ipRequest(remote)
		if key != "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		return r
	}
	for _, tc := range []struct {
		name   string
		r      *http.Request
		status int
		body   string
	}{
		{"registered v4", req("key-a", "203.0.113.7:1"), 200, ""},
		{"registered v6", req("key-a", "[2001:db8:a::99]:1"), 200, ""},
		{"other v4", req("key-a", "203.0.113.8:1"), 403, notRegistered},
		{"other v6", req("key-a", "[2001:db8:b::1]:1"), 403, notRegistered},
		{"mapped registration", req("key-m", "198.51.100.9:1"), 200, ""},
		{"unresolvable address", req("key-a", "garbage"), 403, notRegistered},
		{"no registration: any address", req("key-any", "192.0.2.1:1"), 200, ""},
		{"no registration, unresolvable", req("key-any", "garbage"), 200, ""},
		{"no key", req("", "203.0.113.7:1"), 401, `{"status":"error","message":"Unauthorized","code":401}`},
		{"unknown key", req("key-x", "203.0.113.7:1"), 401, `{"status":"error","message":"Invalid API key","code":401}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(g.RegisteredIP()(okHandler), tc.r)
			if tc.status == 200 {
				if w.Code != 200 {
					t.Errorf("status %d (%s), want 200", w.Code, w.Body)
				}
				return
			}
			wantBody(t, w, tc.status, tc.body)
		})
	}
	// Without a Scheme the check has no identity and fails closed.
	r := req("key-a", "203.0.113.7:1")
	wantBody(t, serve(MustNew(nil, WithDialect(Reseller())).RegisteredIP()(okHandler), r), 401,
		`{"status":"error","message":"Unauthorized","code":401}`)
}

// TestIPStackInAnyOrder extends TestStackInAnyOrder to the address and
// time checks: for every order of Authenticate, RegisteredIP, IPAllow and
// RequestTime, the same requests are accepted, the handler sees the same
// client, a refusal has the status, body and Date header of the first check
// that fails in that order, and the key is looked up at most once.
func TestIPStackInAnyOrder(t *testing.T) {
	clock := newTestClock()
	store := &countingStore{KeyStore: mustStore(t,
		KeySpec{Key: "key-a", Client: Client{ID: "a", IPs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:a::/48")}}},
		KeySpec{Key: "key-b", Client: Client{ID: "b"}},
	)}
	g := MustNew(Bearer(store), WithDialect(Reseller()), WithClock(clock.Now))
	allow, _ := ParsePrefixes("203.0.113.0/24", "198.51.100.0/24", "2001:db8::/32")
	type named struct {
		name string
		mw   Middleware
	}
	stack := []named{
		{"auth", g.Authenticate()},
		{"registered", g.RegisteredIP()},
		{"allow", g.IPAllow(allow...)},
		{"time", g.RequestTime(0)},
	}
	now := strconv.FormatInt(clock.Now().Unix(), 10)
	old := strconv.FormatInt(clock.Now().Add(-time.Hour).Unix(), 10)
	req := func(key, remote, when string) func() *http.Request {
		return func() *http.Request {
			r := ipRequest(remote)
			if key != "" {
				r.Header.Set("Authorization", "Bearer "+key)
			}
			if when != "" {
				r.Header.Set("X-Request-Time", when)
			}
			return r
		}
	}
	requests := map[string]func() *http.Request{
		"a/ok":                       req("key-a", "203.0.113.5:1", now),
		"a/ok v6":                    req("key-a", "[2001:db8:a::5]:1", now),
		"a/whitelisted, not own":     req("key-a", "198.51.100.5:1", now),
		"a/neither":                  req("key-a", "192.0.2.5:1", now),
		"a/v6 not own":               req("key-a", "[2001:db8:b::5]:1", now),
		"a/expired":                  req("key-a", "203.0.113.5:1", old),
		"a/bad time, not own":        req("key-a", "198.51.100.5:1", "yesterday"),
		"a/no time, neither":         req("key-a", "192.0.2.5:1", ""),
		"b/ok":                       req("key-b", "198.51.100.5:1", now),
		"b/not whitelisted":          req("key-b", "192.0.2.5:1", now),
		"b/unresolvable":             req("key-b", "garbage", now),
		"none/ok ip":                 req("", "203.0.113.5:1", now),
		"none/no time":               req("", "203.0.113.5:1", ""),
		"unknown/not whitelisted":    req("key-x", "192.0.2.5:1", now),
		"unknown/expired, neither":   req("key-x", "192.0.2.5:1", old),
		"a/unresolvable, bad format": req("key-a", "garbage", "1.5"),
	}
	alone := map[string]map[string]*httptest.ResponseRecorder{}
	for _, w := range stack {
		alone[w.name] = map[string]*httptest.ResponseRecorder{}
		for rn, mk := range requests {
			alone[w.name][rn] = serve(w.mw(okHandler), mk())
		}
	}
	orders := 0
	for _, p := range permutations(len(stack)) {
		orders++
		var mws []Middleware
		var names []string
		for _, i := range p {
			mws = append(mws, stack[i].mw)
			names = append(names, stack[i].name)
		}
		h := Chain(mws...)(okHandler)
		for rn, mk := range requests {
			store.n.Store(0)
			got := serve(h, mk())
			if n := store.n.Load(); n > 1 {
				t.Errorf("%v %s: %d key lookups, want at most 1", names, rn, n)
			}
			want := httptest.NewRecorder()
			want.Body.WriteString("ok")
			for _, name := range names {
				if a := alone[name][rn]; a.Code != 200 {
					want = a
					break
				}
			}
			wantClient := ""
			if want.Code == 200 {
				wantClient = rn[:1]
			}
			if got.Code != want.Code || got.Body.String() != want.Body.String() ||
				got.Header().Get("Date") != want.Header().Get("Date") || got.Header().Get("X-Client") != wantClient {
				t.Errorf("%v %s: got %d %s date %q client %q, want %d %s date %q client %q", names, rn,
					got.Code, got.Body, got.Header().Get("Date"), got.Header().Get("X-Client"),
					want.Code, want.Body, want.Header().Get("Date"), wantClient)
			}
		}
	}
	if orders != 24 {
		t.Fatalf("%d orders, want 24", orders)
	}
	// The verdicts themselves, in one order, so the test cannot pass
	// vacuously; and the orders in which a request has two answers.
	h := Chain(stack[0].mw, stack[1].mw, stack[2].mw, stack[3].mw)(okHandler)
	for rn, want := range map[string]string{
		"a/ok":                    "200",
		"a/ok v6":                 "200",
		"b/ok":                    "200",
		"a/whitelisted, not own":  notRegistered,
		"a/neither":               notRegistered,
		"a/v6 not own":            notRegistered,
		"b/not whitelisted":       notWhitelisted,
		"b/unresolvable":          notWhitelisted,
		"a/expired":               `{"status":"error","message":"Request expired","code":400}`,
		"a/no time, neither":      notRegistered,
		"none/no time":            `{"status":"error","message":"Unauthorized","code":401}`,
		"unknown/not whitelisted": `{"status":"error","message":"Invalid API key","code":401}`,
	} {
		got := serve(h, requests[rn]())
		if want == "200" {
			if got.Code != 200 {
				t.Errorf("%s: %d %s", rn, got.Code, got.Body)
			}
			continue
		}
		if got.Body.String() != want {
			t.Errorf("%s: %s, want %s", rn, got.Body, want)
		}
	}
	rev := Chain(stack[3].mw, stack[2].mw, stack[1].mw, stack[0].mw)(okHandler)
	for rn, want := range map[string]string{
		"a/neither":                `{"status":"error","message":"IP belum di whitelist","code":403}`,
		"a/no time, neither":       `{"status":"error","message":"Unauthorized: Missing required headers","code":401}`,
		"unknown/expired, neither": `{"status":"error","message":"Request expired","code":400}`,
	} {
		if got := serve(rev, requests[rn]()); got.Body.String() != want {
			t.Errorf("reversed %s: %s, want %s", rn, got.Body, want)
		}
	}
}

// bare is the baseline of the benchmarks: a handler that does nothing.
var bare = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

// BenchmarkIPAllow compares the whitelist and the registered-IP check with
// a bare handler, on a request from a trusted proxy with a three-hop
// X-Forwarded-For.
func BenchmarkIPAllow(b *testing.B) {
	store := mustStore(b, KeySpec{Key: "key-a", Client: Client{ID: "a", IPs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}})
	g := MustNew(Bearer(store), WithTrustedProxies(proxies...))
	small, _ := ParsePrefixes("198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
	var large []netip.Prefix
	for i := range 1000 {
		large = append(large, netip.PrefixFrom(netip.AddrFrom4([4]byte{100, byte(i >> 8), byte(i), 0}), 24))
	}
	large = append(large, small...)
	r := ipRequest("10.0.0.2:443", "X-Forwarded-For", "198.51.100.66, 203.0.113.9, 10.0.0.3")
	r.Header.Set("Authorization", "Bearer key-a")
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", bare},
		{"allow/3 prefixes", g.IPAllow(small...)(bare)},
		{"allow/1003 prefixes", g.IPAllow(large...)(bare)},
		{"authenticate", g.Authenticate()(bare)},
		{"authenticate+registered", Chain(g.Authenticate(), g.RegisteredIP())(bare)},
	} {
		b.Run(c.name, func(b *testing.B) {
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(w, r)
			}
		})
	}
}
