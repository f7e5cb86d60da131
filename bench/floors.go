package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/subtle"
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

// BearerFloor is the floor of Bearer: the SHA-256 of the presented key, a
// map lookup by digest, a constant-time compare of the digests, and the
// client handed to next in the request's context (r.WithContext). keys
// maps each key to its client id.
func BearerFloor(keys map[string]string, next http.Handler) http.Handler {
	type entry struct {
		digest [sha256.Size]byte
		client *FloorClient
	}
	m := make(map[[sha256.Size]byte]*entry, len(keys))
	for k, id := range keys {
		d := sha256.Sum256([]byte(k))
		m[d] = &entry{digest: d, client: &FloorClient{ID: id}}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || key == "" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		d := sha256.Sum256([]byte(key))
		e := m[d]
		if e == nil || subtle.ConstantTimeCompare(e.digest[:], d[:]) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientKey{}, e.client)))
	})
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-Api-Key")
		c, ok := clients[key]
		if !ok || r.ContentLength < 0 || r.ContentLength > 1<<20 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		body := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		ref := jsonString(body, `"ref_id":"`)
		var buf [256]byte
		msg := append(append(append(buf[:0], key...), ref...), price...)
		d := sha256.Sum256(msg)
		var p [sha256.Size]byte
		sig, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		n, err := hex.Decode(p[:], []byte(sig))
		if err != nil || n != len(p) || subtle.ConstantTimeCompare(d[:], p[:]) != 1 {
			http.Error(w, "Invalid hash combination", http.StatusUnauthorized)
			return
		}
		rb := &bodyReader{}
		rb.Reset(body)
		r = r.WithContext(context.WithValue(r.Context(), clientKey{}, c))
		r.Body = rb
		next.ServeHTTP(w, r)
	})
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
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientKey{}, c)))
	})
}
