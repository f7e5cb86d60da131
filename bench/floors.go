package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// The floors: each does the job of an apiguard wrapper, by hand, as leanly
// as it can be done, and hands the handler what apiguard hands it. They
// are what the ratios of RESULTS.md are measured against. None is bounded
// or configurable as apiguard is: a floor is a measure, not a library.

type clientKey struct{}

// FloorClient is the identity the floors hand to the handler.
type FloorClient struct{ ID string }

// BearerFloor is the floor of Bearer: the client of the presented key
// found by digestLookup, and handed to next in the request's context
// (r.WithContext). keys maps each key to its client id.
func BearerFloor(keys map[string]string, next http.Handler) http.Handler {
	find := digestLookup(keys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || key == "" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		c, ok := find(key)
		if !ok {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, handOn(r, c))
	})
}

// floorCtx is the context a floor hands on: r's, with the floor's value
// under clientKey.
type floorCtx struct {
	context.Context
	v any
}

func (c *floorCtx) Value(key any) any {
	if key == (clientKey{}) {
		return c.v
	}
	return c.Context.Value(key)
}

// floorCarrier is a request and its context in one allocation, as
// apiguard allocates a request and its state.
type floorCarrier struct {
	ctx floorCtx
	req http.Request
}

// handOn returns a copy of r whose context carries v under clientKey, in
// one allocation: what r.WithContext(context.WithValue(...)) does in two.
func handOn(r *http.Request, v any) *http.Request {
	c := &floorCarrier{ctx: floorCtx{Context: r.Context(), v: v}}
	c.req = *r.WithContext(&c.ctx)
	return &c.req
}

// digestLookup returns the key lookup of the floors that keep digests, as
// apiguard's key stores do: the SHA-256 of the presented key, made from a
// copy on the stack (no allocation, as apiguard makes it), one map lookup
// by digest, and a constant-time compare of the digests. keys maps each
// key to its client id.
func digestLookup(keys map[string]string) func(key string) (*FloorClient, bool) {
	type entry struct {
		digest [sha256.Size]byte
		client *FloorClient
	}
	m := make(map[[sha256.Size]byte]*entry, len(keys))
	for k, id := range keys {
		d := sha256.Sum256([]byte(k))
		m[d] = &entry{digest: d, client: &FloorClient{ID: id}}
	}
	return func(key string) (*FloorClient, bool) {
		var buf [128]byte
		var d [sha256.Size]byte
		if len(key) <= len(buf) {
			d = sha256.Sum256(append(buf[:0], key...))
		} else {
			d = sha256.Sum256([]byte(key))
		}
		e := m[d]
		if e == nil || subtle.ConstantTimeCompare(e.digest[:], d[:]) != 1 {
			return nil, false
		}
		return e.client, true
	}
}

// Canonical names of the rate-limit headers apiguard writes
// (draft-ietf-httpapi-ratelimit-headers).
const (
	hdrLimit     = "Ratelimit-Limit"
	hdrRemaining = "Ratelimit-Remaining"
	hdrReset     = "Ratelimit-Reset"
)

// smallInts holds a one-element slice for each of 0..99, shared by every
// response: header values the floor writes without allocating.
var smallInts = func() [100][]string {
	var t [100][]string
	for i := range t {
		t[i] = []string{strconv.Itoa(i)}
	}
	return t
}()

func intValue(n int64) []string {
	if n >= 0 && n < int64(len(smallInts)) {
		return smallInts[n]
	}
	return []string{strconv.FormatInt(n, 10)}
}

