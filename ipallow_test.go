package apiguard

import (
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
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
	// Nothing on the list, or an invalid prefix, would refuse everybody:
	// IPAllow refuses to build (TestMisconfigurationFailsAtConstruction).
	mustPanic(t, "IPAllow", func() { g.IPAllow() })
	mustPanic(t, "IPAllow", func() { g.IPAllow(netip.Prefix{}) })
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
	stack := []namedWrapper{
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
	c := anyOrder{
		stack: func() []namedWrapper { return stack },
		requests: []orderReq{
			{"a/ok", "a", req("key-a", "203.0.113.5:1", now)},
			{"a/ok v6", "a", req("key-a", "[2001:db8:a::5]:1", now)},
			{"a/whitelisted, not own", "a", req("key-a", "198.51.100.5:1", now)},
			{"a/neither", "a", req("key-a", "192.0.2.5:1", now)},
			{"a/v6 not own", "a", req("key-a", "[2001:db8:b::5]:1", now)},
			{"a/expired", "a", req("key-a", "203.0.113.5:1", old)},
			{"a/bad time, not own", "a", req("key-a", "198.51.100.5:1", "yesterday")},
			{"a/no time, neither", "a", req("key-a", "192.0.2.5:1", "")},
			{"b/ok", "b", req("key-b", "198.51.100.5:1", now)},
			{"b/not whitelisted", "b", req("key-b", "192.0.2.5:1", now)},
			{"b/unresolvable", "b", req("key-b", "garbage", now)},
			{"none/ok ip", "", req("", "203.0.113.5:1", now)},
			{"none/no time", "", req("", "203.0.113.5:1", "")},
			{"unknown/not whitelisted", "", req("key-x", "192.0.2.5:1", now)},
			{"unknown/expired, neither", "", req("key-x", "192.0.2.5:1", old)},
			{"a/unresolvable, bad format", "a", req("key-a", "garbage", "1.5")},
		},
		headers: []string{"Date"},
		lookups: store,
	}
	checkAnyOrder(t, c)
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
		got := serve(h, c.request(t, rn))
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
		if got := serve(rev, c.request(t, rn)); got.Body.String() != want {
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

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes("203.0.113.7", " 198.51.100.0/24", "2001:db8::1", "2001:db8:1::/48", "::ffff:192.0.2.0/120", "10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	want := "203.0.113.7/32 198.51.100.0/24 2001:db8::1/128 2001:db8:1::/48 192.0.2.0/24 10.0.0.0/8"
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	if strings.Join(s, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(s, " "), want)
	}
	for _, bad := range []string{"", "1.2.3", "1.2.3.4/33", "fe80::1%eth0", "example.com", "1.2.3.4:80"} {
		if _, err := ParsePrefixes(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestIPSetMatchesLinearScan compares the merged, binary-searched set with
// a plain scan of the prefixes, on random prefixes and on the addresses
// around their edges.
func TestIPSetMatchesLinearScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randAddr := func(v6 bool) netip.Addr {
		if v6 {
			var b [16]byte
			for i := range b {
				b[i] = byte(rng.IntN(4)) // few distinct bytes: overlaps are likely
			}
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte{byte(rng.IntN(4)), byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))})
	}
	for round := 0; round < 300; round++ {
		var ps []netip.Prefix
		for range rng.IntN(8) {
			a := randAddr(rng.IntN(2) == 0)
			ps = append(ps, netip.PrefixFrom(a, rng.IntN(a.BitLen()+1)))
		}
		set := newIPSet(ps)
		probe := func(a netip.Addr) {
			if got, want := set.contains(a), prefixesContain(ps, a); got != want {
				t.Fatalf("prefixes %v, %v: set says %v, scan says %v", ps, a, got, want)
			}
		}
		for _, p := range ps {
			p = p.Masked()
			first := p.Addr()
			last := first
			for range (first.BitLen() - p.Bits()) % 200 {
				last = last.Next()
			}
			probe(first)
			probe(first.Prev())
			probe(last)
			probe(last.Next())
		}
		for range 50 {
			probe(randAddr(rng.IntN(2) == 0))
		}
	}
	// The full ranges and the edges of the address spaces.
	set := newIPSet([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")})
	for _, a := range []string{"0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		if !set.contains(netip.MustParseAddr(a)) {
			t.Errorf("%s not in the full set", a)
		}
	}
	if set.contains(netip.Addr{}) || (&ipSet{}).contains(netip.MustParseAddr("1.2.3.4")) {
		t.Error("empty set or invalid address matched")
	}
	v6 := newIPSet([]netip.Prefix{netip.MustParsePrefix("::/0")})
	if v6.contains(netip.MustParseAddr("1.2.3.4")) {
		t.Error("::/0 contains an IPv4 address")
	}
}

// TestPrefixWithHostBitsIsRefused: 203.0.113.7/24 (interface notation) is
// not widened to 203.0.113.0/24 wherever a prefix enters: a whitelist, the
// trusted proxies (whose hosts could then forge X-Forwarded-For) or a key's
// registered IPs. The error shows both forms the operator may have meant.
func TestPrefixWithHostBitsIsRefused(t *testing.T) {
	for _, tt := range []struct{ in, host, network string }{
		{"203.0.113.7/24", "203.0.113.7/32", "203.0.113.0/24"},
		{"10.0.0.1/8", "10.0.0.1/32", "10.0.0.0/8"},
		{"2001:db8::1/32", "2001:db8::1/128", "2001:db8::/32"},
	} {
		p := netip.MustParsePrefix(tt.in)
		checks := map[string]func() error{
			"ParsePrefixes": func() error { _, err := ParsePrefixes(tt.in); return err },
			"WithTrustedProxies": func() error {
				_, err := New(nil, WithTrustedProxies(p))
				return err
			},
			"MemoryKeyStore.Add": func() error {
				keys, _ := NewMemoryKeyStore()
				return keys.Add(KeySpec{Key: "k", Client: Client{ID: "c", IPs: []netip.Prefix{p}}})
			},
			"IPAllow": func() (err error) {
				defer func() { err, _ = recover().(error) }()
				MustNew(nil).IPAllow(p)
				return nil
			},
		}
		for name, check := range checks {
			err := check()
			if err == nil || !strings.Contains(err.Error(), tt.host) || !strings.Contains(err.Error(), tt.network) {
				t.Errorf("%s(%s): %v, want an error naming %s and %s", name, tt.in, err, tt.host, tt.network)
			}
		}
	}
	// The network written as a network is fine everywhere.
	p := netip.MustParsePrefix("203.0.113.0/24")
	if _, err := New(nil, WithTrustedProxies(p)); err != nil {
		t.Error(err)
	}
	MustNew(nil).IPAllow(p)
}
