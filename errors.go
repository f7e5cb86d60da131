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
	ErrMissingKey = errors.New("apiguard: missing credentials")
	// ErrInvalidKey: credentials were presented but no live key matches them,
	// or they are malformed, ambiguous, of the wrong kind or environment (401).
	ErrInvalidKey = errors.New("apiguard: invalid credentials")
	// ErrForbidden: the client lacks a scope the route requires (403).
	ErrForbidden = errors.New("apiguard: insufficient permissions")
	// ErrIdentityConflict: two guards in one stack authenticated the request
	// as two different clients (401).
	ErrIdentityConflict = errors.New("apiguard: conflicting identities")
	// ErrHashMismatch: a hash signature does not match (401).
	ErrHashMismatch = errors.New("apiguard: hash mismatch")
	// ErrMissingHeaders: a header the scheme requires is absent (401).
	ErrMissingHeaders = errors.New("apiguard: missing required headers")
	// ErrIPNotWhitelisted: the client IP is not on the whitelist (403).
	ErrIPNotWhitelisted = errors.New("apiguard: IP not whitelisted")
	// ErrIPNotRegistered: the client IP is not one registered for the key (403).
	ErrIPNotRegistered = errors.New("apiguard: IP not registered for key")
	// ErrHTTPSRequired: the request did not arrive over HTTPS (403).
	ErrHTTPSRequired = errors.New("apiguard: HTTPS required")
	// ErrUnsupportedMediaType: the request body is not JSON (415).
	ErrUnsupportedMediaType = errors.New("apiguard: unsupported media type")
	// ErrNotAcceptable: the client does not accept a JSON response (406).
	ErrNotAcceptable = errors.New("apiguard: not acceptable")
	// ErrRequestExpired: the request time is outside the allowed window (400).
	ErrRequestExpired = errors.New("apiguard: request expired")
	// ErrRequestTimeFormat: the request time does not parse (400).
	ErrRequestTimeFormat = errors.New("apiguard: invalid request time format")
	// ErrMissingRequestID: the request carries no request id (400).
	ErrMissingRequestID = errors.New("apiguard: missing request id")
	// ErrDuplicateRequestID: the request id was seen before (409).
	ErrDuplicateRequestID = errors.New("apiguard: duplicate request id")
	// ErrMissingSessionID: the session id header is absent (400).
	ErrMissingSessionID = errors.New("apiguard: missing session id")
	// ErrInvalidToken: a session token is missing, malformed, forged,
	// expired, of the wrong kind, or not the session's (401).
	ErrInvalidToken = errors.New("apiguard: invalid token")
	// ErrBodyTooLarge: the request body exceeds the configured limit (413).
	ErrBodyTooLarge = errors.New("apiguard: request body too large")
	// ErrInvalidBody: the request body is not the JSON the scheme needs (400).
	ErrInvalidBody = errors.New("apiguard: invalid request body")
	// ErrRateLimited: a rate limit was exceeded (429).
	ErrRateLimited = errors.New("apiguard: rate limited")
	// ErrUnavailable: a backing store failed and the guard fails closed (503).
	ErrUnavailable = errors.New("apiguard: backend unavailable")
)

// Stable machine codes of the built-in reasons. A Dialect looks messages up by
// code, and the problem+json dialect publishes the code as a member.
const (
	CodeMissingKey         = "missing_key"
	CodeInvalidKey         = "invalid_key"
	CodeForbidden          = "forbidden"
	CodeIdentityConflict   = "identity_conflict"
	CodeHashMismatch       = "hash_mismatch"
	CodeMissingHeaders     = "missing_headers"
	CodeIPNotWhitelisted   = "ip_not_whitelisted"
	CodeIPNotRegistered    = "ip_not_registered"
	CodeHTTPSRequired      = "https_required"
	CodeUnsupportedMedia   = "unsupported_media_type"
	CodeNotAcceptable      = "not_acceptable"
	CodeRequestExpired     = "request_expired"
	CodeRequestTimeFormat  = "invalid_request_time"
	CodeMissingRequestID   = "missing_request_id"
	CodeDuplicateRequestID = "duplicate_request_id"
	CodeMissingSessionID   = "missing_session_id"
	CodeInvalidToken       = "invalid_token"
	CodeBodyTooLarge       = "body_too_large"
	CodeInvalidBody        = "invalid_body"
	CodeRateLimited        = "rate_limited"
	CodeUnavailable        = "unavailable"
	CodeInternal           = "internal_error"
)

// reasons maps each sentinel to its status and code.
var reasons = map[error]struct {
	status int
	code   string
}{
	ErrMissingKey:           {http.StatusUnauthorized, CodeMissingKey},
	ErrInvalidKey:           {http.StatusUnauthorized, CodeInvalidKey},
	ErrForbidden:            {http.StatusForbidden, CodeForbidden},
	ErrIdentityConflict:     {http.StatusUnauthorized, CodeIdentityConflict},
	ErrHashMismatch:         {http.StatusUnauthorized, CodeHashMismatch},
	ErrMissingHeaders:       {http.StatusUnauthorized, CodeMissingHeaders},
	ErrIPNotWhitelisted:     {http.StatusForbidden, CodeIPNotWhitelisted},
	ErrIPNotRegistered:      {http.StatusForbidden, CodeIPNotRegistered},
	ErrHTTPSRequired:        {http.StatusForbidden, CodeHTTPSRequired},
	ErrUnsupportedMediaType: {http.StatusUnsupportedMediaType, CodeUnsupportedMedia},
	ErrNotAcceptable:        {http.StatusNotAcceptable, CodeNotAcceptable},
	ErrRequestExpired:       {http.StatusBadRequest, CodeRequestExpired},
	ErrRequestTimeFormat:    {http.StatusBadRequest, CodeRequestTimeFormat},
	ErrMissingRequestID:     {http.StatusBadRequest, CodeMissingRequestID},
	ErrDuplicateRequestID:   {http.StatusConflict, CodeDuplicateRequestID},
	ErrMissingSessionID:     {http.StatusBadRequest, CodeMissingSessionID},
	ErrInvalidToken:         {http.StatusUnauthorized, CodeInvalidToken},
	ErrBodyTooLarge:         {http.StatusRequestEntityTooLarge, CodeBodyTooLarge},
	ErrInvalidBody:          {http.StatusBadRequest, CodeInvalidBody},
	ErrRateLimited:          {http.StatusTooManyRequests, CodeRateLimited},
	ErrUnavailable:          {http.StatusServiceUnavailable, CodeUnavailable},
}

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
func NewError(reason error) *Error {
	if reason == nil {
		return nil
	}
	var e *Error
	if errors.As(reason, &e) {
		return e
	}
	for r := reason; r != nil; r = errors.Unwrap(r) {
		if m, ok := reasons[r]; ok {
			return &Error{Status: m.status, Code: m.code, Err: reason}
		}
	}
	for sentinel, m := range reasons {
		if errors.Is(reason, sentinel) {
			return &Error{Status: m.status, Code: m.code, Err: reason}
		}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Err: reason}
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