// RateFloor is the floor of RateLimit(ByIP()): a map of *rate.Limiter by
// the client's host (net.SplitHostPort of RemoteAddr), guarded by one
// mutex, with limit events per second and a burst of burst. With headers,
// it writes the three headers apiguard writes (RateLimit-Limit,
// RateLimit-Remaining, RateLimit-Reset: the seconds until the bucket is
// full, rounded up), taking values 0 to 99 from a table and so allocating
// nothing for them. The map is never pruned.
func RateFloor(limit rate.Limit, burst int, headers bool, next http.Handler) http.Handler {
	var mu sync.Mutex
	m := make(map[string]*rate.Limiter)
	limitValue := intValue(int64(burst))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			http.Error(w, "bad address", http.StatusBadRequest)
			return
		}
		now := time.Now()
		mu.Lock()
		lim := m[host]
		if lim == nil {
			lim = rate.NewLimiter(limit, burst)
			m[host] = lim
		}
		mu.Unlock()
		ok := lim.AllowN(now, 1)
		if headers {
			tokens := lim.TokensAt(now)
			remaining := max(int64(tokens), 0)
			reset := int64(math.Ceil((float64(burst) - tokens) / float64(limit)))
			h := w.Header()
			h[hdrLimit], h[hdrRemaining], h[hdrReset] = limitValue, intValue(remaining), intValue(max(reset, 0))
		}
		if !ok {
			http.Error(w, "too many requests", http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bodyReader is the body the hash floor hands to the handler.
type bodyReader struct{ bytes.Reader }

func (*bodyReader) Close() error { return nil }

// HashFloor is the floor of the Reseller order route's hash signature,
// SHA256(api_key + ref_id + price) in hex in Authorization: Bearer, with
// the key in X-API-Key: the key's client found in a map; the body copied
// into one buffer of its Content-Length; ref_id found by a byte search
// (not a JSON parse); the digest computed, the presented one hex-decoded
// and the two compared in constant time; the client and the body handed
// to next. keys maps each key to its client id; price gives the price of
// the order (apiguard's ComputedField).
func HashFloor(keys map[string]string, price string, next http.Handler) http.Handler {
	clients := make(map[string]*FloorClient, len(keys))
	for k, id := range keys {
		clients[k] = &FloorClient{ID: id}
	}
	find := func(key string) (*FloorClient, bool) {
		c, ok := clients[key]
		return c, ok
	}
	ref := func(body []byte) ([]byte, bool) { return jsonString(body, `"ref_id":"`), true }
	return hashFloor(find, ref, price, next)
}

// hashFloor is the work HashFloor and HashFloorStrict share: find gives
// the client of the key in X-API-Key, ref reads ref_id from the body, and
// the rest is one for both.
func hashFloor(find func(key string) (*FloorClient, bool), ref func(body []byte) ([]byte, bool), price string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-Api-Key")
		c, ok := find(key)
		if !ok || r.ContentLength < 0 || r.ContentLength > 1<<20 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		// A small body comes in the allocation of the request handed on,
		// with its reader, as apiguard keeps it; a larger one in a buffer
		// of its own.
		var sc *smallCarrier
		var body []byte
		if r.ContentLength <= smallFloorBody {
			sc = new(smallCarrier)
			body = sc.buf[:r.ContentLength]
		} else {
			body = make([]byte, r.ContentLength)
		}
		if _, err := io.ReadFull(r.Body, body); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		refID, ok := ref(body)
		if !ok {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		var buf [256]byte
		msg := append(append(append(buf[:0], key...), refID...), price...)
		d := sha256.Sum256(msg)
		var p [sha256.Size]byte
		sig, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		n, err := hex.Decode(p[:], []byte(sig))
		if err != nil || n != len(p) || subtle.ConstantTimeCompare(d[:], p[:]) != 1 {
			http.Error(w, "Invalid hash combination", http.StatusUnauthorized)
			return
		}
		if sc == nil {
			r = handOn(r, c)
			rb := &bodyReader{}
			rb.Reset(body)
			r.Body = rb
		} else {
			r = sc.handOn(r, c, body)
		}
		next.ServeHTTP(w, r)
	})
}

// smallFloorBody is the most bytes of a body a hash floor keeps in a
// smallCarrier: 256, so that it fills a 640-byte allocation with the
// runtime's header (apiguard keeps up to 256 bytes in 768).
const smallFloorBody = 256

// smallCarrier is a floorCarrier with a small body and its reader.
type smallCarrier struct {
	floorCarrier
	rd  bodyReader
	buf [smallFloorBody]byte
}

// handOn is the package's handOn for a request whose body, a slice of
// sc.buf, is handed on with it: the request, its context and the body's
// reader all in sc. (A function of its own, so that r.WithContext is
// inlined and its copy made in sc, not allocated.)
func (sc *smallCarrier) handOn(r *http.Request, v any, body []byte) *http.Request {
	sc.ctx = floorCtx{Context: r.Context(), v: v}
	sc.req = *r.WithContext(&sc.ctx)
	sc.rd.Reset(body)
	sc.req.Body = &sc.rd
	return &sc.req
}

// HashFloorStrict is HashFloor with the two checks apiguard's hash scheme
// makes for its safety and HashFloor leaves out, each as leanly as a floor
// may: the key's client is found by digestLookup, as BearerFloor finds it
// (a lookup whose time says nothing of the secret), and ref_id is
// read by strictRefID, one pass over the whole body, so that the value
// signed is the one a handler decoding the body sees. It still checks less
// than apiguard does (see strictRefID).
func HashFloorStrict(keys map[string]string, price string, next http.Handler) http.Handler {
	return hashFloor(digestLookup(keys), strictRefID, price, next)
}

// strictRefID returns the raw text of the string value of the top-level
// member "ref_id" of body, which must be one JSON object, in one pass over
// it: the least a hash check must do to sign the value a handler decoding
// the body sees. It is leaner than apiguard's reader: it leaves UTF-8,
// escape sequences and the form of numbers unchecked, and looks for a
// second ref_id by its exact bytes only (apiguard also refuses any two
// names that encoding/json would fold together).
func strictRefID(body []byte) ([]byte, bool) {
	p := leanJSON{b: body}
	p.ws()
	if !p.eat('{') {
		return nil, false
	}
	var ref []byte
	found := false
	p.ws()
	if p.eat('}') {
		return nil, false
	}
	for {
		p.ws()
		name, ok := p.str()
		if !ok {
			return nil, false
		}
		p.ws()
		if !p.eat(':') {
			return nil, false
		}
		p.ws()
		if string(name) == "ref_id" {
			if found || p.i >= len(p.b) || p.b[p.i] != '"' {
				return nil, false
			}
			if ref, ok = p.str(); !ok {
				return nil, false
			}
			found = true
		} else if !p.value(0) {
			return nil, false
		}
		p.ws()
		if p.eat('}') {
			break
		}
		if !p.eat(',') {
			return nil, false
		}
	}
	p.ws()
	return ref, found && p.i == len(p.b)
}

// leanJSON is strictRefID's reader.
type leanJSON struct {
	b []byte
	i int
}

func (p *leanJSON) ws() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *leanJSON) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads the string at p.i: its end is the first quote after an even
// run of backslashes, found with bytes.IndexByte; no byte of it may be a
// control character.
func (p *leanJSON) str() ([]byte, bool) {
	if !p.eat('"') {
		return nil, false
	}
	start, i := p.i, p.i
	for {
		q := bytes.IndexByte(p.b[i:], '"')
		if q < 0 || hasControl(p.b[i:i+q]) {
			return nil, false
		}
		n := 0
		for n < q && p.b[i+q-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			p.i = i + q + 1
			return p.b[start : i+q], true
		}
		i += q + 1
	}
}

