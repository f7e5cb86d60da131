package client_test

// Servers that implement the seed formats the client signs for, built on
// the foundation (Guard, Scheme, dialects), for the schemes whose server
// wrappers live in other issues: the reseller's hash signatures (seed 001)
// and 88Pay's token flow (seed 004). Once the real wrappers are merged, the
// round trips of roundtrip_test.go run against them too.

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
)

// clock is a settable clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func mustStore(t testing.TB, specs ...apiguard.KeySpec) *apiguard.MemoryKeyStore {
	t.Helper()
	s, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range specs {
		if err := s.Add(sp); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// peekBody reads r's body and puts the same bytes back.
func peekBody(r *http.Request) []byte {
	if r.Body == nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b
}

func bodyString(body []byte, name string) string {
	var m map[string]any
	json.Unmarshal(body, &m)
	switch v := m[name].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// digestOK compares a presented hex digest with SHA256(parts...) in
// constant time.
func digestOK(presented string, parts ...string) bool {
	got, err := hex.DecodeString(presented)
	if err != nil {
		return false
	}
	d := sha256.New()
	for _, p := range parts {
		d.Write([]byte(p))
	}
	return subtle.ConstantTimeCompare(got, d.Sum(nil)) == 1
}

func bearerValue(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	if len(v) < 7 || !strings.EqualFold(v[:7], "Bearer ") {
		return "", false
	}
	return v[7:], true
}

// statusScheme is seed 001's status check: Authorization: Bearer
// hex(SHA256(api_key + trx_id)), the key being that of the transaction's
// owner.
type statusScheme struct {
	keys   apiguard.KeyStore
	owners map[string]string // trx_id -> client id
}

func (s statusScheme) Authenticate(r *http.Request) (*apiguard.Client, error) {
	digest, ok := bearerValue(r)
	if !ok {
		return nil, apiguard.ErrMissingKey
	}
	trx := bodyString(peekBody(r), "trx_id")
	secrets, err := s.keys.Secrets(r.Context(), s.owners[trx])
	if err != nil {
		return nil, apiguard.ErrUnavailable
	}
	for _, sec := range secrets {
		if digestOK(digest, sec.Key, trx) {
			return sec.Client, nil
		}
	}
	return nil, apiguard.ErrHashMismatch
}

// orderScheme is seed 001's order: X-API-Key, X-Request-Time (Unix
// seconds, 5 minutes either way) and Authorization: Bearer
// hex(SHA256(api_key + ref_id + price)), price by product and role.
type orderScheme struct {
	keys   apiguard.KeyStore
	now    func() time.Time
	prices map[string]map[string]int64 // produk_id -> role -> price
}

func (s orderScheme) Authenticate(r *http.Request) (*apiguard.Client, error) {
	digest, ok := bearerValue(r)
	key, ts := r.Header.Get("X-API-Key"), r.Header.Get("X-Request-Time")
	if !ok || key == "" || ts == "" {
		return nil, apiguard.ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, apiguard.ErrRequestTimeFormat
	}
	if d := s.now().Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return nil, apiguard.ErrRequestExpired
	}
	c, err := s.keys.Lookup(r.Context(), key)
	if err != nil {
		return nil, apiguard.ErrInvalidKey
	}
	body := peekBody(r)
	price := s.prices[bodyString(body, "produk_id")][c.Role]
	if !digestOK(digest, key, bodyString(body, "ref_id"), strconv.FormatInt(price, 10)) {
		return nil, apiguard.ErrHashMismatch
	}
	return c, nil
}

// echoHandler answers 200 with the client in the context and the body it
// received, to show both come through.
var echoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, _ := apiguard.ClientFrom(r.Context())
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	id := ""
	if c != nil {
		id = c.ID
	}
	json.NewEncoder(w).Encode(map[string]string{"client": id, "body": string(b)})
})

// fake88 is an 88Pay server (seed 004) that counts its calls: POST
// /api/auth/token issues tokens living 60 s on its clock; /api/charges
// needs Authorization: Bearer and x-session-id.
type fake88 struct {
	t                *testing.T
	clock            *clock
	key, merchant    string
	g                *apiguard.Guard
	tokenCalls       atomic.Int64
	apiCalls         atomic.Int64
	refused          atomic.Int64  // API calls answered 401
	gate             chan struct{} // when set, token requests wait for it
	mu               sync.Mutex
	n                int
	tokens           map[string]fakeToken
	token429, api429 int    // how many of the next requests to answer 429
	retryAfter       string // the Retry-After of those 429s
	bodies           []string
	authSeen         []string // Authorization headers the API saw
}

type fakeToken struct {
	session string
	expires time.Time
}

func newFake88(t *testing.T, c *clock) *fake88 {
	return &fake88{
		t: t, clock: c, key: "sk_test_a1b2c3d4e5f6g7h8", merchant: "MCH-COL-29ZTP4",
		g:      apiguard.MustNew(nil, apiguard.WithDialect(apiguard.Pay88())),
		tokens: map[string]fakeToken{},
	}
}

func (f *fake88) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/auth/token":
		f.token(w, r)
	case "/api/charges":
		f.charge(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (f *fake88) token(w http.ResponseWriter, r *http.Request) {
	f.tokenCalls.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.token429 > 0 {
		f.token429--
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		f.g.Deny(w, r, apiguard.ErrRateLimited)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("x-api-key")), []byte(f.key)) != 1 ||
		r.Header.Get("x-merchant-id") != f.merchant {
		f.g.Deny(w, r, apiguard.ErrInvalidKey)
		return
	}
	f.n++
	tok := fmt.Sprintf("tok-%d", f.n)
	sess := fmt.Sprintf("sess_%08d-0000-4000-8000-000000000000", f.n)
	f.tokens[tok] = fakeToken{sess, f.clock.Now().Add(60 * time.Second)}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"status":"Success","code":200,"message":"Token generated successfully","data":{"access_token":%q,"expires_in":60,"session_id":%q}}`, tok, sess)
}

func (f *fake88) charge(w http.ResponseWriter, r *http.Request) {
	f.apiCalls.Add(1)
	body := peekBody(r)
	f.mu.Lock()
	f.bodies = append(f.bodies, string(body))
	f.authSeen = append(f.authSeen, r.Header.Get("Authorization"))
	busy := f.api429 > 0
	if busy {
		f.api429--
	}
	f.mu.Unlock()
	if busy {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		f.g.Deny(w, r, apiguard.ErrRateLimited)
		return
	}
	tok, ok := bearerValue(r)
	if !ok {
		f.g.Deny(w, r, apiguard.ErrInvalidToken)
		return
	}
	sess := r.Header.Get("x-session-id")
	if sess == "" {
		f.g.Deny(w, r, apiguard.ErrMissingSessionID)
		return
	}
	f.mu.Lock()
	ft, ok := f.tokens[tok]
	f.mu.Unlock()
	if !ok || ft.session != sess || !f.clock.Now().Before(ft.expires) {
		f.refused.Add(1)
		f.g.Deny(w, r, apiguard.ErrInvalidToken)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"status":"Success","code":200,"message":"Charge created","data":{"token":%q,"body":%q}}`, tok, body)
}

// revokeAll makes every issued token invalid, as an expiry would.
func (f *fake88) revokeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.tokens)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
