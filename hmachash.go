package apiguard

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/apiguard/apiguard/internal/wire"
)

// defaultHashBodyLimit is the most a hash signature reads of a request
// body unless WithBodyLimit says otherwise: 1 MiB.
const defaultHashBodyLimit = 1 << 20

// A Signer says where a hash signature finds the key it was made with:
// sent in a header (SignerFromHeader) or held for the client the request
// names (SignerFromOwner). The zero Signer is not usable.
type Signer struct {
	keys   KeyStore
	header string // canonical; SignerFromHeader only
	owner  func(r *http.Request, fields []string) (string, error)
}

// SignerFromHeader returns the Signer of a key sent as it is in the header
// name (the reseller's X-API-Key) and looked up in keys, where it must be a
// live server key (not Client.Publishable). The header is required: when
// it is absent the request is refused as HashSignature describes. Several headers of that name, or a
// malformed key, are ErrInvalidKey; an unknown key is ErrInvalidKey.
//
// The key travels with every request, so only HashSignature takes a
// SignerFromHeader: HMACSignature needs a secret that is never sent.
func SignerFromHeader(keys KeyStore, name string) Signer {
	return Signer{keys: keys, header: http.CanonicalHeaderKey(name)}
}

// SignerFromOwner returns the Signer of keys that are never sent: owner
// names the client whose live keys (keys.Secrets, keys stored with
// KeepSecret) may have made the signature, and each of them is tried. The reseller's
// status route finds the owner of the transaction named in the body.
//
// owner gets the request, whose Body yields the whole body (the handler
// still gets it whole), and the values of the signature's fields, in the
// order of the fields ("" for computed ones, which need a client first).
// An error from owner refuses the request as it is (return an *Error, such
// as a 404 "Transaction not found", or a sentinel; any other error is a
// 500). An owner with no live secret ("" or an unknown id) makes every
// signature a mismatch.
func SignerFromOwner(keys KeyStore, owner func(r *http.Request, fields []string) (clientID string, err error)) Signer {
	return Signer{keys: keys, owner: owner}
}

type fieldKind uint8

const (
	bodyField fieldKind = iota + 1
	headerField
	queryField
	pathField
	computedField
)

// A Field is one value a hash signature covers: a top-level string of the
// JSON body, a header, a query parameter, a path value, or a value the
// server computes. A signature covers its fields in the order given. The
// zero Field is not usable.
type Field struct {
	kind    fieldKind
	name    string
	missing error
	compute func(r *http.Request, c *Client) (string, error)
}

// BodyField returns the Field of the string member name of the JSON object
// in the request body (the reseller's "trx_id", "ref_id").
//
// When the member is absent, null or "", or the body is empty, the request
// is refused with missing, which is typically the route's own *Error (the
// reseller's 400 "Transaction ID is required"); a nil missing means
// ErrInvalidField. A body that is not a JSON object, a member that is not a
// string, and duplicate member names are ErrInvalidBody (400); see
// HashSignature for what the body must be.
func BodyField(name string, missing error) Field {
	return Field{kind: bodyField, name: name, missing: missing}
}

// HeaderField returns the Field of the header name. When it is absent or
// empty the request is refused with missing, ErrMissingHeaders (401) if
// nil. Several headers of that name are ErrInvalidField.
func HeaderField(name string, missing error) Field {
	return Field{kind: headerField, name: http.CanonicalHeaderKey(name), missing: missing}
}

// QueryField returns the Field of the URL query parameter name. When it is
// absent or empty the request is refused with missing, ErrInvalidField if
// nil. A parameter given twice, or a query that does not parse, is
// ErrInvalidField.
func QueryField(name string, missing error) Field {
	return Field{kind: queryField, name: name, missing: missing}
}

// PathField returns the Field of the path value name, as
// http.Request.PathValue gives it (a wildcard of a ServeMux pattern). When
// it is empty the request is refused with missing, ErrInvalidField if nil.
func PathField(name string, missing error) Field {
	return Field{kind: pathField, name: name, missing: missing}
}

// ComputedField returns a Field the server computes from the request and
// the client whose key is tried, such as the reseller's price, which
// depends on the product ordered and the client's role. compute gets the
// request, whose Body yields the whole body (the handler still gets it
// whole), and is called once per key tried (once, unless a client has
// several live secrets). Its value is used as it is, "" included; a value
// with control characters or invalid UTF-8 is a 500. An error from compute
// refuses the request as it is (return an *Error, such as a 404 "Product
// not found", or a sentinel; any other error is a 500).
func ComputedField(compute func(r *http.Request, c *Client) (string, error)) Field {
	return Field{kind: computedField, compute: compute}
}