// hasControl reports whether a byte of b is below 0x20, 32 at a time:
// (x - 0x20*lo) &^ x & hi flags such a byte, and nothing when there is
// none.
func hasControl(b []byte) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	var acc uint64
	i := 0
	for ; i+32 <= len(b); i += 32 {
		w := b[i : i+32 : i+32]
		x0, x1 := binary.LittleEndian.Uint64(w[0:]), binary.LittleEndian.Uint64(w[8:])
		x2, x3 := binary.LittleEndian.Uint64(w[16:]), binary.LittleEndian.Uint64(w[24:])
		acc |= (x0-0x20*lo)&^x0 | (x1-0x20*lo)&^x1 | (x2-0x20*lo)&^x2 | (x3-0x20*lo)&^x3
	}
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		acc |= (x - 0x20*lo) &^ x
	}
	if acc&hi != 0 {
		return true
	}
	for ; i < len(b); i++ {
		if b[i] < 0x20 {
			return true
		}
	}
	return false
}

// value reads one value, objects and arrays at most 512 deep.
func (p *leanJSON) value(depth int) bool {
	if p.i >= len(p.b) || depth > 512 {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		_, ok := p.str()
		return ok
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		p.i++
		p.ws()
		if p.eat(end) {
			return true
		}
		for {
			p.ws()
			if c == '{' {
				if _, ok := p.str(); !ok {
					return false
				}
				p.ws()
				if !p.eat(':') {
					return false
				}
				p.ws()
			}
			if !p.value(depth + 1) {
				return false
			}
			p.ws()
			if p.eat(end) {
				return true
			}
			if !p.eat(',') {
				return false
			}
		}
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	}
	start := p.i
	for p.i < len(p.b) && strings.IndexByte("0123456789+-.eE", p.b[p.i]) >= 0 {
		p.i++
	}
	return p.i > start
}

