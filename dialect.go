package apiguard

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// A Dialect renders rejections as one API's error bodies. WriteError must
// write the status e.Status and a body; headers common to every rejection
// (WWW-Authenticate, Retry-After) are already set when it is called.
//
// Implementations must be safe for concurrent use and must never write a
// secret or e.Err to the client.
type Dialect interface {
	WriteError(w http.ResponseWriter, r *http.Request, e *Error)
}

// Message is the text of one error code in the two languages of the
// catalogue: ID (Bahasa Indonesia) and EN (English).
type Message struct {
	ID string
	EN string
}

// internalText is the text of the code "internal_error".
var internalText = Message{"Terjadi kesalahan pada server", "Internal server error"}

// text returns the catalogue's texts for e: those of its reason.
func text(e *Error) (Message, bool) {
	var r *reason
	if errors.As(e.Err, &r) && r.code == e.Code {
		return r.text, true
	}
	if e.Code == "internal_error" {
		return internalText, true
	}
	return Message{}, false
}

// language returns the language the request asks for in its x-language
// header: "en" for "en" or "en-*" in any case, "id" for "id" or "id-*",
// and def for anything else, absent included.
func language(r *http.Request, def string) string {
	v := r.Header.Get("X-Language")
	if len(v) >= 2 && (len(v) == 2 || v[2] == '-') {
		switch {
		case strings.EqualFold(v[:2], "en"):
			return "en"
		case strings.EqualFold(v[:2], "id"):
			return "id"
		}
	}
	return def
}

// JSONDialect is a Dialect that writes a JSON envelope. The built-in
// dialects are JSONDialects; set its fields to make another one.
//
// A JSONDialect must not be modified once it is in use; it is then safe for
// concurrent use.
type JSONDialect struct {
	// ContentType of error bodies; empty means "application/json".
	ContentType string

	// Localized makes the x-language header choose the message language:
	// English (Message.EN) for "en" or "en-*" in any case, Indonesian
	// (Message.ID, when it is set) for "id" or "id-*", and DefaultLanguage
	// for anything else, no header included. Otherwise messages are in
	// DefaultLanguage.
	Localized bool

	// DefaultLanguage is the language of messages when the request does
	// not choose one: "id" for Indonesian (the client-system API's default),
	// anything else for English. The default is English.
	DefaultLanguage string

	// Messages overrides the catalogue's text of a code, or adds a code.
	Messages map[string]Message

	// Body returns the value encoded as the response body for e, whose
	// client-facing text is message.
	Body func(e *Error, message string) any
}

// message returns the text shown for e in the language of r: e.Message when
// set, else the dialect's text for e.Code, else the catalogue's, else the
// status text.
func (d *JSONDialect) message(r *http.Request, e *Error) string {
	if e.Message != "" {
		return e.Message
	}
	m, ok := d.Messages[e.Code]
	if !ok {
		if m, ok = text(e); !ok {
			return http.StatusText(e.Status)
		}
	}
	lang := d.DefaultLanguage
	if d.Localized {
		lang = language(r, lang)
	}
	if lang == "id" && m.ID != "" {
		return m.ID
	}
	if m.EN == "" {
		return m.ID
	}
	return m.EN
}

// WriteError implements Dialect.
func (d *JSONDialect) WriteError(w http.ResponseWriter, r *http.Request, e *Error) {
	body, err := json.Marshal(d.Body(e, d.message(r, e)))
	if err != nil {
		// Body returned something JSON cannot encode: a programming error,
		// answered without leaking it.
		body = []byte(`{"error":"internal_error"}`)
	}
	ct := d.ContentType
	if ct == "" {
		ct = "application/json"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	w.Write(body)
}

// WithMessage returns a copy of d in which code reads m.
func (d *JSONDialect) WithMessage(code string, m Message) *JSONDialect {
	c := *d
	c.Messages = make(map[string]Message, len(d.Messages)+1)
	for k, v := range d.Messages {
		c.Messages[k] = v
	}
	c.Messages[code] = m
	return &c
}

// same returns a Message with one text in both languages, for dialects whose
// documentation fixes the text whatever the language.
func same(s string) Message { return Message{ID: s, EN: s} }

// Problem returns the default dialect: RFC 9457 problem details, served as
// application/problem+json and localized by x-language (English unless the
// request asks for "id"; set DefaultLanguage to "id" for an API that, like
// the client-system API, answers in Indonesian by default):
//
//	{"type":"about:blank","title":"Unauthorized","status":401,"detail":"Invalid API key","code":"invalid_key"}
func Problem() *JSONDialect {
	return &JSONDialect{
		ContentType: "application/problem+json",
		Localized:   true,
		Body: func(e *Error, msg string) any {
			return problemBody{"about:blank", http.StatusText(e.Status), e.Status, msg, e.Code}
		},
	}
}

type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

// MockPay returns the dialect of the MockPay payment API:
//
//	{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}
//
// The envelope's code is the upper-case name of the status (UNAUTHORIZED,
// FORBIDDEN, NOT_FOUND, TOO_MANY_REQUESTS, ...).
func MockPay() *JSONDialect {
	return &JSONDialect{
		Messages: map[string]Message{
			"missing_key":       same("Invalid or missing API key"),
			"invalid_key":       same("Invalid or missing API key"),
			"identity_conflict": same("Invalid or missing API key"),
			"forbidden":         same("Insufficient permissions for this operation"),
		},
		Body: func(e *Error, msg string) any {
			return mockPayBody{Error: mockPayError{statusCode(e.Status), msg}}
		},
	}
}

type mockPayBody struct {
	Success bool         `json:"success"`
	Error   mockPayError `json:"error"`
}

type mockPayError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// statusCode turns 404 into "NOT_FOUND".
func statusCode(status int) string {
	t := http.StatusText(status)
	if t == "" {
		return "ERROR"
	}
	t = strings.ToUpper(t)
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		case r == ' ' || r == '-':
			return '_'
		}
		return -1
	}, t)
}

