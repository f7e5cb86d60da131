package apiguard

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Reasons a request is refused. Every rejection apiguard writes is an *Error
// whose Unwrap yields one of these, so callers (a denial hook, a test) match
// reasons with errors.Is and never compare strings:
//
//	if errors.Is(err, apiguard.ErrInvalidKey) { ... }
var (
	// ErrMissingKey: no credentials were presented (401).
	ErrMissingKey error = &reason{"apiguard: missing credentials", http.StatusUnauthorized, CodeMissingKey, Message{"Kunci API tidak ada", "Missing API key"}}
	// ErrInvalidKey: credentials were presented but no live key matches them,
	// or they are malformed, ambiguous, of the wrong kind or environment (401).
	ErrInvalidKey error = &reason{"apiguard: invalid credentials", http.StatusUnauthorized, CodeInvalidKey, Message{"Kunci API tidak valid", "Invalid API key"}}
	// ErrForbidden: the client lacks a scope the route requires (403).
	ErrForbidden error = &reason{"apiguard: insufficient permissions", http.StatusForbidden, CodeForbidden, Message{"Izin tidak cukup untuk operasi ini", "Insufficient permissions for this operation"}}
	// ErrIdentityConflict: two guards in one stack authenticated the request
	// as two different clients (401).
	ErrIdentityConflict error = &reason{"apiguard: conflicting identities", http.StatusUnauthorized, CodeIdentityConflict, Message{"Identitas klien bertentangan", "Conflicting client identities"}}
	// ErrHashMismatch: a hash signature does not match (401).
	ErrHashMismatch error = &reason{"apiguard: hash mismatch", http.StatusUnauthorized, CodeHashMismatch, Message{"Kombinasi hash tidak valid", "Invalid hash combination"}}
	// ErrMissingHeaders: a header the scheme requires is absent (401).
	ErrMissingHeaders error = &reason{"apiguard: missing required headers", http.StatusUnauthorized, CodeMissingHeaders, Message{"Header wajib tidak ada", "Missing required headers"}}
	// ErrInvalidAuthorization: the Authorization header of a hash signature
	// is sent more than once or is not of the form `Bearer <digest>` (401).
	ErrInvalidAuthorization error = &reason{"apiguard: invalid Authorization header", http.StatusUnauthorized, CodeInvalidAuthorization, Message{"Header Authorization tidak valid", "Invalid Authorization header"}}
	// ErrInvalidField: a field a signature covers is absent or empty (when
	// its Field names no error of its own), given more than once, or holds
	// control characters or invalid UTF-8 (400).
	ErrInvalidField error = &reason{"apiguard: missing or invalid signed field", http.StatusBadRequest, CodeInvalidField, Message{"Field wajib tidak ada atau tidak valid", "Missing or invalid field"}}
	// ErrIPNotWhitelisted: the client IP is not on the whitelist (403).
	ErrIPNotWhitelisted error = &reason{"apiguard: IP not whitelisted", http.StatusForbidden, CodeIPNotWhitelisted, Message{"IP belum di whitelist", "IP address not whitelisted"}}
	// ErrIPNotRegistered: the client IP is not one registered for the key (403).
	ErrIPNotRegistered error = &reason{"apiguard: IP not registered for key", http.StatusForbidden, CodeIPNotRegistered, Message{"Alamat IP tidak diizinkan", "IP address not authorized"}}
	// ErrHTTPSRequired: the request did not arrive over HTTPS (403).
	ErrHTTPSRequired error = &reason{"apiguard: HTTPS required", http.StatusForbidden, CodeHTTPSRequired, Message{"HTTPS wajib digunakan", "HTTPS required"}}
	// ErrUnsupportedMediaType: the request body is not JSON (415).
	ErrUnsupportedMediaType error = &reason{"apiguard: unsupported media type", http.StatusUnsupportedMediaType, CodeUnsupportedMedia, Message{"Content-Type harus application/json", "Content-Type must be application/json"}}
	// ErrNotAcceptable: the client does not accept a JSON response (406).
	ErrNotAcceptable error = &reason{"apiguard: not acceptable", http.StatusNotAcceptable, CodeNotAcceptable, Message{"Accept harus mengizinkan application/json", "Accept must allow application/json"}}
	// ErrRequestExpired: the request time is outside the allowed window (400).
	ErrRequestExpired error = &reason{"apiguard: request expired", http.StatusBadRequest, CodeRequestExpired, Message{"Permintaan kedaluwarsa", "Request expired"}}
	// ErrRequestTimeFormat: the request time does not parse (400).
	ErrRequestTimeFormat error = &reason{"apiguard: invalid request time format", http.StatusBadRequest, CodeRequestTimeFormat, Message{"Format X-Request-Time tidak valid", "Invalid X-Request-Time format"}}
	// ErrMissingRequestID: the request carries no request id (400).
	ErrMissingRequestID error = &reason{"apiguard: missing request id", http.StatusBadRequest, CodeMissingRequestID, Message{"Header wajib tidak ada: x-request-id", "Missing required header: x-request-id"}}
	// ErrDuplicateRequestID: the request id was seen before (409).
	ErrDuplicateRequestID error = &reason{"apiguard: duplicate request id", http.StatusConflict, CodeDuplicateRequestID, Message{"x-request-id sudah pernah digunakan", "x-request-id has already been used"}}
	// ErrMissingSessionID: the session id header is absent (400).
	ErrMissingSessionID error = &reason{"apiguard: missing session id", http.StatusBadRequest, CodeMissingSessionID, Message{"Header wajib tidak ada: x-session-id", "Missing required header: x-session-id"}}
	// ErrInvalidToken: a session token is missing, malformed, forged,
	// expired, of the wrong kind, or not the session's (401).
	ErrInvalidToken error = &reason{"apiguard: invalid token", http.StatusUnauthorized, CodeInvalidToken, Message{"Token tidak valid atau kedaluwarsa", "Invalid or expired token"}}
	// ErrBodyTooLarge: the request body exceeds the configured limit (413).
	ErrBodyTooLarge error = &reason{"apiguard: request body too large", http.StatusRequestEntityTooLarge, CodeBodyTooLarge, Message{"Isi permintaan terlalu besar", "Request body too large"}}
	// ErrInvalidBody: the request body is not the JSON the scheme needs (400).
	ErrInvalidBody error = &reason{"apiguard: invalid request body", http.StatusBadRequest, CodeInvalidBody, Message{"Isi permintaan tidak valid", "Invalid request body"}}
	// ErrRateLimited: a rate limit was exceeded (429).
	ErrRateLimited error = &reason{"apiguard: rate limited", http.StatusTooManyRequests, CodeRateLimited, Message{"Terlalu banyak permintaan", "Too many requests"}}
	// ErrUnavailable: a backing store failed and the guard fails closed (503).
	ErrUnavailable error = &reason{"apiguard: backend unavailable", http.StatusServiceUnavailable, CodeUnavailable, Message{"Layanan sedang tidak tersedia", "Service unavailable"}}

	// Reasons of the client-system headers of seed 003 (x-app-key and
	// x-request-id). The missing and invalid app key also match ErrMissingKey
	// and ErrInvalidKey, as a Scheme's errors must.

	// ErrMissingAppKey: the request carries no x-app-key (401).
	ErrMissingAppKey error = &reason{"apiguard: missing app key", http.StatusUnauthorized, CodeMissingAppKey, Message{"Header wajib tidak ada: x-app-key", "Missing required header: x-app-key"}}
	// ErrInvalidAppKey: the x-app-key is unknown, revoked, not a
	// publishable key, malformed or sent twice (401).
	ErrInvalidAppKey error = &reason{"apiguard: invalid app key", http.StatusUnauthorized, CodeInvalidAppKey, Message{"x-app-key tidak valid", "Invalid x-app-key"}}
	// ErrInvalidRequestID: the x-request-id is malformed or sent twice (400).
	ErrInvalidRequestID error = &reason{"apiguard: invalid request id", http.StatusBadRequest, CodeInvalidRequestID, Message{"x-request-id tidak valid", "Invalid x-request-id"}}
)

