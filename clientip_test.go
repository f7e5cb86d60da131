package apiguard

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// proxies are the trusted proxies of the tests: a private IPv4 range, one
// IPv6 range, and one written as an IPv4-mapped prefix.
var proxies = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("fd00::/8"),
	netip.MustParsePrefix("::ffff:172.16.0.0/108"), // 172.16.0.0/12
}

func ipRequest(remote string, header ...string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

// TestClientIPSpoofing is the table of spoofing cases: what a client may
// forge, and what the resolver makes of it.
func TestClientIPSpoofing(t *testing.T) {
	xff := MustNew(nil, WithTrustedProxies(proxies...))
	realIP := MustNew(nil, WithTrustedProxies(proxies...), WithClientIPHeader("x-real-ip"))
	none := MustNew(nil)
	const fail = "" // no client IP: IP checks refuse the request
	cases := []struct {
		name   string
		g      *Guard
		remote string
		header []string
		want   string
	}{
		// Nobody trusted: the peer, whatever the headers say.
		{"no proxies/peer", none, "203.0.113.9:5000", nil, "203.0.113.9"},
		{"no proxies/xff ignored", none, "203.0.113.9:5000", []string{"X-Forwarded-For", "198.51.100.1"}, "203.0.113.9"},
		{"no proxies/proxy range not trusted", none, "10.0.0.1:5000", []string{"X-Forwarded-For", "198.51.100.1"}, "10.0.0.1"},
		// An untrusted peer sending X-Forwarded-For or X-Real-IP.
		{"untrusted peer/xff", xff, "203.0.113.9:5000", []string{"X-Forwarded-For", "10.0.0.7"}, "203.0.113.9"},
		{"untrusted peer/x-real-ip", realIP, "203.0.113.9:5000", []string{"X-Real-IP", "198.51.100.1"}, "203.0.113.9"},
		// A trusted proxy appends the address it saw on the right.
		{"trusted/one hop", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "203.0.113.9"}, "203.0.113.9"},
		{"trusted/forged leftmost", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "198.51.100.66, 203.0.113.9"}, "203.0.113.9"},
		{"trusted/forged trusted leftmost", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "10.9.9.9, 203.0.113.9"}, "203.0.113.9"},
		{"trusted/two proxies", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "198.51.100.66, 203.0.113.9, 10.0.0.3"}, "203.0.113.9"},
		{"trusted/no spaces", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "198.51.100.66,203.0.113.9,10.0.0.3"}, "203.0.113.9"},
		{"trusted/tabs", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "\t203.0.113.9\t,\t10.0.0.3 "}, "203.0.113.9"},
		{"trusted/several headers", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "198.51.100.66", "X-Forwarded-For", "203.0.113.9"}, "203.0.113.9"},
		{"trusted/several headers, proxy in last", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "198.51.100.66, 203.0.113.9", "X-Forwarded-For", "10.0.0.3"}, "203.0.113.9"},
		{"trusted/garbage leftmost is never read", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "<script>, unknown, 203.0.113.9"}, "203.0.113.9"},
		{"trusted/garbage rightmost", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "203.0.113.9, garbage"}, fail},
		{"trusted/garbage between proxies", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "203.0.113.9, nope, 10.0.0.3"}, fail},
		{"trusted/empty entry", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "203.0.113.9, "}, fail},
		{"trusted/empty header", xff, "10.0.0.2:443", []string{"X-Forwarded-For", ""}, fail},
		{"trusted/unknown", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "unknown"}, fail},
		{"trusted/no header: the trusted host itself", xff, "10.0.0.2:443", nil, "10.0.0.2"},
		{"trusted/all trusted: the earliest hop", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "10.0.0.5, fd00::1"}, "10.0.0.5"},
		{"trusted/bracketed v4", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "[203.0.113.9]:80"}, fail},
		{"trusted/huge port", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "203.0.113.9:65536"}, fail},
		{"trusted/bracket in zone", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "::%]]"}, fail},
		{"trusted/obfuscated (RFC 7239)", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "_hidden"}, fail},
		// Ports, IPv6, zones, IPv4-mapped IPv6.
		{"trusted/v4 port", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "203.0.113.9:4711"}, "203.0.113.9"},
		{"trusted/v6", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "2001:db8::9"}, "2001:db8::9"},
		{"trusted/v6 port", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "[2001:db8::9]:443"}, "2001:db8::9"},
		{"trusted/v6 bracketed, no port", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "[2001:db8::9]"}, "2001:db8::9"},
		{"trusted/v6 zone", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "fe80::9%eth0"}, "fe80::9"},
		{"trusted/v4-mapped entry", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "::ffff:203.0.113.9"}, "203.0.113.9"},
		{"trusted/v4-mapped proxy entry skipped", xff, "10.0.0.2:443", []string{"X-Forwarded-For", "203.0.113.9, ::ffff:10.0.0.3"}, "203.0.113.9"},
		{"trusted/v4-mapped peer", xff, "[::ffff:10.0.0.2]:443", []string{"X-Forwarded-For", "203.0.113.9"}, "203.0.113.9"},
		{"trusted/mapped prefix peer", xff, "172.20.0.1:443", []string{"X-Forwarded-For", "203.0.113.9"}, "203.0.113.9"},
		{"trusted/v6 peer", xff, "[fd00::2]:443", []string{"X-Forwarded-For", "203.0.113.9"}, "203.0.113.9"},
		{"trusted/v6 zoned peer", xff, "[fd00::2%eth0]:443", []string{"X-Forwarded-For", "203.0.113.9"}, "203.0.113.9"},
		// The peer itself.
		{"peer/v6 zone", none, "[fe80::1%en0]:80", nil, "fe80::1"},
		{"peer/v4-mapped", none, "[::ffff:203.0.113.9]:80", nil, "203.0.113.9"},
		{"peer/no port", none, "203.0.113.9", nil, "203.0.113.9"},
		{"peer/garbage", none, "garbage", nil, fail},
		{"peer/empty", none, "", nil, fail},
		{"peer/unix socket", none, "@", nil, fail},
		// A single trusted header.
		{"x-real-ip/trusted", realIP, "10.0.0.2:443", []string{"X-Real-IP", "203.0.113.9"}, "203.0.113.9"},
		{"x-real-ip/with port", realIP, "10.0.0.2:443", []string{"X-Real-IP", "[2001:db8::9]:443"}, "2001:db8::9"},
		{"x-real-ip/xff ignored", realIP, "10.0.0.2:443", []string{"X-Real-IP", "203.0.113.9", "X-Forwarded-For", "198.51.100.1"}, "203.0.113.9"},
		{"x-real-ip/missing: the trusted host itself", realIP, "10.0.0.2:443", []string{"X-Forwarded-For", "198.51.100.1"}, "10.0.0.2"},
		{"x-real-ip/twice", realIP, "10.0.0.2:443", []string{"X-Real-IP", "203.0.113.9", "X-Real-IP", "198.51.100.1"}, fail},
		{"x-real-ip/list", realIP, "10.0.0.2:443", []string{"X-Real-IP", "198.51.100.1, 203.0.113.9"}, fail},
		{"x-real-ip/trusted value", realIP, "10.0.0.2:443", []string{"X-Real-IP", "10.0.0.9"}, "10.0.0.9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.g.ClientIP(ipRequest(tc.remote, tc.header...))
			if tc.want == fail {
				if ok {
					t.Errorf("ClientIP = %v, want none", got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tc.want) {
				t.Errorf("ClientIP = %v %v, want %s", got, ok, tc.want)
			}
		})
	}
}