// HashSignature returns the Scheme of the Reseller API's hash signatures
// (the game top-up reseller): the request carries
//
//	Authorization: Bearer hex(SHA256(key + field1 + field2 + ...))
//
// where key is the client's API key and the fields are the values of
// fields, concatenated as they are. The status route signs
// SHA256(api_key + trx_id); the order route SHA256(api_key + ref_id +
// price). The digest is read in hex of either case.
//
// The plain concatenation is kept for compatibility and is weak: nothing
// separates the fields, so "REF1"+"14500" and "REF11"+"4500" have one
// signature; and SHA256(secret + message) is open to length extension,
// which this package blocks only by refusing field values with control
// characters (the extension's padding holds 0x00 bytes). New APIs should
// use HMACSignature.
//
// A request is checked in this order, and refused with the first failure:
//
//  1. The headers the scheme requires are present and not empty:
//     Authorization, the header of a SignerFromHeader, and those of
//     WithRequiredHeaders. When Authorization is the only one its absence
//     is ErrMissingKey (the reseller's 401 "Unauthorized"); otherwise the
//     absence of any is ErrMissingHeaders (401 "Unauthorized: Missing
//     required headers").
//  2. Authorization is one header of the form `Bearer <digest>`, else
//     ErrInvalidAuthorization (401, "Unauthorized" in the Reseller
//     dialect).
//  3. The key sent in the header of a SignerFromHeader is a live server
//     key, else ErrInvalidKey.
//  4. The body, when a field or function needs it, is read whole (at most
//     WithBodyLimit, 1 MiB by default) and parsed once; the handler gets
//     it byte for byte.
//  5. Each field of the request has a value, else its missing error.
//  6. For SignerFromOwner, owner names the client, whose live secrets are
//     tried.
//  7. The digest matches the one computed with one of the keys, each
//     compared in constant time after hex decoding; a digest of the wrong
//     length or not in hex is a mismatch too: ErrHashMismatch (401
//     "Invalid hash combination").
//
// The body of a request with body fields must be a JSON object (RFC 8259)
// that encoding/json accepts and no handler could read differently: valid
// UTF-8 strings without lone surrogate escapes (I-JSON, RFC 7493), no two
// top-level names equal once unescaped and case-folded as encoding/json
// matches struct fields ({"ref_id":"A","REF_ID":"B"} would let a handler
// see a value the signature does not cover), nesting at most 512 deep, at
// most 1000 top-level members. Anything else is ErrInvalidBody (400), an
// empty body aside: it lacks every field. Signed values of the request
// must be valid UTF-8 without control characters, else ErrInvalidField.
//
// Its options are WithBodyLimit and WithRequiredHeaders. The Scheme's
// configuration is checked by its Validate method, which New calls: it
// fails on a zero Signer, a nil KeyStore or function, no fields, a zero
// Field, an empty name, a bad header name, or an option that is out of
// range or does not apply to a hash scheme.
func HashSignature(signer Signer, fields []Field, opts ...Option) Scheme {
	return newHashScheme(false, signer, fields, opts)
}

// HMACSignature returns the Scheme of HMAC signatures, recommended for new
// APIs: the request carries
//
//	Authorization: Bearer hex(HMAC-SHA256(secret, field1 + "\n" + field2 + ...))
//
// where secret is a key of the client that signer (a SignerFromOwner)
// names, never sent over the wire, and the fields are joined by newlines. Field values
// cannot hold a newline (or any control character: ErrInvalidField), so
// the canonical string is unambiguous, and HMAC is not open to length
// extension. Sign a timestamp (HeaderField("X-Request-Time", nil)) and
// check its window with another wrapper to bound replays. Everything else
// is as for HashSignature.
func HMACSignature(signer Signer, fields []Field, opts ...Option) Scheme {
	return newHashScheme(true, signer, fields, opts)
}

type hashScheme struct {
	hmac     bool
	src      Signer
	fields   []Field
	required []string // headers that must be present; Authorization first
	limit    int64

	bodyNames []string // distinct names of body fields
	bodyIdx   []int    // per field, its index in bodyNames, or -1
	readBody  bool     // the body is read (for fields or functions)
	query     bool     // some field is a query parameter

	err error // the configuration error, if any
}

func newHashScheme(mac bool, key Signer, fields []Field, opts []Option) *hashScheme {
	h := &hashScheme{
		hmac:     mac,
		src:      key,
		fields:   append([]Field(nil), fields...),
		required: []string{"Authorization"},
		limit:    defaultHashBodyLimit,
	}
	if key.header != "" {
		h.required = append(h.required, key.header)
	}
	c, err := configure(toHash, opts)
	if err != nil {
		h.err = err
		return h
	}
	if c.bodyLimit != 0 {
		h.limit = c.bodyLimit
	}
	h.required = append(h.required, c.required...)
	h.err = h.check()
	return h
}

