package client

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// A Field gives one value of a hash signature's input from an outgoing
// request: a member of its JSON body, a header, a query parameter, the
// price set with WithPrice, or a function of one's own (FieldFunc). The
// zero Field is invalid.
type Field struct {
	get  func(r *http.Request, body []byte) (string, error)
	body bool // get needs the body
}

// JSONField is the top-level member name of the request's JSON body: a
// string's value, or a number as written. An absent member or null gives
// "" (the server then answers with its own error, such as the reseller's
// 400 "Transaction ID is required"); a body that is not a JSON object, or
// a member that is an object, an array or a boolean, fails the signature.
func JSONField(name string) Field {
	return Field{body: true, get: func(_ *http.Request, body []byte) (string, error) {
		return jsonMember(body, name)
	}}
}

// HeaderField is the value of the request header name ("" when absent).
func HeaderField(name string) Field {
	name = http.CanonicalHeaderKey(name)
	return Field{get: func(r *http.Request, _ []byte) (string, error) {
		return r.Header.Get(name), nil
	}}
}

// QueryField is the value of the URL query parameter name ("" when absent).
func QueryField(name string) Field {
	return Field{get: func(r *http.Request, _ []byte) (string, error) {
		return r.URL.Query().Get(name), nil
	}}
}

// PriceField is the price set on the request's context with WithPrice, in
// plain decimal digits (the reseller's order hash takes the product's price
// for the caller's role, which the request body does not carry). A request
// without a price fails the signature.
func PriceField() Field {
	return Field{get: func(r *http.Request, _ []byte) (string, error) {
		p, ok := r.Context().Value(priceKey{}).(int64)
		if !ok {
			return "", errors.New("client: the order hash needs a price: use client.WithPrice on the request's context")
		}
		return strconv.FormatInt(p, 10), nil
	}}
}

// FieldFunc is a field computed by f from the request and its body (nil
// when the request has none). f must not keep or modify r.
func FieldFunc(f func(r *http.Request, body []byte) (string, error)) Field {
	return Field{get: f, body: true}
}

type priceKey struct{}

// WithPrice returns a copy of ctx carrying the price that PriceField signs:
//
//	req, _ := http.NewRequestWithContext(client.WithPrice(ctx, 15000), "POST", url, body)
func WithPrice(ctx context.Context, price int64) context.Context {
	return context.WithValue(ctx, priceKey{}, price)
}

// A HashOption configures a hash Signer. The zero HashOption is invalid.
type HashOption struct {
	apply func(*hashSigner) error
}

// SendKey sends the API key, bare, in header as well as signing with it
// (the order endpoint's X-API-Key). The default is not to send it.
func SendKey(header string) HashOption {
	return HashOption{func(h *hashSigner) error {
		if !validHeaderName(header) {
			return fmt.Errorf("client: bad header name %q", header)
		}
		h.keyHeader = http.CanonicalHeaderKey(header)
		return nil
	}}
}

// SendTime sends the time of signing in header as Unix seconds (the order
// endpoint's X-Request-Time). The default is not to send it.
func SendTime(header string) HashOption {
	return HashOption{func(h *hashSigner) error {
		if !validHeaderName(header) {
			return fmt.Errorf("client: bad header name %q", header)
		}
		h.timeHeader = http.CanonicalHeaderKey(header)
		return nil
	}}
}

// SendHeader sends the header name with value on every request, such as
// the client id by which an HMAC server finds the secret ("X-Client-Id").
// It may be given several times, for several headers. The value must be 1
// to 1024 bytes without control characters; name cannot be Authorization,
// which holds the signature. The default is none.
func SendHeader(name, value string) HashOption {
	return HashOption{func(h *hashSigner) error {
		if !validHeaderName(name) || http.CanonicalHeaderKey(name) == "Authorization" {
			return fmt.Errorf("client: SendHeader: bad header name %q", name)
		}
		if value == "" || len(value) > maxCredentialLen || strings.ContainsFunc(value, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			return fmt.Errorf("client: SendHeader %s: the value must be 1 to %d bytes without control characters", name, maxCredentialLen)
		}
		h.headers = append(h.headers, fixedHeader{http.CanonicalHeaderKey(name), value})
		return nil
	}}
}

// HashClock sets the clock whose time SendTime sends. The default is
// time.Now.
func HashClock(now func() time.Time) HashOption {
	return HashOption{func(h *hashSigner) error {
		if now == nil {
			return errors.New("client: HashClock needs a clock")
		}
		h.now = now
		return nil
	}}
}

