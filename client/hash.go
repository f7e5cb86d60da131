package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/apiguard/apiguard/internal/wire"
)

// A Field gives one value of a hash signature's input from an outgoing
// request: a member of its JSON body, a header, a query parameter, the
// price set with WithPrice, or a function of one's own (FieldFunc). The
// zero Field is invalid.
//
// A field that is absent (a member missing, null or "", a header or a
// query parameter not sent) is signed as "", so that the server answers
// with its own error, such as the reseller's 400 "Transaction ID is
// required". A value the server would refuse fails the signature instead:
// see ErrInvalidBody and ErrFieldValue.
type Field struct {
	kind fieldKind
	name string                                             // JSON member, canonical header or query parameter
	get  func(r *http.Request, body []byte) (string, error) // funcField
	body bool                                               // funcField: get needs the body
}

type fieldKind uint8

const (
	jsonField fieldKind = iota + 1
	headerField
	queryField
	funcField
)

// JSONField is the string member name at the top level of the request's
// JSON body, as apiguard's BodyField reads it. A body that is not a JSON
// object apiguard reads, or a member that is a number, a boolean, an
// object or an array, fails the signature with ErrInvalidBody. name must
// not be empty.
func JSONField(name string) Field {
	return Field{kind: jsonField, name: name}
}

// HeaderField is the value of the request header name, as apiguard's
// HeaderField reads it. A header sent several times, or whose value starts
// or ends with a space or tab (which the server would not see), fails the
// signature with ErrFieldValue. name must be a valid header name.
func HeaderField(name string) Field {
	return Field{kind: headerField, name: http.CanonicalHeaderKey(name)}
}

// QueryField is the value of the URL query parameter name, as apiguard's
// QueryField reads it. A parameter given several times, or a query that
// does not parse, fails the signature with ErrFieldValue. name must not be
// empty.
func QueryField(name string) Field {
	return Field{kind: queryField, name: name}
}

