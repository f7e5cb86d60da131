package apiguard

import (
	"net/http"
	"net/netip"
)

// IPAllow returns a wrapper that lets through only requests whose client IP
// (see ClientIP) lies in one of prefixes, IPv4 or IPv6, and refuses the
// others with 403 (ErrIPNotWhitelisted; "IP belum di whitelist" in the
// Reseller dialect). A request whose client IP cannot be told is refused.
// IPv4-mapped IPv6 prefixes stand for their IPv4 prefixes; an invalid
// Prefix (the zero value) matches nothing, and so does an empty list, which
// refuses every request. ParsePrefixes reads a whitelist written as text.
//
// The whitelist is global: it needs no identity and runs before any key is
// looked up. A lookup costs a binary search over the merged prefixes,
// whatever their number.
func (g *Guard) IPAllow(prefixes ...netip.Prefix) Middleware {
	set := newIPSet(prefixes)
	return g.gate(func(_ http.ResponseWriter, r *http.Request) error {
		if ip, ok := g.ClientIP(r); ok && set.contains(ip) {
			return nil
		}
		return ErrIPNotWhitelisted
	})
}

// RegisteredIP returns a wrapper that binds keys to addresses: it refuses,
// with 403 (ErrIPNotRegistered; "IP address not authorized" in the Reseller
// dialect), a caller whose client IP (see ClientIP) is not in the IPs
// registered with its key (Client.IPs). A client with no registered IPs may
// call from any address; a client with some is refused when its client IP
// cannot be told.
//
// It needs the caller's identity and resolves it as RequireScope does, so it
// works outside or inside Authenticate: where g cannot establish an
// identity it refuses with 401 before looking at the address.
func (g *Guard) RegisteredIP() Middleware {
	return g.wrap(func(s *state, r *http.Request) error {
		c, err := g.identify(s, r)
		if err != nil {
			return err
		}
		if len(c.IPs) == 0 {
			return nil
		}
		if ip, ok := g.ClientIP(r); ok && prefixesContain(c.IPs, ip) {
			return nil
		}
		return ErrIPNotRegistered
	})
}