// MaxBody sets the longest request body a hash Signer reads; a longer one
// fails the signature with ErrBodyTooLarge. The default is 1 MiB, the
// limit of apiguard's hash schemes.
func MaxBody(n int64) HashOption {
	return HashOption{func(h *hashSigner) error {
		if n <= 0 {
			return fmt.Errorf("client: MaxBody must be positive, got %d", n)
		}
		h.maxBody = n
		return nil
	}}
}

// NewHash returns a Signer of hash signatures:
//
//	Authorization: Bearer hex(SHA256(apiKey + field1 + field2 + ...))
//
// in lower-case hex, the fields taken from the request in order. The body,
// when a field needs it, is read once, at most MaxBody bytes, and put back
// byte for byte. It fails if apiKey is not 1 to 1024 printable ASCII
// characters without spaces, if there is no field, or if a field or an
// option is invalid.
//
// StatusHash and OrderHash are the reseller's two formulas.
func NewHash(apiKey string, fields []Field, opts ...HashOption) (Signer, error) {
	if err := checkCredential("API key", apiKey); err != nil {
		return nil, err
	}
	return newHashSigner(false, apiKey, fields, opts)
}

// NewHMAC returns a Signer of HMAC signatures, as apiguard's HMACSignature
// checks them:
//
//	Authorization: Bearer hex(HMAC-SHA256(secret, field1 + "\n" + field2 + ...))
//
// in lower-case hex, the fields taken from the request in order and joined
// by newlines. The secret is never sent: tell the server whose secret to
// use with SendHeader (such as X-Client-Id), and sign the time with
// SendTime("X-Request-Time") and HeaderField("X-Request-Time"), as the
// headers are set before the fields are read. A field whose value holds a
// control character or invalid UTF-8 fails the signature with
// ErrFieldValue, as the server would refuse it.
//
// It fails if secret is not 1 to 1024 printable ASCII characters without
// spaces, if there is no field, if a field or an option is invalid, or if
// SendKey is given (an HMAC secret sent along protects nothing).
func NewHMAC(secret string, fields []Field, opts ...HashOption) (Signer, error) {
	if err := checkCredential("HMAC secret", secret); err != nil {
		return nil, err
	}
	return newHashSigner(true, secret, fields, opts)
}

func newHashSigner(mac bool, key string, fields []Field, opts []HashOption) (Signer, error) {
	if len(fields) == 0 {
		return nil, errors.New("client: a hash needs at least one field")
	}
	h := &hashSigner{hmac: mac, key: key, fields: append([]Field(nil), fields...), now: time.Now, maxBody: 1 << 20}
	for i, f := range h.fields {
		if f.get == nil {
			return nil, fmt.Errorf("client: hash field %d is the zero Field", i)
		}
		h.body = h.body || f.body
	}
	for _, o := range opts {
		if o.apply == nil {
			return nil, errors.New("client: the zero HashOption")
		}
		if err := o.apply(h); err != nil {
			return nil, err
		}
	}
	if mac && h.keyHeader != "" {
		return nil, errors.New("client: NewHMAC cannot send its secret (SendKey)")
	}
	return h, nil
}

// StatusHash returns the Signer of the reseller's status check (seed 001):
// `Authorization: Bearer hex(SHA256(apiKey + trx_id))`, trx_id being the
// member of the JSON body {"trx_id":"TRX_123456789"}. The key itself is
// not sent.
func StatusHash(apiKey string, opts ...HashOption) (Signer, error) {
	return NewHash(apiKey, []Field{JSONField("trx_id")}, opts...)
}

// OrderHash returns the Signer of the reseller's order (seed 001):
//
//	Authorization: Bearer hex(SHA256(apiKey + ref_id + price))
//	X-API-Key: apiKey
//	X-Request-Time: Unix seconds
//
// ref_id being the member of the JSON body and price the one set on the
// request's context with WithPrice (the product's price for the caller's
// role, in plain digits).
func OrderHash(apiKey string, opts ...HashOption) (Signer, error) {
	opts = append([]HashOption{SendKey("X-API-Key"), SendTime("X-Request-Time")}, opts...)
	return NewHash(apiKey, []Field{JSONField("ref_id"), PriceField()}, opts...)
}

type hashSigner struct {
	hmac       bool   // HMAC-SHA256 keyed by key, fields joined by "\n"
	key        string // the API key, or the HMAC secret
	fields     []Field
	body       bool
	keyHeader  string
	timeHeader string
	headers    []fixedHeader
	now        func() time.Time
	maxBody    int64
}

type fixedHeader struct{ name, value string }

