package apiguard

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"
)

// An Option configures a Guard.
type Option func(*Guard) error

// WithDialect sets how rejections are rendered. The default is Problem().
func WithDialect(d Dialect) Option {
	return func(g *Guard) error {
		if d == nil {
			return errors.New("apiguard: WithDialect needs a Dialect")
		}
		g.dialect = d
		return nil
	}
}

// WithClock sets the clock used for request times, expiry and rate limits.
// The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(g *Guard) error {
		if now == nil {
			return errors.New("apiguard: WithClock needs a clock")
		}
		g.now = now
		return nil
	}
}

// WithEnvironment makes the Guard accept only clients of env: a sandbox
// Guard refuses live keys, and keys of no known environment, with
// ErrInvalidKey, and the reverse. The default, AnyEnvironment, accepts all.
func WithEnvironment(env Environment) Option {
	return func(g *Guard) error {
		if env > Live {
			return fmt.Errorf("apiguard: unknown environment %d", env)
		}
		g.env = env
		return nil
	}
}

// WithChallenge sets the WWW-Authenticate value sent with every 401. The
// default is the Scheme's Challenge, if it has one.
func WithChallenge(challenge string) Option {
	return func(g *Guard) error { g.challenge = challenge; return nil }
}

// Denial describes one refused request, for WithDenyHook.
type Denial struct {
	Err     *Error        // the rejection; errors.Is matches its reason
	Client  *Client       // the authenticated client, nil if none was
	IP      netip.Addr    // the client IP; invalid if it could not be told
	Request *http.Request // the refused request; do not keep it
}

// WithDenyHook calls f for every request the Guard refuses, before the
// response is written. f must be quick and safe for concurrent use. The
// default is no hook.
func WithDenyHook(f func(Denial)) Option {
	return func(g *Guard) error { g.onDeny = f; return nil }
}

// WithLogger logs every refusal to l at level Info with the code, status,
// client id, key id, client IP, method and path (never a credential, the
// query or the body). The default is no logging.
func WithLogger(l *slog.Logger) Option {
	return func(g *Guard) error { g.logger = l; return nil }
}