// PriceField is the price set on the request's context with WithPrice, in
// plain decimal digits (the reseller's order hash takes the product's price
// for the caller's role, which the request body does not carry). A request
// without a price fails the signature.
func PriceField() Field {
	return Field{kind: funcField, get: func(r *http.Request, _ []byte) (string, error) {
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
	return Field{kind: funcField, get: f, body: true}
}

// check returns what is wrong with the field numbered i, if anything.
func (f Field) check(i int) error {
	switch {
	case f.kind == 0:
		return fmt.Errorf("client: hash field %d is the zero Field", i)
	case f.kind == funcField && f.get == nil:
		return fmt.Errorf("client: hash field %d: FieldFunc needs a function", i)
	case f.kind == headerField && !wire.ValidHeaderName(f.name):
		return fmt.Errorf("client: hash field %d: bad header name %q", i, f.name)
	case f.kind != funcField && f.name == "":
		return fmt.Errorf("client: hash field %d has no name", i)
	}
	return nil
}

// describe names the field numbered i in errors.
func (f Field) describe(i int) string {
	switch f.kind {
	case jsonField:
		return fmt.Sprintf("field %d (JSON member %q)", i, f.name)
	case headerField:
		return fmt.Sprintf("field %d (header %s)", i, f.name)
	case queryField:
		return fmt.Sprintf("field %d (query parameter %q)", i, f.name)
	}
	return fmt.Sprintf("field %d (computed)", i)
}

type priceKey struct{}

// WithPrice returns a copy of ctx carrying the price that PriceField signs:
//
//	req, err := http.NewRequestWithContext(client.WithPrice(ctx, 15000), "POST", url, body)
func WithPrice(ctx context.Context, price int64) context.Context {
	return context.WithValue(ctx, priceKey{}, price)
}

// An Option configures a hash Signer (NewHash, NewHMAC, StatusHash,
// OrderHash) or a Session (NewSession). Each option says where it applies;
// given anywhere else it makes the constructor fail with an error that
// names it. The zero Option is invalid.
type Option struct {
	name    string
	hash    func(*hashSigner) error // nil: not for hash Signers
	session func(*Session) error    // nil: not for a Session
}

// WithClock sets the clock: the time SendTime sends, and the time that
// tells a Session when its token expires. The default is time.Now.
func WithClock(now func() time.Time) Option {
	if now == nil {
		err := errors.New("client: WithClock needs a clock")
		return Option{"WithClock", func(*hashSigner) error { return err }, func(*Session) error { return err }}
	}
	return Option{"WithClock",
		func(h *hashSigner) error { h.now = now; return nil },
		func(p *Session) error { p.now = now; return nil }}
}

// SendKey sends the API key, bare, in header as well as signing with it
// (the order endpoint's X-API-Key). The default is not to send it.
func SendKey(header string) Option {
	return Option{"SendKey", func(h *hashSigner) (err error) {
		h.keyHeader, err = sendName("SendKey", header)
		return err
	}, nil}
}

// SendTime sends the time of signing in header as Unix seconds (the order
// endpoint's X-Request-Time). The default is not to send it.
func SendTime(header string) Option {
	return Option{"SendTime", func(h *hashSigner) (err error) {
		h.timeHeader, err = sendName("SendTime", header)
		return err
	}, nil}
}

// SendHeader sends the header name with value on every request, such as
// the client id by which an HMAC server finds the secret ("X-Client-Id").
// It may be given several times, for several headers. The value must be 1
// to 1024 bytes of valid UTF-8 without control characters, and not start
// or end with a space, so that it reaches the server as it is. The default
// is none.
func SendHeader(name, value string) Option {
	return Option{"SendHeader", func(h *hashSigner) error {
		name, err := sendName("SendHeader", name)
		if err != nil {
			return err
		}
		if value == "" || len(value) > wire.MaxCredentialLen || !headerValueOK(value) {
			return fmt.Errorf("client: SendHeader %s: the value must be 1 to %d bytes of UTF-8 without control characters or spaces around it", name, wire.MaxCredentialLen)
		}
		h.headers = append(h.headers, fixedHeader{name, value})
		return nil
	}, nil}
}

// sendName returns the canonical form of the name of a header that the
// option opt sends. It fails on an invalid name, and on Authorization,
// which holds the signature.
func sendName(opt, name string) (string, error) {
	c := http.CanonicalHeaderKey(name)
	if !wire.ValidHeaderName(name) || c == "Authorization" {
		return "", fmt.Errorf("client: %s: bad header name %q", opt, name)
	}
	return c, nil
}

// headerValueOK reports whether v may be signed as the value of a header:
// a valid field value that a server reads as it is, with no space or tab
// at either end (HTTP drops them).
func headerValueOK(v string) bool {
	return wire.ValidFieldValue(v) && (v == "" || v[0] != ' ' && v[len(v)-1] != ' ')
}

// WithBodyLimit sets the longest request body a hash Signer reads; a
// longer one fails the signature with ErrBodyTooLarge. The default is 1
// MiB, the limit of apiguard's hash schemes.
func WithBodyLimit(n int64) Option {
	return Option{"WithBodyLimit", func(h *hashSigner) error {
		if n <= 0 {
			return fmt.Errorf("client: WithBodyLimit must be positive, got %d", n)
		}
		h.maxBody = n
		return nil
	}, nil}
}

// NewHash returns a Signer of hash signatures:
//
//	Authorization: Bearer hex(SHA256(apiKey + field1 + field2 + ...))
//
// in lower-case hex, the fields taken from the request in order. The body,
// when a field needs it, is read once, at most WithBodyLimit bytes, and put back
// byte for byte. A request whose body or fields apiguard's HashSignature
// would refuse is not signed (ErrInvalidBody, ErrFieldValue).
//
// It fails if apiKey is not 1 to 1024 printable ASCII characters without
// spaces, if there is no field, or if a field or an option is invalid.
//
// StatusHash and OrderHash are the reseller's two formulas.
func NewHash(apiKey string, fields []Field, opts ...Option) (Signer, error) {
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
// headers are set before the fields are read. As for NewHash, a request
// the server would refuse is not signed: a field whose value holds a
// newline (or any control character) fails with ErrFieldValue.
//
// It fails if secret is not 1 to 1024 printable ASCII characters without
// spaces, if there is no field, if a field or an option is invalid, or if
// SendKey is given (an HMAC secret sent along protects nothing).
func NewHMAC(secret string, fields []Field, opts ...Option) (Signer, error) {
	if err := checkCredential("HMAC secret", secret); err != nil {
		return nil, err
	}
	return newHashSigner(true, secret, fields, opts)
}

func newHashSigner(mac bool, key string, fields []Field, opts []Option) (Signer, error) {
	if len(fields) == 0 {
		return nil, errors.New("client: a hash needs at least one field")
	}
	h := &hashSigner{hmac: mac, key: key, fields: append([]Field(nil), fields...), now: time.Now, maxBody: 1 << 20}
	for i, f := range h.fields {
		if err := f.check(i); err != nil {
			return nil, err
		}
		switch f.kind {
		case jsonField:
			h.jsonNames = append(h.jsonNames, f.name)
			h.body = true
		case queryField:
			h.query = true
		case funcField:
			h.body = h.body || f.body
		}
	}
	for _, o := range opts {
		if o.name == "" {
			return nil, errors.New("client: the zero Option")
		}
		if o.hash == nil {
			return nil, fmt.Errorf("client: %s does not apply to a hash Signer", o.name)
		}
		if err := o.hash(h); err != nil {
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
func StatusHash(apiKey string, opts ...Option) (Signer, error) {
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
func OrderHash(apiKey string, opts ...Option) (Signer, error) {
	opts = append([]Option{SendKey("X-API-Key"), SendTime("X-Request-Time")}, opts...)
	return NewHash(apiKey, []Field{JSONField("ref_id"), PriceField()}, opts...)
}

type hashSigner struct {
	hmac       bool   // HMAC-SHA256 keyed by key, fields joined by "\n"
	key        string // the API key, or the HMAC secret
	fields     []Field
	jsonNames  []string // the names of the JSON fields, in order
	body       bool     // a field needs the body
	query      bool     // a field is a query parameter
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
	var valArr [4]wire.Value // on the stack for the usual few fields
	vals := slices.Grow(valArr[:0], len(h.fields))[:len(h.fields)]
	if err := h.values(r, body, vals); err != nil {
		return err
	}
	var sum [sha256.Size]byte
	if h.hmac {
		sum = wire.HMACSum(h.key, vals)
	} else {
		sum = wire.HashSum(h.key, vals)
	}
	var out [len("Bearer ") + 2*sha256.Size]byte
	copy(out[:], "Bearer ")
	hex.Encode(out[len("Bearer "):], sum[:])
	r.Header.Set("Authorization", string(out[:]))
	return nil
}

// values sets vals to the values of the fields of r, whose body is body,
// and fails on what apiguard's schemes would refuse.
func (h *hashSigner) values(r *http.Request, body []byte, vals []wire.Value) error {
	var memberArr [4]wire.JSONValue
	members := slices.Grow(memberArr[:0], len(h.jsonNames))[:len(h.jsonNames)]
	if len(members) > 0 {
		if err := wire.JSONFields(body, h.jsonNames, members); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidBody, err)
		}
	}
	var q url.Values
	if h.query {
		var err error
		if q, err = url.ParseQuery(r.URL.RawQuery); err != nil {
			return fmt.Errorf("%w: the URL query does not parse", ErrFieldValue)
		}
	}
	for i, f := range h.fields {
		var vs []string
		switch f.kind {
		case jsonField:
			m := members[0]
			members = members[1:]
			switch {
			case m.Missing():
			case !m.IsString:
				return fmt.Errorf("%w: %s is not a string", ErrInvalidBody, f.describe(i))
			default:
				vals[i].B = m.Str.Decode(nil)
			}
		case headerField:
			vs = r.Header[f.name]
		case queryField:
			vs = q[f.name]
		case funcField:
			v, err := f.get(r, body)
			if err != nil {
				return err
			}
			vals[i].S = v
		}
		switch {
		case len(vs) > 1:
			return fmt.Errorf("%w: %s is given %d times", ErrFieldValue, f.describe(i), len(vs))
		case len(vs) == 1:
			vals[i].S = vs[0]
		}
		if !wire.ValidFieldValue(vals[i].B) || !wire.ValidFieldValue(vals[i].S) {
			return fmt.Errorf("%w: %s holds control characters or invalid UTF-8", ErrFieldValue, f.describe(i))
		}
		if f.kind == headerField && !headerValueOK(vals[i].S) {
			return fmt.Errorf("%w: %s starts or ends with a space, which the server would not see", ErrFieldValue, f.describe(i))
		}
	}
	return nil
}

// ErrInvalidBody is returned by a hash or HMAC Signer with a JSONField
// when apiguard's schemes would refuse the request body with their
// ErrInvalidBody (400): the body is not one JSON object they read (I-JSON
// strings, nesting at most 512 deep, at most 1000 top-level members, no
// two top-level names that encoding/json would take for one, such as
// "ref_id" and "REF_ID"), or a signed member is not a string (nor null).
var ErrInvalidBody = errors.New("client: request body is not a JSON object the server reads")

// ErrFieldValue is returned by a hash or HMAC Signer when apiguard's
// schemes would refuse a field of the request (their ErrInvalidField,
// 400): its value holds a control character (a newline would make the
// HMAC message ambiguous) or invalid UTF-8, the header or query parameter
// is given several times, or the query does not parse. It is also returned
// for a header whose value starts or ends with a space or tab, which HTTP
// drops on the way: the server would check the signature of another value.
var ErrFieldValue = errors.New("client: a signed field holds a value the server refuses")