func (h *hashSigner) Sign(r *http.Request) error {
	// The headers first, so that a field may cover them (an HMAC over
	// X-Request-Time).
	if h.keyHeader != "" {
		r.Header.Set(h.keyHeader, h.key)
	}
	if h.timeHeader != "" {
		r.Header.Set(h.timeHeader, strconv.FormatInt(h.now().Unix(), 10))
	}
	for _, hd := range h.headers {
		r.Header.Set(hd.name, hd.value)
	}
	var body []byte
	if h.body {
		var err error
		if body, err = readBody(r, h.maxBody); err != nil {
			return err
		}
	}
	var sum [sha256.Size]byte
	if h.hmac {
		msg, err := h.message(r, body, nil)
		if err != nil {
			return err
		}
		m := hmac.New(sha256.New, []byte(h.key))
		m.Write(msg)
		copy(sum[:], m.Sum(nil))
	} else {
		var buf [256]byte
		msg, err := h.message(r, body, append(buf[:0], h.key...))
		if err != nil {
			return err
		}
		sum = sha256.Sum256(msg)
	}
	var out [len("Bearer ") + 2*sha256.Size]byte
	copy(out[:], "Bearer ")
	hex.Encode(out[len("Bearer "):], sum[:])
	r.Header.Set("Authorization", string(out[:]))
	return nil
}

// message appends to dst the fields of r: concatenated for the seed's
// hash, joined by newlines and checked for HMAC.
func (h *hashSigner) message(r *http.Request, body, dst []byte) ([]byte, error) {
	for i, f := range h.fields {
		v, err := f.get(r, body)
		if err != nil {
			return nil, err
		}
		if h.hmac {
			if !validFieldValue(v) {
				return nil, fmt.Errorf("%w (field %d)", ErrFieldValue, i)
			}
			if i > 0 {
				dst = append(dst, '\n')
			}
		}
		dst = append(dst, v...)
	}
	return dst, nil
}

// ErrFieldValue is returned by an HMAC Signer when a field's value holds a
// control character (a newline would make the signed string ambiguous) or
// is not valid UTF-8. apiguard's HMACSignature refuses such values too.
var ErrFieldValue = errors.New("client: a signed field holds control characters or invalid UTF-8")

// validFieldValue reports whether v may be a field of an HMAC signature:
// valid UTF-8 without C0 or C1 control characters or DEL, the rule of
// apiguard's HMACSignature.
func validFieldValue(v string) bool {
	for i := 0; i < len(v); {
		c, n := utf8.DecodeRuneInString(v[i:])
		if c == utf8.RuneError && n <= 1 || c < 0x20 || c >= 0x7f && c < 0xa0 {
			return false
		}
		i += n
	}
	return true
}

// jsonMember returns the top-level member name of the JSON object body as
// JSONField describes, reading it as encoding/json would (the last of
// duplicate members wins) without decoding the rest of the body.
func jsonMember(body []byte, name string) (string, error) {
	raw, err := topLevelMember(body, name)
	if err != nil {
		return "", fmt.Errorf("client: hash field %q: %w", name, err)
	}
	switch {
	case raw == nil || string(raw) == "null":
		return "", nil
	case raw[0] == '"':
		if in := raw[1 : len(raw)-1]; bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
			return string(in), nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("client: hash field %q: %w", name, err)
		}
		return s, nil
	case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		return string(raw), nil
	}
	return "", fmt.Errorf("client: hash field %q is neither a string nor a number", name)
}

var errNotObject = errors.New("the request body is not a JSON object")

// topLevelMember returns the raw value of the last top-level member name
// of the JSON object body, or nil if there is none.
func topLevelMember(body []byte, name string) ([]byte, error) {
	if !json.Valid(body) {
		return nil, errNotObject
	}
	// body is valid JSON from here on, so the scan needs no checks.
	i := skipSpace(body, 0)
	if body[i] != '{' {
		return nil, errNotObject
	}
	var found []byte
	for i = skipSpace(body, i+1); body[i] != '}'; i = skipSpace(body, i) {
		if body[i] == ',' {
			i = skipSpace(body, i+1)
		}
		end := skipString(body, i)
		key := body[i:end]
		i = skipSpace(body, skipSpace(body, end)+1) // past ':'
		vend := skipValue(body, i)
		if keyIs(key, name) {
			found = body[i:vend]
		}
		i = vend
	}
	return found, nil
}

func keyIs(quoted []byte, name string) bool {
	in := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		return string(in) == name
	}
	var k string
	return json.Unmarshal(quoted, &k) == nil && k == name
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	for i < len(b) && strings.IndexByte(",}] \t\r\n", b[i]) < 0 {
		i++
	}
	return i
}