// Stable machine codes of the built-in reasons. A Dialect looks messages up by
// code, and the problem+json dialect publishes the code as a member.
const (
	CodeMissingKey           = "missing_key"
	CodeInvalidKey           = "invalid_key"
	CodeForbidden            = "forbidden"
	CodeIdentityConflict     = "identity_conflict"
	CodeHashMismatch         = "hash_mismatch"
	CodeMissingHeaders       = "missing_headers"
	CodeInvalidAuthorization = "invalid_authorization"
	CodeInvalidField         = "invalid_field"
	CodeIPNotWhitelisted     = "ip_not_whitelisted"
	CodeIPNotRegistered      = "ip_not_registered"
	CodeHTTPSRequired        = "https_required"
	CodeUnsupportedMedia     = "unsupported_media_type"
	CodeNotAcceptable        = "not_acceptable"
	CodeRequestExpired       = "request_expired"
	CodeRequestTimeFormat    = "invalid_request_time"
	CodeMissingRequestID     = "missing_request_id"
	CodeDuplicateRequestID   = "duplicate_request_id"
	CodeMissingSessionID     = "missing_session_id"
	CodeInvalidToken         = "invalid_token"
	CodeBodyTooLarge         = "body_too_large"
	CodeInvalidBody          = "invalid_body"
	CodeRateLimited          = "rate_limited"
	CodeUnavailable          = "unavailable"
	CodeMissingAppKey        = "missing_app_key"
	CodeInvalidAppKey        = "invalid_app_key"
	CodeInvalidRequestID     = "invalid_request_id"
	CodeInternal             = "internal_error"
)