func (p *leanJSON) lit(s string) bool {
	if !bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		return false
	}
	p.i += len(s)
	return true
}

// jsonString returns the bytes after prefix up to the next quote, or nil.
func jsonString(body []byte, prefix string) []byte {
	i := bytes.Index(body, []byte(prefix))
	if i < 0 {
		return nil
	}
	v := body[i+len(prefix):]
	if j := bytes.IndexByte(v, '"'); j >= 0 {
		return v[:j]
	}
	return nil
}

// floorClaims are the claims the session floor decodes and checks: its
// dates are values, so decoding allocates nothing for them.
type floorClaims struct {
	Issuer    string          `json:"iss"`
	Audience  string          `json:"aud"`
	Subject   string          `json:"sub"`
	SessionID string          `json:"sid"`
	ExpiresAt jwt.NumericDate `json:"exp"`
	IssuedAt  jwt.NumericDate `json:"iat"`
}

func dateOrNil(d *jwt.NumericDate) *jwt.NumericDate {
	if d.IsZero() {
		return nil
	}
	return d
}

func (c *floorClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return dateOrNil(&c.ExpiresAt), nil
}
func (c *floorClaims) GetIssuedAt() (*jwt.NumericDate, error)  { return dateOrNil(&c.IssuedAt), nil }
func (c *floorClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (c *floorClaims) GetIssuer() (string, error)              { return c.Issuer, nil }
func (c *floorClaims) GetSubject() (string, error)             { return c.Subject, nil }
func (c *floorClaims) GetAudience() (jwt.ClaimStrings, error) {
	if c.Audience == "" {
		return nil, nil
	}
	return jwt.ClaimStrings{c.Audience}, nil
}

// SessionFloor is the floor of session-token verification: a bare
// golang-jwt parse of the Bearer token, ES256 only, verified with pub,
// with claims validation (exp required, iat not in the future, issuer and
// audience name, 1 s of leeway), and the claims handed to next in the
// request's context.
func SessionFloor(pub *ecdsa.PublicKey, name string, next http.Handler) http.Handler {
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(name),
		jwt.WithAudience(name),
		jwt.WithLeeway(time.Second),
	)
	keyfunc := func(*jwt.Token) (any, error) { return pub, nil }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		c := new(floorClaims)
		if _, err := p.ParseWithClaims(tok, c, keyfunc); err != nil || c.Subject == "" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, handOn(r, c))
	})
}
