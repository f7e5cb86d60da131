package apiguard

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/apiguard/apiguard/internal/wire"
)

// ipResolver tells the client IP of a request: the peer address, or, when
// the peer is a trusted proxy, the address the proxies name.
type ipResolver struct {
	trusted ipSet  // proxies whose forwarding headers are believed; empty: none
	header  string // canonical name of the single trusted header; "": X-Forwarded-For
}

var defaultIPResolver = ipResolver{}

// WithTrustedProxies makes the Guard believe the forwarding headers of
// peers whose address lies in one of prefixes (a load balancer, a CDN's
// ranges): for a request from such a peer the client IP is the rightmost
// address of X-Forwarded-For that is not itself a trusted proxy (or the
// header set by WithClientIPHeader), and X-Forwarded-Proto may vouch for
// HTTPS (see RequireHTTPS). IPv4-mapped IPv6 prefixes (::ffff:10.0.0.0/104)
// stand for their IPv4 prefixes. A later call replaces the set.
//
// The default is no trusted proxy: the client IP is the peer address of
// r.RemoteAddr and forwarding headers are ignored, since anyone can send
// them. New fails if a prefix is invalid.
func WithTrustedProxies(prefixes ...netip.Prefix) Option {
	return func(g *Guard) error {
		for _, p := range prefixes {
			if !p.IsValid() {
				return fmt.Errorf("apiguard: WithTrustedProxies: invalid prefix %v", p)
			}
		}
		g.ip.trusted = newIPSet(prefixes)
		return nil
	}
}

// WithClientIPHeader makes trusted proxies name the client in the single
// header name, such as "X-Real-IP", instead of X-Forwarded-For. The header
// must then hold exactly one address (an optional port is ignored); several
// headers of that name, or a value that does not parse, leave the request
// without a client IP. It has no effect on requests from peers that are not
// trusted proxies (see WithTrustedProxies). The default is X-Forwarded-For.
func WithClientIPHeader(name string) Option {
	return func(g *Guard) error {
		if !wire.ValidHeaderName(name) {
			return fmt.Errorf("apiguard: WithClientIPHeader: bad header name %q", name)
		}
		g.ip.header = http.CanonicalHeaderKey(name)
		if g.ip.header == "X-Forwarded-For" {
			g.ip.header = ""
		}
		return nil
	}
}

// ClientIP returns the IP of the client that sent r.
//
// It is the peer address of r.RemoteAddr unless the peer is a trusted proxy
// (WithTrustedProxies). From a trusted proxy it is the rightmost entry of
// X-Forwarded-For (all its headers read as one list) that is not a trusted
// proxy: the entries left of it were written by the client and may be
// forged. With WithClientIPHeader it is the address in that header instead.
// Ports and IPv6 zones are dropped, and an IPv4-mapped IPv6 address is
// returned as its IPv4 address.
//
// When every hop is trusted (a trusted proxy that sends no forwarding
// header, or whose X-Forwarded-For lists only trusted proxies) the request
// came from a trusted host, and the client is the earliest hop: the
// leftmost entry, or the peer itself. An untrusted client cannot make such
// a chain, since the first trusted proxy it reaches names it. So a request
// from a trusted address is the only one for which ClientIP returns a
// trusted address.
//
// It fails closed: it reports false, and IP checks refuse the request, when
// the peer address does not parse, when an entry it must read does not
// parse, or when a single-header proxy sends that header more than once.
func (g *Guard) ClientIP(r *http.Request) (netip.Addr, bool) {
	return g.ip.resolve(r.RemoteAddr, r.Header)
}