// Store and configuration errors. They are not reasons a request is
// refused: they say why a store or a method of Sessions failed. errors.Is
// still finds one inside the reason that carries it to a client (RequestID
// answers ErrReplayStoreFull with ErrUnavailable, ExchangeRefreshToken
// ErrRefreshTokenReused with ErrInvalidToken).
var (
	// ErrStoreFull is returned by MemoryKeyStore.Add when the store holds its
	// capacity of keys.
	ErrStoreFull = errors.New("apiguard: key store full")

	// ErrReplayStoreFull is returned by MemoryReplayStore.Seen when the store
	// holds its capacity of ids still inside their retention. RequestID answers
	// it, as any store failure, with 503 (ErrUnavailable).
	ErrReplayStoreFull = errors.New("apiguard: replay store full")

	// ErrRefreshTokenReused is the cause, wrapped with ErrInvalidToken, of
	// the refusal of a refresh token that is not its session's latest: it
	// was used already, or replaced. The session is revoked. Clients see a
	// plain invalid token; a denial hook can match this to raise an alarm.
	ErrRefreshTokenReused = errors.New("apiguard: refresh token reused; session revoked")

	// ErrRevocationsFull is returned by Sessions.RevokeSession and
	// Sessions.RevokeSubject when the revocation list holds its capacity of
	// revocations still in force; the revocation did not take effect.
	ErrRevocationsFull = errors.New("apiguard: revocation list full")
)

// reason is the type of the package's sentinels: it carries the status, the
// stable code and the catalogue's texts of one reason to refuse a request.
type reason struct {
	msg    string
	status int
	code   string
	text   Message
}

func (r *reason) Error() string { return r.msg }

// Error is a rejection: the HTTP status, a stable machine code, and the text
// shown to the client. A Dialect renders it; its Error method is for logs and
// never reaches a client.
//
// Message may be left empty, in which case the dialect supplies the text for
// Code in the request's language. Handlers can build their own Errors (a 404
// "Transaction not found", say) and render them with Guard.Deny so that every
// body of an API shares one envelope.
type Error struct {
	Status  int    // HTTP status code
	Code    string // stable machine code, such as CodeInvalidKey
	Message string // client-facing text; empty means the dialect's text for Code

	// RetryAfter, when positive, is sent as the Retry-After header in whole
	// seconds, rounded up.
	RetryAfter time.Duration

	// Err is the reason (one of the Err* sentinels, possibly wrapped with a
	// cause). It is for errors.Is and logs only.
	Err error
}

// NewError returns the *Error for reason, which must be one of the package's
// sentinels (possibly wrapped, as by fmt.Errorf("%w: %w", ErrInvalidToken,
// cause)). Any other error becomes a 500 with CodeInternal.
func NewError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var r *reason
	if errors.As(err, &r) {
		return &Error{Status: r.status, Code: r.code, Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Err: err}
}

// Error returns a description for logs: status, code and reason. It never
// contains a secret.
func (e *Error) Error() string {
	s := "apiguard: " + strconv.Itoa(e.Status) + " " + e.Code
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the reason, so errors.Is matches the sentinels.
func (e *Error) Unwrap() error { return e.Err }

// writeHeaders sets the headers every rejection carries.
func (e *Error) writeHeaders(h http.Header, scheme string) {
	if e.Status == http.StatusUnauthorized && scheme != "" {
		h.Set("WWW-Authenticate", scheme)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
}
