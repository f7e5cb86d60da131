package apiguard

import (
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// A Decision is what one wrapper of a Guard decided for one request, for
// an observer (WithObserver). Every wrapper that runs makes one, whether it
// lets the request through or refuses it; a request that passes a stack of
// four wrappers makes four. A Decision never holds a secret: no key, token,
// signature or body.
//
// The Request and the Client are shared with the request: treat them as
// read only, and do not keep them after the observer returns.
type Decision struct {
	// Guard is the Guard whose wrapper decided. Compare pointers to tell
	// the Guards of a program apart; to name them, give each its own
	// observer.
	Guard *Guard

	// Wrapper names the wrapper that decided, in a stable lower-case form:
	// "authenticate", "require_scope", "rate_limit", "ip_allow",
	// "registered_ip", "request_time", "request_id", "require_https",
	// "require_json" or "check"; "issuer" for the refusals
	// of Sessions.Issuer, and "deny" for those of Guard.Deny.
	Wrapper string

	// Allowed reports that the request was let through.
	Allowed bool

	// Err is the refusal as it is rendered, nil when Allowed. Err.Code is
	// the reason's stable code (such as "invalid_key") and Err.Status its
	// HTTP status; errors.Is matches the reason.
	Err *Error

	// Cause tells apart refusals that look alike to the caller, in a
	// stable lower-case form, or is "" when the package knows no more than
	// Err.Code. It is never shown to the caller: the body is that of the
	// reason alone. The log line of WithLogger carries it too. The causes:
	//
	//	unknown_key          no key in the KeyStore matches (or it was removed)
	//	expired_key          the key matched, past its KeySpec.NotAfter
	//	revoked_key          the key matched, past the time given to
	//	                     MemoryKeyStore.Revoke (a rotated key after its overlap)
	//	wrong_environment    a key of the other environment (WithEnvironment)
	//	unknown_environment  a key of no known environment (no prefix that
	//	                     EnvironmentOf knows, and no Client.Env) on a
	//	                     Guard of one environment (WithEnvironment)
	//	publishable_key      a publishable key on a route for server keys
	//	server_key           a server key where a publishable key is expected
	//	malformed_key        credentials that do not parse, or are sent twice
	//	merchant_mismatch    a key of another merchant than x-merchant-id (MerchantKey)
	//	no_client            a Scheme that returned neither a client nor an error
	//	refresh_token_reused a refresh token that is not its session's latest
	//	store_full           a bounded store at its capacity (ErrStoreFull)
	//	key_store_failed     the KeyStore failed (503)
	//	limiter_failed       the Limiter failed (503)
	//	too_many_failures    a caller out of failed attempts (WithFailureLimit)
	//	replay_store_failed  the ReplayStore failed (503)
	//	session_store_failed the Sessions' SessionStore failed (503)
	Cause string

	// Client is the caller when a Scheme established one before the
	// decision (its ID and KeyID name it), or nil.
	Client *Client

	// Request is the request decided on.
	Request *http.Request

	// KeyStore, Limiter and ReplayStore are the time spent in calls to
	// the KeyStore (through the package's Schemes), the Limiter and the
	// ReplayStore during this decision, measured with the Guard's clock
	// (WithClock). A decision that made no such call has zero.
	KeyStore, Limiter, ReplayStore time.Duration

	// Limit is what the Limiter reported, for the "rate_limit" wrapper
	// when its Limiter answered: when the request is refused, the refusing
	// window (the one with the longest wait), named by its Limit.
	Limit LimitResult
}

// causeError is a refusal's reason with its internal cause.
type causeError struct {
	reason error
	cause  string
}

func (e *causeError) Error() string { return e.reason.Error() + " (" + e.cause + ")" }
func (e *causeError) Unwrap() error { return e.reason }

// The internal causes of refusals, each under its reason.
var (
	errUnknownKey         = &causeError{ErrInvalidKey, "unknown_key"}
	errExpiredKey         = &causeError{ErrInvalidKey, "expired_key"}
	errRevokedKey         = &causeError{ErrInvalidKey, "revoked_key"}
	errWrongEnvironment   = &causeError{ErrInvalidKey, "wrong_environment"}
	errUnknownEnvironment = &causeError{ErrInvalidKey, "unknown_environment"}
	errPublishableKey     = &causeError{ErrInvalidKey, "publishable_key"}
	errServerKey          = &causeError{ErrInvalidKey, "server_key"}
	errMalformedKey       = &causeError{ErrInvalidKey, "malformed_key"}
	errNoClient           = &causeError{ErrInvalidKey, "no_client"}
	errMerchantMismatch   = &causeError{ErrInvalidKey, "merchant_mismatch"}
	errKeyStoreFailed     = &causeError{ErrUnavailable, "key_store_failed"}
	errLimiterFailed      = &causeError{ErrUnavailable, "limiter_failed"}
	errReplayStoreFailed  = &causeError{ErrUnavailable, "replay_store_failed"}
	errSessionStoreFailed = &causeError{ErrUnavailable, "session_store_failed"}
)

// withCause returns reason carrying the cause of err, or reason itself
// when err has none.
func withCause(reason, err error) error {
	if c := causeOf(err); c != "" {
		return &causeError{reason, c}
	}
	return reason
}

// causeOf returns the internal cause of err, or "".
func causeOf(err error) string {
	var ce *causeError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ce):
		return ce.cause
	case errors.Is(err, ErrRefreshTokenReused):
		return "refresh_token_reused"
	case errors.Is(err, ErrStoreFull):
		return "store_full"
	}
	return ""
}

