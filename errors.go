package apiguard

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Reasons a request is refused. Every rejection apiguard writes is an *Error
// whose Unwrap yields one of these, so callers (an observer, a test) match
// reasons with errors.Is and never compare strings:
//
//	if errors.Is(err, apiguard.ErrInvalidKey) { ... }
//
// Each reason has a stable machine code, given beside it with its HTTP
// status: a Dialect looks its messages up by code (JSONDialect.WithMessage
// takes one), and the problem+json dialect publishes it. NewError(err).Code
// gives the code of err's reason, and "internal_error" for an error that is
// none of them.
var (
	// ErrMissingKey (code "missing_key", 401): no credentials were presented.
	ErrMissingKey error = &reason{"apiguard: missing credentials", http.StatusUnauthorized, "missing_key", Message{"Kunci API tidak ada", "Missing API key"}}
	// ErrInvalidKey (code "invalid_key", 401): credentials were presented but
	// no live key matches them, or they are malformed, ambiguous, of the wrong
	// kind or environment.
	ErrInvalidKey error = &reason{"apiguard: invalid credentials", http.StatusUnauthorized, "invalid_key", Message{"Kunci API tidak valid", "Invalid API key"}}
	// ErrForbidden (code "forbidden", 403): the client lacks a scope the route
	// requires.
	ErrForbidden error = &reason{"apiguard: insufficient permissions", http.StatusForbidden, "forbidden", Message{"Izin tidak cukup untuk operasi ini", "Insufficient permissions for this operation"}}
	// ErrIdentityConflict (code "identity_conflict", 401): two guards in one
	// stack authenticated the request as two different clients.
	ErrIdentityConflict error = &reason{"apiguard: conflicting identities", http.StatusUnauthorized, "identity_conflict", Message{"Identitas klien bertentangan", "Conflicting client identities"}}
	// ErrHashMismatch (code "hash_mismatch", 401): a hash signature does not
	// match.
	ErrHashMismatch error = &reason{"apiguard: hash mismatch", http.StatusUnauthorized, "hash_mismatch", Message{"Kombinasi hash tidak valid", "Invalid hash combination"}}
	// ErrMissingHeaders (code "missing_headers", 401): a header the scheme
	// requires is absent.
	ErrMissingHeaders error = &reason{"apiguard: missing required headers", http.StatusUnauthorized, "missing_headers", Message{"Header wajib tidak ada", "Missing required headers"}}
	// ErrInvalidAuthorization (code "invalid_authorization", 401): the
	// Authorization header of a hash signature is sent more than once or is not
	// of the form `Bearer <digest>`.
	ErrInvalidAuthorization error = &reason{"apiguard: invalid Authorization header", http.StatusUnauthorized, "invalid_authorization", Message{"Header Authorization tidak valid", "Invalid Authorization header"}}
	// ErrInvalidField (code "invalid_field", 400): a field a signature covers
	// is absent or empty (when its Field names no error of its own), given more
	// than once, or holds control characters or invalid UTF-8.
	ErrInvalidField error = &reason{"apiguard: missing or invalid signed field", http.StatusBadRequest, "invalid_field", Message{"Field wajib tidak ada atau tidak valid", "Missing or invalid field"}}
	// ErrIPNotWhitelisted (code "ip_not_whitelisted", 403): the client IP is
	// not on the whitelist.
	ErrIPNotWhitelisted error = &reason{"apiguard: IP not whitelisted", http.StatusForbidden, "ip_not_whitelisted", Message{"IP belum di whitelist", "IP address not whitelisted"}}
	// ErrIPNotRegistered (code "ip_not_registered", 403): the client IP is not
	// one registered for the key.
	ErrIPNotRegistered error = &reason{"apiguard: IP not registered for key", http.StatusForbidden, "ip_not_registered", Message{"Alamat IP tidak diizinkan", "IP address not authorized"}}
	// ErrHTTPSRequired (code "https_required", 403): the request did not arrive
	// over HTTPS.
	ErrHTTPSRequired error = &reason{"apiguard: HTTPS required", http.StatusForbidden, "https_required", Message{"HTTPS wajib digunakan", "HTTPS required"}}
	// ErrUnsupportedMediaType (code "unsupported_media_type", 415): the request
	// body is not JSON.
	ErrUnsupportedMediaType error = &reason{"apiguard: unsupported media type", http.StatusUnsupportedMediaType, "unsupported_media_type", Message{"Content-Type harus application/json", "Content-Type must be application/json"}}
	// ErrNotAcceptable (code "not_acceptable", 406): the client does not accept
	// a JSON response.
	ErrNotAcceptable error = &reason{"apiguard: not acceptable", http.StatusNotAcceptable, "not_acceptable", Message{"Accept harus mengizinkan application/json", "Accept must allow application/json"}}
	// ErrRequestExpired (code "request_expired", 400): the request time is
	// outside the allowed window.
	ErrRequestExpired error = &reason{"apiguard: request expired", http.StatusBadRequest, "request_expired", Message{"Permintaan kedaluwarsa", "Request expired"}}
	// ErrRequestTimeFormat (code "invalid_request_time", 400): the request time
	// does not parse.
	ErrRequestTimeFormat error = &reason{"apiguard: invalid request time format", http.StatusBadRequest, "invalid_request_time", Message{"Format X-Request-Time tidak valid", "Invalid X-Request-Time format"}}
	// ErrMissingRequestID (code "missing_request_id", 400): the request carries
	// no request id.
	ErrMissingRequestID error = &reason{"apiguard: missing request id", http.StatusBadRequest, "missing_request_id", Message{"Header wajib tidak ada: x-request-id", "Missing required header: x-request-id"}}
	// ErrDuplicateRequestID (code "duplicate_request_id", 409): the request id
	// was seen before.
	ErrDuplicateRequestID error = &reason{"apiguard: duplicate request id", http.StatusConflict, "duplicate_request_id", Message{"x-request-id sudah pernah digunakan", "x-request-id has already been used"}}
	// ErrMissingSessionID (code "missing_session_id", 400): the session id
	// header is absent.
	ErrMissingSessionID error = &reason{"apiguard: missing session id", http.StatusBadRequest, "missing_session_id", Message{"Header wajib tidak ada: x-session-id", "Missing required header: x-session-id"}}
	// ErrInvalidToken (code "invalid_token", 401): a session token is missing,
	// malformed, forged, expired, of the wrong kind, or not the session's.
	ErrInvalidToken error = &reason{"apiguard: invalid token", http.StatusUnauthorized, "invalid_token", Message{"Token tidak valid atau kedaluwarsa", "Invalid or expired token"}}
	// ErrBodyTooLarge (code "body_too_large", 413): the request body exceeds
	// the configured limit.
	ErrBodyTooLarge error = &reason{"apiguard: request body too large", http.StatusRequestEntityTooLarge, "body_too_large", Message{"Isi permintaan terlalu besar", "Request body too large"}}
	// ErrInvalidBody (code "invalid_body", 400): the request body is not the
	// JSON the scheme needs.
	ErrInvalidBody error = &reason{"apiguard: invalid request body", http.StatusBadRequest, "invalid_body", Message{"Isi permintaan tidak valid", "Invalid request body"}}
	// ErrRateLimited (code "rate_limited", 429): a rate limit was exceeded.
	ErrRateLimited error = &reason{"apiguard: rate limited", http.StatusTooManyRequests, "rate_limited", Message{"Terlalu banyak permintaan", "Too many requests"}}
	// ErrUnavailable (code "unavailable", 503): a backing store failed and the
	// guard fails closed.
	ErrUnavailable error = &reason{"apiguard: backend unavailable", http.StatusServiceUnavailable, "unavailable", Message{"Layanan sedang tidak tersedia", "Service unavailable"}}

	// Reasons of the client-system API's headers (x-app-key and
	// x-request-id). The missing and invalid app key also match ErrMissingKey
	// and ErrInvalidKey, as a Scheme's errors must.

	// ErrMissingAppKey (code "missing_app_key", 401): the request carries no
	// x-app-key.
	ErrMissingAppKey error = &reason{"apiguard: missing app key", http.StatusUnauthorized, "missing_app_key", Message{"Header wajib tidak ada: x-app-key", "Missing required header: x-app-key"}}
	// ErrInvalidAppKey (code "invalid_app_key", 401): the x-app-key is unknown,
	// revoked, not a publishable key, malformed or sent twice.
	ErrInvalidAppKey error = &reason{"apiguard: invalid app key", http.StatusUnauthorized, "invalid_app_key", Message{"x-app-key tidak valid", "Invalid x-app-key"}}
	// ErrInvalidRequestID (code "invalid_request_id", 400): the x-request-id is
	// malformed or sent twice.
	ErrInvalidRequestID error = &reason{"apiguard: invalid request id", http.StatusBadRequest, "invalid_request_id", Message{"x-request-id tidak valid", "Invalid x-request-id"}}
)