// check validates the configuration and precomputes what requests need.
func (h *hashScheme) check() error {
	name := "HashSignature"
	if h.hmac {
		name = "HMACSignature"
	}
	switch {
	case checkKeyStore(name, h.src.keys) != nil:
		return checkKeyStore(name, h.src.keys)
	case h.src.header == "" && h.src.owner == nil:
		return fmt.Errorf("apiguard: %s needs SignerFromHeader or SignerFromOwner", name)
	case h.hmac && h.src.header != "":
		return errors.New("apiguard: HMACSignature needs SignerFromOwner: an HMAC key sent in a header protects nothing")
	case h.src.header == "Authorization":
		return fmt.Errorf("apiguard: %s: the key cannot be sent in Authorization, which holds the digest", name)
	case len(h.fields) == 0:
		return fmt.Errorf("apiguard: %s needs at least one field", name)
	}
	for _, hd := range h.required {
		if !wire.ValidHeaderName(hd) {
			return fmt.Errorf("apiguard: %s: bad header name %q", name, hd)
		}
	}
	h.readBody = h.src.owner != nil
	h.bodyIdx = make([]int, len(h.fields))
	for i, f := range h.fields {
		h.bodyIdx[i] = -1
		switch f.kind {
		case 0:
			return fmt.Errorf("apiguard: %s: field %d is the zero Field", name, i)
		case computedField:
			if f.compute == nil {
				return fmt.Errorf("apiguard: %s: field %d: ComputedField needs a function", name, i)
			}
			h.readBody = true
			continue
		case headerField:
			if !wire.ValidHeaderName(f.name) {
				return fmt.Errorf("apiguard: %s: field %d: bad header name %q", name, i, f.name)
			}
		case queryField:
			h.query = true
		case bodyField:
			h.readBody = true
			j := slices.Index(h.bodyNames, f.name)
			if j < 0 {
				j = len(h.bodyNames)
				h.bodyNames = append(h.bodyNames, f.name)
			}
			h.bodyIdx[i] = j
		}
		if f.name == "" {
			return fmt.Errorf("apiguard: %s: field %d has no name", name, i)
		}
	}
	return nil
}

func (h *hashScheme) Validate() error { return h.err }

// Challenge gives the WWW-Authenticate value of 401 responses.
func (h *hashScheme) Challenge() string { return "Bearer" }

// maxFields is how many field values a request keeps on the stack.
const maxFields = 4

func (h *hashScheme) missing() error {
	if len(h.required) > 1 {
		return ErrMissingHeaders
	}
	return ErrMissingKey
}

// Authenticate implements Scheme.
func (h *hashScheme) Authenticate(r *http.Request) (*Client, error) {
	if h.err != nil {
		return nil, h.err // a Scheme used without New: a 500
	}
	// h.required is Authorization, then the signer's header if any, then others.
	var auth, keyVals []string
	for i, name := range h.required {
		vs := r.Header[name]
		if len(vs) == 0 || len(vs) == 1 && vs[0] == "" {
			return nil, h.missing()
		}
		switch {
		case i == 0:
			auth = vs
		case i == 1 && h.src.header != "":
			keyVals = vs
		}
	}
	if len(auth) != 1 {
		return nil, ErrInvalidAuthorization
	}
	digest, ok := cutScheme(auth[0], "Bearer")
	switch {
	case !ok:
		return nil, ErrInvalidAuthorization
	case digest == "":
		return nil, h.missing()
	}

	var cands []Secret
	var one [1]Secret
	if h.src.header != "" {
		if len(keyVals) != 1 || !wire.ValidCredential(keyVals[0]) {
			return nil, ErrInvalidKey
		}
		c, err := lookupKey(r, h.src.keys, keyVals[0], false)
		if err != nil {
			return nil, err
		}
		one[0] = Secret{Key: keyVals[0], Client: c}
		cands = one[:]
	}

	var valArr [maxFields]wire.Value
	vals := valArr[:0]
	if len(h.fields) > maxFields {
		vals = make([]wire.Value, 0, len(h.fields))
	}
	vals = vals[:len(h.fields)]
	if h.readBody {
		body, err := ReadBody(r, h.limit) // r.Body now yields the kept bytes, for functions
		if err != nil {
			return nil, err
		}
		if err := h.bodyValues(body, vals); err != nil {
			return nil, err
		}
	}
	if err := h.requestValues(r, vals); err != nil {
		return nil, err
	}

	if h.src.owner != nil {
		strs := make([]string, len(vals))
		for i, v := range vals {
			if v.B != nil {
				strs[i] = string(v.B)
			} else {
				strs[i] = v.S
			}
		}
		rewind(r)
		id, err := h.src.owner(r, strs)
		if err != nil {
			return nil, err
		}
		if id != "" {
			secrets, err := h.src.keys.Secrets(r.Context(), id)
			if err != nil {
				return nil, fmt.Errorf("%w: key store: %w", ErrUnavailable, err)
			}
			for _, sc := range secrets {
				if sc.Client != nil && !sc.Client.Publishable && sc.Key != "" {
					cands = append(cands, sc)
				}
			}
		}
	}

	var presented [sha256.Size]byte
	valid := decodeDigest(&presented, digest)
	if len(cands) == 0 {
		// No key to try: spend about the time of one, and refuse.
		sha256.Sum256([]byte(digest))
		return nil, ErrHashMismatch
	}
	match, idx := 0, 0
	for i, c := range cands {
		d, err := h.digest(r, c, vals)
		if err != nil {
			return nil, err
		}
		eq := subtle.ConstantTimeCompare(d[:], presented[:]) & valid
		idx = subtle.ConstantTimeSelect(eq&^match, i, idx)
		match |= eq
	}
	if match != 1 {
		return nil, ErrHashMismatch
	}
	return cands[idx].Client, nil
}

