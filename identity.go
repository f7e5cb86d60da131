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
// mark them: "sandbox_", "sk_test_", "pk_test_", "SB-" or a "_test_" part
// mean Sandbox; "live_", "sk_live_", "pk_live_" or a "_live_" part mean
// Live; anything else is AnyEnvironment.
func EnvironmentOf(key string) Environment {
	switch {
	case strings.HasPrefix(key, "sandbox_"), strings.HasPrefix(key, "SB-"), strings.HasPrefix(key, "sk_test_"),
		strings.HasPrefix(key, "pk_test_"), strings.Contains(key, "_test_"):
		return Sandbox
	case strings.HasPrefix(key, "live_"), strings.HasPrefix(key, "sk_live_"), strings.HasPrefix(key, "pk_live_"),
		strings.Contains(key, "_live_"):
		return Live
	}
	return AnyEnvironment
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