// Store and configuration errors. They are not reasons a request is
// refused: they say why a store or a method of Sessions failed. errors.Is
// still finds one inside the reason that carries it to a client (RequestID
// answers ErrStoreFull with ErrUnavailable, Exchange ErrRefreshTokenReused
// with ErrInvalidToken).
var (
	// ErrStoreFull is returned when a bounded store holds its capacity
	// (WithCapacity) and the entry is not taken:
	//
	//   - by MemoryKeyStore.Add, when the store holds its capacity of keys;
	//   - by MemoryReplayStore.Seen, when the store holds its capacity of ids
	//     still inside their retention (RequestID answers it, as any store
	//     failure, with 503: ErrUnavailable);
	//   - by MemoryReplayStore.Seen, when the id's namespace holds its share
	//     (an eighth of the capacity) of ids still inside their retention;
	//   - by Sessions.RevokeSession and Sessions.RevokeSubject, when the
	//     operators' revocation list holds its capacity of revocations still
	//     in force: the revocation did not take effect;
	//   - by Sessions.Login, when the Sessions track their capacity of
	//     sessions, or the user's places are all held by sessions revoked
	//     for refresh-token reuse (answer it with 503: ErrUnavailable).
	ErrStoreFull = errors.New("apiguard: store full")

	// ErrRefreshTokenReused is the cause, wrapped with ErrInvalidToken, of
	// the refusal of a refresh token that is not its session's latest: it
	// was used already, or replaced. The session is revoked. Clients see a
	// plain invalid token; an observer (WithObserver) sees the cause
	// "refresh_token_reused" and can raise an alarm.
	ErrRefreshTokenReused = errors.New("apiguard: refresh token reused; session revoked")
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
	Code    string // stable machine code, such as "invalid_key"
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
// cause)). Any other error becomes a 500 with the code "internal_error".
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
	return &Error{Status: http.StatusInternalServerError, Code: "internal_error", Err: err}
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
