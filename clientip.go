package apiguard

import (
	"net/http"
	"net/netip"
	"strings"
)

// ipResolver tells the client IP of a request: the peer address, or, when
// the peer is a trusted proxy, the address the proxies name.
type ipResolver struct {
	trusted ipSet  // proxies whose forwarding headers are believed; empty: none
	header  string // canonical name of the single trusted header; "": X-Forwarded-For
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

// peerIPv4 returns the address of s when s is an IPv4 address in its
// canonical dotted-decimal form with a port ("192.0.2.1:443"), as Go's
// server writes RemoteAddr for an IPv4 peer. parseHost takes such an s to
// the address whose canonical form is that text, so a rate-limit key can
// be made of the text without parsing it and writing it back.
func peerIPv4(s string) (string, bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 || !portOK(s[i:], false) {
		return "", false
	}
	host := s[:i]
	dots, n, digits := 0, 0, 0
	for j := 0; j < len(host); j++ {
		switch c := host[j]; {
		case c == '.':
			if digits == 0 {
				return "", false
			}
			dots, n, digits = dots+1, 0, 0
		case '0' <= c && c <= '9':
			if digits > 0 && n == 0 { // a leading zero
				return "", false
			}
			n, digits = n*10+int(c-'0'), digits+1
			if n > 255 {
				return "", false
			}
		default:
			return "", false
		}
	}
	return host, dots == 3 && digits > 0
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
