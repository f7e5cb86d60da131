package sqlstore

import (
	"net/netip"

	"github.com/apiguard/apiguard/sqlstore/internal/parse"
)

// ParsePrefix parses an address or address range as an operator writes
// it: "203.0.113.7" (one address, 203.0.113.7/32), "203.0.113.0/24",
// "2001:db8::/32". IPv4-mapped IPv6 forms ("::ffff:203.0.113.7") become
// IPv4. It refuses zones and prefixes with host bits set, such as
// "203.0.113.7/24", with an error that shows both forms meant by it:
// "203.0.113.7/32" and "203.0.113.0/24". The error matches ErrInvalid.
func ParsePrefix(s string) (netip.Prefix, error) { return parse.Prefix(s) }

// CheckPrefix returns p as the store keeps it (IPv4-mapped IPv6 as IPv4),
// or an error matching ErrInvalid if p is invalid or has host bits set.
func CheckPrefix(p netip.Prefix) (netip.Prefix, error) { return parse.CheckPrefix(p) }