// TestUnresolvedIPRefused: an address that cannot be told fails every IP
// check, even a whitelist of everything.
func TestUnresolvedIPRefused(t *testing.T) {
	g := MustNew(nil, WithDialect(Reseller()), WithTrustedProxies(proxies...))
	all := g.IPAllow(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))
	for name, r := range map[string]*http.Request{
		"garbage peer":   ipRequest("nonsense"),
		"proxy, garbage": ipRequest("10.0.0.2:1", "X-Forwarded-For", "1.2.3.4, x"),
	} {
		t.Run(name, func(t *testing.T) {
			wantBody(t, serve(all(okHandler), r), 403, `{"status":"error","message":"IP belum di whitelist","code":403}`)
		})
	}
	if w := serve(all(okHandler), ipRequest("10.0.0.2:1", "X-Forwarded-For", "1.2.3.4")); w.Code != 200 {
		t.Errorf("resolved address refused: %d", w.Code)
	}
}

func TestClientIPConfig(t *testing.T) {
	for name, opt := range map[string]Option{
		"zero prefix":       WithTrustedProxies(netip.Prefix{}),
		"empty header":      WithClientIPHeader(""),
		"header with space": WithClientIPHeader("X Real IP"),
		"header with colon": WithClientIPHeader("X-Real-IP:"),
	} {
		if _, err := New(nil, opt); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// X-Forwarded-For named as the single header is the default walk.
	g := MustNew(nil, WithTrustedProxies(proxies...), WithClientIPHeader("x-forwarded-for"))
	if ip, ok := g.ClientIP(ipRequest("10.0.0.1:1", "X-Forwarded-For", "1.1.1.1, 2.2.2.2")); !ok || ip.String() != "2.2.2.2" {
		t.Errorf("got %v %v", ip, ok)
	}
	// A later WithTrustedProxies replaces the set.
	g = MustNew(nil, WithTrustedProxies(proxies...), WithTrustedProxies(netip.MustParsePrefix("192.0.2.0/24")))
	if ip, _ := g.ClientIP(ipRequest("10.0.0.1:1", "X-Forwarded-For", "1.1.1.1")); ip.String() != "10.0.0.1" {
		t.Errorf("old proxies still trusted: %v", ip)
	}
}

// refResolve is a plain restatement of ClientIP, with splits and the
// standard parsers, to fuzz the zero-allocation one against.
func refResolve(trusted []netip.Prefix, header, remote string, h http.Header) (netip.Addr, bool) {
	parse := func(s string) (netip.Addr, bool) {
		s = strings.Trim(s, " \t")
		// Brackets only enclose an IPv6 address; a zone holds none.
		if strings.ContainsAny(s, "[]") && (s[0] != '[' || strings.Count(s, "[") > 1 || strings.Count(s, "]") > 1) {
			return netip.Addr{}, false
		}
		if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
			s = s[1 : len(s)-1]
			if !strings.Contains(s, ":") {
				return netip.Addr{}, false
			}
		} else if ap, err := netip.ParseAddrPort(s); err == nil {
			_, port, _ := strings.Cut(s[strings.LastIndex(s, "]")+1:], ":")
			if len(port) > 5 {
				return netip.Addr{}, false
			}
			return ap.Addr().WithZone("").Unmap(), true
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, false
		}
		return a.WithZone("").Unmap(), true
	}
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if normPrefix(p).Contains(a) {
				return true
			}
		}
		return false
	}
	peer, ok := parse(remote)
	if !ok || !isTrusted(peer) {
		return peer, ok
	}
	var entries []string
	if header != "" {
		switch len(h[header]) {
		case 0:
			return peer, true
		case 1:
			return parse(h[header][0])
		}
		return netip.Addr{}, false
	} else {
		for _, v := range h["X-Forwarded-For"] {
			entries = append(entries, strings.Split(v, ",")...)
		}
	}
	earliest := peer
	for i := len(entries) - 1; i >= 0; i-- {
		a, ok := parse(entries[i])
		if !ok {
			return netip.Addr{}, false
		}
		if !isTrusted(a) {
			return a, true
		}
		earliest = a
	}
	return earliest, true
}

