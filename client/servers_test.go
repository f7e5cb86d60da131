package client_test

// The servers the client round trips run against: apiguard's own wrappers,
// built as the demo gateway builds them. Test wrappers around them count
// calls and, where a behaviour cannot be provoked on the real server, stand
// in for it (a token request held open, a 429 whose Retry-After the real
// limiter never writes).

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/apiguardtest"
)

// newClock returns a settable clock at a fixed start.
func newClock() *apiguardtest.Clock {
	return apiguardtest.ClockAt(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
}

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

// server88 is an 88Pay API (seed 004) made of apiguard's wrappers, on a
// settable clock, as the demo gateway builds it:
//
//   - POST /api/auth/token is Sessions.Issuer behind MerchantKey (x-api-key
//     and x-merchant-id) and the issuance limits, 10 a minute and 100 an
//     hour per merchant, refused with Retry-After of at least 60 s;
//   - /api/charges is SessionScheme (Bearer token and x-session-id), with a
//     per-merchant limit when one is given.
//
// Tokens live 60 s, signed by a KeyRing that rotateOut empties of every
// key that signed a token so far; RevokeSession and RevokeSubject work on
// sessions.
//
// Test wrappers around the real handlers count the calls (tokenCalls at
// the token endpoint, apiCalls and refused at the API), record the bodies
// and Authorization headers the API saw, hold token requests while gate is
// set, and answer the next token429 or api429 requests 429 with Retry-After
// retryAfter: an HTTP-date, or none, which the real limiter never writes
// (it always sends whole seconds, and admits a request that waited them).
type server88 struct {
	clock         *apiguardtest.Clock
	key, merchant string
	keys          *apiguard.MemoryKeyStore
	ring          *apiguard.KeyRing
	sessions      *apiguard.Sessions
	srv           *httptest.Server

	tokenCalls atomic.Int64
	apiCalls   atomic.Int64
	refused    atomic.Int64  // API calls answered 401
	gate       chan struct{} // when set, token requests wait for it

	mu               sync.Mutex
	token429, api429 int    // how many of the next requests to answer 429
	retryAfter       string // the Retry-After of those 429s ("": none)
	bodies           []string
	authSeen         []string // Authorization headers the API saw
}

func newServer88(t *testing.T, c *apiguardtest.Clock, apiLimit ...apiguard.Window) *server88 {
	t.Helper()
	s := &server88{clock: c, key: "sk_test_a1b2c3d4e5f6g7h8", merchant: "MCH-COL-29ZTP4"}
	s.keys = mustStore(t,
		apiguard.KeySpec{Key: s.key, Client: apiguard.Client{ID: s.merchant, KeyID: "p88_test"}},
		apiguard.KeySpec{Key: "sk_test_other_merchant00", Client: apiguard.Client{ID: "MCH-COL-OTHER1", KeyID: "p88_other"}},
	)
	var err error
	if s.ring, err = apiguard.NewKeyRing(newTokenKey(t)); err != nil {
		t.Fatal(err)
	}
	if s.sessions, err = apiguard.NewSessions("https://api.example.com", s.ring, apiguard.WithClock(c.Now)); err != nil {
		t.Fatal(err)
	}
	opts := []apiguard.Option{apiguard.WithDialect(apiguard.Pay88()), apiguard.WithClock(c.Now)}
	credentials := apiguard.MustNew(apiguard.MerchantKey(s.keys), opts...)
	session := apiguard.MustNew(s.sessions.SessionScheme(), opts...)
	issuer, err := s.sessions.Issuer(credentials)
	if err != nil {
		t.Fatal(err)
	}
	limit := func(g *apiguard.Guard, ws []apiguard.Window, opts ...apiguard.Option) apiguard.Middleware {
		l, err := apiguard.NewMemoryLimiter(ws, apiguard.WithClock(c.Now))
		if err != nil {
			t.Fatal(err)
		}
		return g.RateLimit(l, apiguard.ByClient(), opts...)
	}
	issuance := limit(credentials, []apiguard.Window{apiguard.PerMinute(10), apiguard.PerHour(100)}, apiguard.WithMinRetryAfter(time.Minute))
	api := session.Authenticate()
	if len(apiLimit) > 0 {
		api = apiguard.Chain(api, limit(session, apiLimit))
	}

	mux := http.NewServeMux()
	mux.Handle("POST /api/auth/token", s.countTokens(s.busy(&s.token429, credentials, issuance(issuer))))
	mux.Handle("/api/charges", s.countAPI(s.busy(&s.api429, session, api(http.HandlerFunc(charge)))))
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func newTokenKey(t *testing.T) *apiguard.SigningKey {
	k, err := apiguard.GenerateSigningKey("")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tokenURL is the server's token endpoint.
func (s *server88) tokenURL() string { return s.srv.URL + "/api/auth/token" }

// charge answers a charge in 88Pay's envelope with the merchant the
// session token names and the body received.
func charge(w http.ResponseWriter, r *http.Request) {
	c, _ := apiguard.ClientFrom(r.Context())
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"status":"Success","code":200,"message":"Charge created","data":{"merchant":%q,"body":%q}}`, c.ID, body)
}

func (s *server88) countTokens(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.tokenCalls.Add(1)
		if s.gate != nil {
			<-s.gate
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server88) countAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.apiCalls.Add(1)
		body := peekBody(r)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(body))
		s.authSeen = append(s.authSeen, r.Header.Get("Authorization"))
		s.mu.Unlock()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == http.StatusUnauthorized {
			s.refused.Add(1)
		}
	})
}

// busy answers 429 "Rate limit exceeded" in g's dialect while *n > 0.
func (s *server88) busy(n *int, g *apiguard.Guard, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		refuse := *n > 0
		if refuse {
			*n--
		}
		ra := s.retryAfter
		s.mu.Unlock()
		if !refuse {
			next.ServeHTTP(w, r)
			return
		}
		if ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		g.Deny(w, r, apiguard.ErrRateLimited)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// rotateOut makes a new key sign tokens and removes every other key from
// the ring: the tokens issued so far stop verifying at once.
func (s *server88) rotateOut() error {
	k, err := apiguard.GenerateSigningKey("")
	if err != nil {
		return err
	}
	old := s.ring.SigningKeyID()
	if err := s.ring.Rotate(k); err != nil {
		return err
	}
	if !s.ring.Remove(old) {
		return fmt.Errorf("key %q was not removed", old)
	}
	return nil
}

// drainIssuance spends the merchant's 10 tokens of the minute at the token
// endpoint, as another process of the merchant would.
func (s *server88) drainIssuance(t *testing.T) {
	t.Helper()
	for i := range 10 {
		req, _ := http.NewRequest("POST", s.tokenURL(), nil)
		req.Header.Set("X-Api-Key", s.key)
		req.Header.Set("X-Merchant-Id", s.merchant)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("token %d: status %d", i, resp.StatusCode)
		}
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