// timing is what a decision measures while an observer watches: the time
// spent in each kind of store, and the limiter's answer.
type timing struct {
	now                            func() time.Time // nil unless observed
	keyStore, limiter, replayStore time.Duration
	limit                          LimitResult
}

// start returns the time a store call begins, or the zero time when no
// observer watches (t is nil: see timed).
func (t *timing) start() time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.now()
}

// keyStoreDone, limiterDone and replayStoreDone add the time from t0 (from
// start) to the time spent in their kind of store; limiterDone keeps the
// Limiter's answer too. They do nothing when t is nil.
func (t *timing) keyStoreDone(t0 time.Time) {
	if t != nil {
		t.keyStore += t.now().Sub(t0)
	}
}

func (t *timing) limiterDone(t0 time.Time, res LimitResult) {
	if t != nil {
		t.limiter += t.now().Sub(t0)
		t.limit = res
	}
}

func (t *timing) replayStoreDone(t0 time.Time) {
	if t != nil {
		t.replayStore += t.now().Sub(t0)
	}
}

// timingFrom returns the timing of the request r, nil when no observer
// watches it.
func timingFrom(r *http.Request) *timing {
	return stateFrom(r.Context()).timed()
}

// timed returns s's timing, nil when s is nil or no observer watches the
// decision under way.
func (s *state) timed() *timing {
	if s == nil {
		return nil
	}
	if t := s.timing(); t != nil && t.now != nil {
		return t
	}
	return nil
}

// fill copies what t measured into d; a nil t measured nothing.
func (t *timing) fill(d *Decision) {
	if t == nil {
		return
	}
	d.KeyStore, d.Limiter, d.ReplayStore, d.Limit = t.keyStore, t.limiter, t.replayStore, t.limit
}

// log writes the log line of a refusal (see WithLogger).
func (g *Guard) log(r *http.Request, e *Error, cause, wrapper string, client *Client) {
	level := slog.LevelInfo
	if e.Status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs,
		slog.Int("status", e.Status), slog.String("code", e.Code),
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.String("wrapper", wrapper))
	if cause != "" {
		attrs = append(attrs, slog.String("cause", cause))
	}
	if ip, _ := g.ClientIP(r); ip.IsValid() {
		attrs = append(attrs, slog.String("ip", ip.String()))
	}
	if client != nil {
		attrs = append(attrs, slog.String("client", client.ID), slog.String("key_id", client.KeyID))
	}
	g.logger.LogAttrs(r.Context(), level, "apiguard: request denied", attrs...)
}

// Fill reports how full a bounded store of this package is: the entries it
// holds and the most it holds (its WithCapacity, or the documented
// default). It knows MemoryKeyStore (keys), CachedKeyStore (cached
// lookups), MemoryLimiter (keys), MemoryReplayStore (live request ids)
// and Sessions (the sessions Login tracks); for anything else, nil
// included, ok is false. It is meant for gauges (otelapiguard's
// RegisterStore) and takes the store's lock for a moment.
func Fill(store any) (entries, capacity int, ok bool) {
	switch s := store.(type) {
	case *MemoryKeyStore:
		if s != nil && s.byID != nil {
			return s.len(), s.max, true
		}
	case *CachedKeyStore:
		if s != nil && s.cache != nil {
			return s.len(), s.capacity, true
		}
	case *MemoryLimiter:
		if s != nil && s.store != nil {
			return s.len(), s.capacity, true
		}
	case *MemoryReplayStore:
		if s != nil && s.max > 0 {
			return s.len(), s.max, true
		}
	case *Sessions:
		if s != nil && s.mem != nil {
			return s.mem.len(), s.mem.max, true
		}
	}
	return 0, 0, false
}