// FuzzClientIP checks the resolver against refResolve and its invariants:
// no panic; an address it returns is valid, has no zone, is not
// IPv4-mapped, and is never a trusted proxy when the peer is one.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.2:443", "198.51.100.66, 203.0.113.9", "10.0.0.3", "203.0.113.9")
	f.Add("[fd00::2%eth0]:443", "[2001:db8::9]:443", "", "[::ffff:1.2.3.4]:80")
	f.Add("203.0.113.9:5000", "1.2.3.4", "", "")
	f.Add("[::ffff:10.0.0.2]:1", "fe80::1%eth0, ::ffff:172.16.0.1", ",", "1.2.3.4:65535")
	f.Add("10.0.0.2", "\t1.2.3.4:0080 ", "garbage", "[1.2.3.4]")
	resolvers := []ipResolver{
		{trusted: newIPSet(proxies)},
		{trusted: newIPSet(proxies), header: "X-Real-Ip"},
		{},
	}
	f.Fuzz(func(t *testing.T, remote, xff1, xff2, real string) {
		// peerIPv4, the rate-limit key's shortcut, agrees with parseHost.
		if host, ok := peerIPv4(remote); ok {
			if a, ok := parseHost(remote); !ok || !a.Is4() || a.String() != host {
				t.Fatalf("peerIPv4(%q) = %q, but parseHost gives %v %v", remote, host, a, ok)
			}
		}
		h := http.Header{}
		if xff1 != "" {
			h["X-Forwarded-For"] = append(h["X-Forwarded-For"], xff1)
		}
		if xff2 != "" {
			h["X-Forwarded-For"] = append(h["X-Forwarded-For"], xff2)
		}
		if real != "" {
			h["X-Real-Ip"] = []string{real}
		}
		for i, p := range resolvers {
			got, ok := p.resolve(remote, h)
			var trusted []netip.Prefix
			if !p.trusted.empty() {
				trusted = proxies
			}
			want, wantOK := refResolve(trusted, p.header, remote, h)
			if ok != wantOK || got != want {
				t.Fatalf("resolver %d: got %v %v, reference %v %v", i, got, ok, want, wantOK)
			}
			if !ok {
				continue
			}
			if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
				t.Fatalf("resolver %d: bad address %v", i, got)
			}
			// A trusted address comes back only from a chain of trusted
			// hops: an untrusted client never passes for a trusted one.
			if peer, _ := parseHost(remote); p.trusted.contains(peer) && p.trusted.contains(got) && p.header == "" {
				for _, v := range h["X-Forwarded-For"] {
					for _, e := range strings.Split(v, ",") {
						if a, ok := parseHost(e); ok && !p.trusted.contains(a) {
							t.Fatalf("resolver %d: returned trusted %v past untrusted %v", i, got, a)
						}
					}
				}
			}
		}
	})
}