func (p *ipResolver) resolve(remoteAddr string, h http.Header) (netip.Addr, bool) {
	peer, ok := parseHost(remoteAddr)
	if !ok {
		return netip.Addr{}, false
	}
	if !p.trusted.contains(peer) {
		return peer, true
	}
	if p.header != "" {
		vs := h[p.header]
		switch len(vs) {
		case 0:
			return peer, true // the trusted host itself
		case 1:
			return parseHost(vs[0])
		}
		return netip.Addr{}, false
	}
	earliest := peer
	vs := h["X-Forwarded-For"]
	for i := len(vs) - 1; i >= 0; i-- {
		v := vs[i]
		for {
			j := strings.LastIndexByte(v, ',')
			a, ok := parseHost(v[j+1:])
			if !ok {
				return netip.Addr{}, false
			}
			if !p.trusted.contains(a) {
				return a, true
			}
			earliest = a
			if j < 0 {
				break
			}
			v = v[:j]
		}
	}
	return earliest, true
}

// viaHTTPS reports whether a trusted proxy says, in X-Forwarded-Proto, that
// the client used HTTPS. The rightmost value counts: it is the one the
// nearest proxy set.
func (p *ipResolver) viaHTTPS(remoteAddr string, h http.Header) bool {
	if p.trusted.empty() {
		return false
	}
	if peer, ok := parseHost(remoteAddr); !ok || !p.trusted.contains(peer) {
		return false
	}
	vs := h["X-Forwarded-Proto"]
	if len(vs) == 0 {
		return false
	}
	v := vs[len(vs)-1]
	v = v[strings.LastIndexByte(v, ',')+1:]
	return strings.EqualFold(trimOWS(v), "https")
}

