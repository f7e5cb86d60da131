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

// IPAllow returns a wrapper that lets through only requests whose client IP
// (see ClientIP) lies in one of prefixes, IPv4 or IPv6, and refuses the
// others with 403 (ErrIPNotWhitelisted; "IP belum di whitelist" in the
// Reseller dialect). A request whose client IP cannot be told is refused.
// IPv4-mapped IPv6 prefixes stand for their IPv4 prefixes. ParsePrefixes
// reads a whitelist written as text.
//
// An empty list, which would refuse every request, or an invalid Prefix
// (the zero value, what a failed parse returns) is a mistake of program
// start: IPAllow panics with an error that names it, as RateLimit does.
//
// The whitelist is global: it needs no identity and runs before any key is
// looked up. A lookup costs a binary search over the merged prefixes,
// whatever their number.
func (g *Guard) IPAllow(prefixes ...netip.Prefix) Middleware {
	if len(prefixes) == 0 {
		panic(errors.New("apiguard: IPAllow needs at least one prefix: an empty whitelist refuses every request"))
	}
	for i, p := range prefixes {
		if err := checkPrefix(p); err != nil {
			panic(fmt.Errorf("apiguard: IPAllow: prefix %d: %w", i, err))
		}
	}
	set := newIPSet(prefixes)
	return g.wrap("ip_allow", false, func(_ http.ResponseWriter, r *http.Request, _ *state) error {
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
	return g.wrap("registered_ip", true, func(_ http.ResponseWriter, r *http.Request, s *state) error {
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
		if err := checkPrefix(p); err != nil {
			return nil, err
		}
		out = append(out, normPrefix(p))
	}
	return out, nil
}

// checkPrefix refuses an invalid prefix, and one with host bits set: an
// operator who writes 203.0.113.7/24 (interface notation) means one host or
// the whole network, and silently widening it to 203.0.113.0/24 would let
// every host of that network in (or, for a trusted proxy, forge
// X-Forwarded-For). The error shows both forms.
func checkPrefix(p netip.Prefix) error {
	if _, err := wire.CheckPrefix(p); err != nil {
		return fmt.Errorf("apiguard: %w", err)
	}
	return nil
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