// Reseller returns the dialect of the Reseller API (the game top-up
// reseller):
//
//	{"status":"error","message":"Invalid API key","code":401}
//
// Its texts are the ones the Reseller API documents, Indonesian where those
// are ("IP belum di whitelist"). Its product list says "Too many requests.
// Please try again later." where the other routes say "Too many requests":
// use WithMessage("rate_limited", ...) on that route's guard.
func Reseller() *JSONDialect {
	return &JSONDialect{
		Messages: map[string]Message{
			"missing_key":          same("Unauthorized"),
			"invalid_key":          same("Invalid API key"),
			"identity_conflict":    same("Unauthorized"),
			"hash_mismatch":        same("Invalid hash combination"),
			"missing_headers":      same("Unauthorized: Missing required headers"),
			"ip_not_whitelisted":   same("IP belum di whitelist"),
			"ip_not_registered":    same("IP address not authorized"),
			"request_expired":      same("Request expired"),
			"invalid_request_time": same("Invalid X-Request-Time format"),
			"rate_limited":         same("Too many requests"),
			"internal_error":       same("Internal Server Error"),

			// The status route's "Missing or invalid authorization header".
			"invalid_authorization": same("Unauthorized"),
		},
		Body: func(e *Error, msg string) any {
			return resellerBody{"error", msg, e.Status}
		},
	}
}

type resellerBody struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Code    int    `json:"code"`
}

// Pay88 returns the dialect of the 88Pay API:
//
//	{"status":"Error","code":401,"message":"Unauthorized"}
//
// Missing or invalid tokens read "Unauthorized"; invalid credentials at the
// token endpoint read "Invalid API key or merchant ID"; plain HTTP is 403
// "HTTPS required" (88Pay's documentation says only that such requests are
// rejected).
func Pay88() *JSONDialect {
	return &JSONDialect{
		Messages: map[string]Message{
			"missing_key":        same("Unauthorized"),
			"invalid_token":      same("Unauthorized"),
			"identity_conflict":  same("Unauthorized"),
			"invalid_key":        same("Invalid API key or merchant ID"),
			"missing_session_id": same("Missing required header: x-session-id"),
			"rate_limited":       same("Rate limit exceeded"),
			"https_required":     same("HTTPS required"),
		},
		Body: func(e *Error, msg string) any {
			return pay88Body{"Error", e.Status, msg}
		},
	}
}

type pay88Body struct {
	Status  string `json:"status"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Midtrans returns the dialect of the Midtrans API, whose status code is a
// string:
//
//	{"status_code":"401","status_message":"Access denied due to unauthorized transaction, please check client or server key"}
//
// Its documentation shows no error bodies: the 401 text is the one Midtrans
// itself answers with, the others are the catalogue's English texts.
func Midtrans() *JSONDialect {
	const denied = "Access denied due to unauthorized transaction, please check client or server key"
	return &JSONDialect{
		Messages: map[string]Message{
			"missing_key":       same(denied),
			"invalid_key":       same(denied),
			"identity_conflict": same(denied),
		},
		Body: func(e *Error, msg string) any {
			return midtransBody{strconv.Itoa(e.Status), msg}
		},
	}
}

type midtransBody struct {
	StatusCode    string `json:"status_code"`
	StatusMessage string `json:"status_message"`
}