// bodyValues parses body and sets the values of the body fields.
func (h *hashScheme) bodyValues(body []byte, vals []wire.Value) error {
	if len(h.bodyNames) == 0 {
		return nil
	}
	var jvArr [maxFields]wire.JSONValue
	jv := jvArr[:0]
	if len(h.bodyNames) > maxFields {
		jv = make([]wire.JSONValue, 0, len(h.bodyNames))
	}
	jv = jv[:len(h.bodyNames)]
	if !blank(body) {
		if err := wire.JSONFields(body, h.bodyNames, jv); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidBody, err)
		}
	}
	for i, f := range h.fields {
		if f.kind != bodyField {
			continue
		}
		v := jv[h.bodyIdx[i]]
		switch {
		case v.Missing():
			return f.missingErr()
		case !v.IsString:
			return fmt.Errorf("%w: member %q is not a string", ErrInvalidBody, f.name)
		}
		b := v.Str.Decode(nil)
		if !wire.ValidFieldValue(b) {
			return ErrInvalidField
		}
		vals[i].B = b
	}
	return nil
}

// requestValues sets the values of the header, query and path fields.
func (h *hashScheme) requestValues(r *http.Request, vals []wire.Value) error {
	var q url.Values
	if h.query {
		var err error
		if q, err = url.ParseQuery(r.URL.RawQuery); err != nil {
			return ErrInvalidField
		}
	}
	for i, f := range h.fields {
		var vs []string
		switch f.kind {
		case headerField:
			vs = r.Header[f.name]
		case queryField:
			vs = q[f.name]
		case pathField:
			if v := r.PathValue(f.name); v != "" {
				vs = []string{v}
			}
		default:
			continue
		}
		switch {
		case len(vs) == 0 || len(vs) == 1 && vs[0] == "":
			return f.missingErr()
		case len(vs) > 1 || !wire.ValidFieldValue(vs[0]):
			return ErrInvalidField
		}
		vals[i].S = vs[0]
	}
	return nil
}

func (f *Field) missingErr() error {
	switch {
	case f.missing != nil:
		return f.missing
	case f.kind == headerField:
		return ErrMissingHeaders
	}
	return ErrInvalidField
}

// digest computes the signature of vals with the key of c, setting the
// values of the computed fields (which depend on the client) first.
func (h *hashScheme) digest(r *http.Request, c Secret, vals []wire.Value) ([sha256.Size]byte, error) {
	for i, f := range h.fields {
		if f.kind == computedField {
			v, err := computeField(r, f, c.Client)
			if err != nil {
				return [sha256.Size]byte{}, err
			}
			vals[i] = wire.Value{S: v}
		}
	}
	if h.hmac {
		return wire.HMACSum(c.Key, vals), nil
	}
	return wire.HashSum(c.Key, vals), nil
}

func computeField(r *http.Request, f Field, c *Client) (string, error) {
	rewind(r)
	v, err := f.compute(r, c)
	if err != nil {
		return "", err
	}
	if !wire.ValidFieldValue(v) {
		return "", errors.New("apiguard: a ComputedField returned control characters or invalid UTF-8")
	}
	return v, nil
}

// decodeDigest decodes a 64-digit hex digest of either case into dst and
// returns 1, or returns 0 if s is not one.
func decodeDigest(dst *[sha256.Size]byte, s string) int {
	if len(s) != 2*sha256.Size {
		return 0
	}
	for i := range dst {
		hi, lo := unhex(s[2*i]), unhex(s[2*i+1])
		if hi > 0xf || lo > 0xf {
			return 0
		}
		dst[i] = hi<<4 | lo
	}
	return 1
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}

// blank reports whether b holds only JSON white space.
func blank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

var _ Scheme = (*hashScheme)(nil)
