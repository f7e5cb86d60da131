package parse

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/apiguard/apiguard/internal/wire"
)

// Prefix parses an address or address range as an operator writes it (see
// sqlstore.ParsePrefix).
func Prefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("%w: %q is not an address range such as 203.0.113.0/24", ErrInvalid, Clip(s))
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%w: %q is not an IP address such as 203.0.113.7", ErrInvalid, Clip(s))
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	return CheckPrefix(p)
}

// CheckPrefix returns p as the store keeps it (IPv4-mapped IPv6 as IPv4),
// or an error matching ErrInvalid if p is invalid or has host bits set.
func CheckPrefix(p netip.Prefix) (netip.Prefix, error) {
	p, err := wire.CheckPrefix(p)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return p, nil
}