// parseHost parses one address as peers and proxies write it: an IPv4 or
// IPv6 address, with an optional port ("192.0.2.1:443", "[2001:db8::1]:443")
// and an optional IPv6 zone, surrounded by optional spaces and tabs. The
// port and zone are dropped and an IPv4-mapped address is unmapped.
func parseHost(s string) (netip.Addr, bool) {
	s = trimOWS(s)
	host := s
	switch {
	case s == "":
		return netip.Addr{}, false
	case s[0] == '[':
		end := strings.IndexByte(s, ']')
		if end < 0 || !portOK(s[end+1:], true) {
			return netip.Addr{}, false
		}
		host = s[1:end]
		if strings.IndexByte(host, ':') < 0 { // brackets hold IPv6 only
			return netip.Addr{}, false
		}
	default:
		if i := strings.IndexByte(s, ':'); i >= 0 && strings.IndexByte(s[i+1:], ':') < 0 {
			// One colon: IPv4 with a port.
			if !portOK(s[i:], false) {
				return netip.Addr{}, false
			}
			host = s[:i]
		}
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		// A zone names an interface of the host that saw the address; it
		// says nothing of the client. Only IPv6 has one, and it holds no
		// brackets.
		zone := host[i+1:]
		if zone == "" || strings.ContainsAny(zone, "[]") || strings.IndexByte(host[:i], ':') < 0 {
			return netip.Addr{}, false
		}
		host = host[:i]
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// portOK reports whether s is ":port" with a port of 1 to 5 digits up to
// 65535, or, if empty is true, the empty string.
func portOK(s string, empty bool) bool {
	if s == "" {
		return empty
	}
	if s[0] != ':' || len(s) < 2 || len(s) > 6 {
		return false
	}
	n := 0
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n <= 65535
}

// trimOWS trims the optional white space of HTTP (spaces and tabs).
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isTokenChar reports whether r may appear in an HTTP token (RFC 9110).
func isTokenChar(r rune) bool {
	return r < 0x7f && r > ' ' && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
}

// ParsePrefixes parses addresses and CIDR prefixes, as IP whitelists are
// written: "203.0.113.7" (one address, a /32), "203.0.113.0/24",
// "2001:db8::1" (a /128), "2001:db8::/32". IPv4-mapped IPv6 forms stand for
// their IPv4 equivalents. It fails on the first entry that does not parse,
// naming it.
func ParsePrefixes(list ...string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = trimOWS(s)
		var p netip.Prefix
		var err error
		if strings.IndexByte(s, '/') >= 0 {
			p, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil {
				if a.Zone() != "" {
					err = errors.New("zone not allowed")
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("apiguard: bad address or prefix %q", s)
		}
		out = append(out, normPrefix(p))
	}
	return out, nil
}

// normPrefix masks p and turns an IPv4-mapped IPv6 prefix of 96 bits or
// more into its IPv4 prefix, since client IPs are always unmapped.
func normPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

// prefixesContain reports whether one of ps contains a. Invalid prefixes
// contain nothing.
func prefixesContain(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.IsValid() && normPrefix(p).Contains(a) {
			return true
		}
	}
	return false
}

// ipSet is a set of addresses made of prefixes, kept as sorted disjoint
// ranges so that a lookup is a binary search whatever the number of
// prefixes. The zero value is the empty set.
type ipSet struct {
	v4 []span32
	v6 []span128
}

type span32 struct{ lo, hi uint32 }

type u128 struct{ hi, lo uint64 }

type span128 struct{ lo, hi u128 }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

func (a u128) next() u128 {
	if a.lo == ^uint64(0) {
		return u128{a.hi + 1, 0}
	}
	return u128{a.hi, a.lo + 1}
}

func toU128(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// newIPSet returns the set of the addresses in prefixes. Invalid prefixes
// add nothing.
func newIPSet(prefixes []netip.Prefix) ipSet {
	var s ipSet
	for _, p := range prefixes {
		if !p.IsValid() {
			continue
		}
		p = normPrefix(p)
		host := p.Addr().BitLen() - p.Bits()
		if p.Addr().Is4() {
			b := p.Addr().As4()
			lo := binary.BigEndian.Uint32(b[:])
			s.v4 = append(s.v4, span32{lo, lo | uint32(uint64(1)<<host-1)})
			continue
		}
		lo := toU128(p.Addr())
		hi := lo
		// A shift by 64 gives 0, and 0-1 sets every bit.
		if host >= 64 {
			hi.lo = ^uint64(0)
			hi.hi |= uint64(1)<<(host-64) - 1
		} else {
			hi.lo |= uint64(1)<<host - 1
		}
		s.v6 = append(s.v6, span128{lo, hi})
	}
	// Sort and merge overlapping or adjacent ranges.
	slices.SortFunc(s.v4, func(a, b span32) int { return cmp.Compare(a.lo, b.lo) })
	s.v4 = mergeSpans(s.v4, func(a, b span32) (span32, bool) {
		if b.lo > a.hi && b.lo-1 > a.hi {
			return a, false
		}
		return span32{a.lo, max(a.hi, b.hi)}, true
	})
	slices.SortFunc(s.v6, func(a, b span128) int { return a.lo.cmp(b.lo) })
	s.v6 = mergeSpans(s.v6, func(a, b span128) (span128, bool) {
		if a.hi.cmp(b.lo) < 0 && a.hi.next().cmp(b.lo) < 0 {
			return a, false
		}
		if a.hi.cmp(b.hi) < 0 {
			a.hi = b.hi
		}
		return a, true
	})
	return s
}

// mergeSpans merges neighbours of sorted spans in place where join says so.
func mergeSpans[S any](spans []S, join func(a, b S) (S, bool)) []S {
	if len(spans) == 0 {
		return nil
	}
	out := spans[:1]
	for _, sp := range spans[1:] {
		if m, ok := join(out[len(out)-1], sp); ok {
			out[len(out)-1] = m
		} else {
			out = append(out, sp)
		}
	}
	return slices.Clip(out)
}

func (s *ipSet) empty() bool { return len(s.v4) == 0 && len(s.v6) == 0 }

// contains reports whether a (unmapped, without zone) is in the set.
func (s *ipSet) contains(a netip.Addr) bool {
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		i, _ := slices.BinarySearchFunc(s.v4, x, func(sp span32, x uint32) int { return cmp.Compare(sp.hi, x) })
		return i < len(s.v4) && s.v4[i].lo <= x
	}
	if !a.Is6() {
		return false
	}
	x := toU128(a)
	i, _ := slices.BinarySearchFunc(s.v6, x, func(sp span128, x u128) int { return sp.hi.cmp(x) })
	return i < len(s.v6) && s.v6[i].lo.cmp(x) <= 0
}
