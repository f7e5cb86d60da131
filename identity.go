package apiguard

import (
	"net/netip"
	"strings"
)

// Environment says whether a key belongs to the sandbox or to live traffic.
// Sandbox and live keys never cross: a Guard set to one refuses keys of the
// other (and keys of no known environment) as invalid.
type Environment uint8

const (
	// AnyEnvironment is the zero value: a key of no known environment, or
	// a Guard that accepts every environment.
	AnyEnvironment Environment = iota
	Sandbox
	Live
)

// String returns "sandbox", "live" or "any".
func (e Environment) String() string {
	switch e {
	case Sandbox:
		return "sandbox"
	case Live:
		return "live"
	}
	return "any"
}

// EnvironmentOf tells a key's environment from its prefix, as payment APIs
// mark them. Only the start of the key counts, and only whole segments
// followed by more of the key:
//
//	sandbox_...  test_...        Sandbox   (MockPay's sandbox_sk_test_...)
//	live_...                     Live      (MockPay's live_sk_...)
//	<tag>_test_...               Sandbox   (88Pay's sk_test_..., pk_test_...)
//	<tag>_live_...               Live      (88Pay's sk_live_...)
//	SB-...                       Sandbox   (Midtrans' SB-Mid-server-...)
//	Mid-...                      Live      (Midtrans' production Mid-server-...)
//
// where <tag> is 1 to 8 lower-case ASCII letters (sk, pk, rk, whsec). The
// first rule that matches decides, so "live_acme_test_x" is Live and
// "sandbox_sk_live_x" Sandbox; anything else, "_test_" further in
// included, is AnyEnvironment.
func EnvironmentOf(key string) Environment {
	switch {
	case strings.HasPrefix(key, "SB-") && len(key) > 3:
		return Sandbox
	case strings.HasPrefix(key, "Mid-") && len(key) > 4:
		return Live
	}
	first, rest, ok := strings.Cut(key, "_")
	if !ok || rest == "" {
		return AnyEnvironment
	}
	if env := envWord(first); env != AnyEnvironment {
		return env
	}
	if !isTag(first) {
		return AnyEnvironment
	}
	second, rest, ok := strings.Cut(rest, "_")
	if !ok || rest == "" || second == "sandbox" {
		return AnyEnvironment
	}
	return envWord(second)
}

// envWord is the environment a prefix segment names.
func envWord(s string) Environment {
	switch s {
	case "sandbox", "test":
		return Sandbox
	case "live":
		return Live
	}
	return AnyEnvironment
}

// isTag reports whether s is a key-kind tag: 1 to 8 lower-case letters.
func isTag(s string) bool {
	if len(s) == 0 || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// Client is the authenticated caller of a request, found in its context with
// ClientFrom. Handlers use ID to keep each client's data apart.
//
// A Client returned by a KeyStore or ClientFrom is shared: treat it as read
// only.
type Client struct {
	ID     string         // the account, merchant or user the key belongs to
	KeyID  string         // the id of the key that matched (never the key)
	Scopes []string       // permissions, such as "payment:create"
	Role   string         // a role, such as "gold" (prices vary by role)
	Env    Environment    // sandbox or live
	IPs    []netip.Prefix // registered addresses; empty means any address

	// Publishable marks a client key that front-end code may expose
	// (Midtrans' client_key, the client-system API's x-app-key) rather than
	// a secret server key (false, the zero value). A publishable key never
	// authorizes a server-key route, and a server key never authorizes a
	// client-key route.
	Publishable bool
}