// discard is a ResponseWriter that keeps nothing, so that benchmarks
// measure the wrappers and not a recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

var sinkAddr netip.Addr

// BenchmarkClientIP measures resolution; run it with BenchmarkIPAllow to
// compare with a bare handler.
func BenchmarkClientIP(b *testing.B) {
	cases := []struct {
		name string
		g    *Guard
		r    *http.Request
	}{
		{"peer", MustNew(nil), ipRequest("203.0.113.9:5000")},
		{"peer/v6", MustNew(nil), ipRequest("[2001:db8::9%eth0]:5000")},
		{"xff/3 hops", MustNew(nil, WithTrustedProxies(proxies...)),
			ipRequest("10.0.0.2:443", "X-Forwarded-For", "198.51.100.66, 203.0.113.9, 10.0.0.3, fd00::7")},
		{"x-real-ip", MustNew(nil, WithTrustedProxies(proxies...), WithClientIPHeader("X-Real-IP")),
			ipRequest("10.0.0.2:443", "X-Real-IP", "203.0.113.9")},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkAddr, _ = c.g.ClientIP(c.r)
			}
		})
	}
}

// TestPeerIPv4 pins the shortcut of the rate-limit key: only an IPv4
// address in canonical form with a port passes.
func TestPeerIPv4(t *testing.T) {
	for s, want := range map[string]string{
		"192.0.2.1:443":         "192.0.2.1",
		"0.0.0.0:1":             "0.0.0.0",
		"255.255.255.255:65535": "255.255.255.255",
		"10.20.30.40:0":         "10.20.30.40",
	} {
		if got, ok := peerIPv4(s); !ok || got != want {
			t.Errorf("peerIPv4(%q) = %q, %v; want %q", s, got, ok, want)
		}
	}
	for _, s := range []string{
		"01.2.3.4:1", "1.2.3.00:1", "1.2.3:1", "1.2.3.4.5:1", "256.1.1.1:1", "1.2.3.4",
		"1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:123456", " 1.2.3.4:1", "1.2.3.4 :1",
		"[::1]:1", "::1", "1..3.4:1", ".1.2.3:1", "1.2.3.:1", "1.2.3.4%eth0:1", "", ":1",
	} {
		if got, ok := peerIPv4(s); ok {
			t.Errorf("peerIPv4(%q) = %q, want refused", s, got)
		}
	}
}
