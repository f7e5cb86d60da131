package apiguard

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The 88Pay seed's credentials.
const (
	payKey      = "sk_test_a1b2c3d4e5f6g7h8"
	payMerchant = "MCH-COL-29ZTP4"
	payLiveKey  = "sk_live_demo00000000"
	otherKey    = "sk_test_other0000000000"
	otherMerch  = "MCH-COL-OTHER1"

	pay88Unauthorized = `{"status":"Error","code":401,"message":"Unauthorized"}`
	pay88BadCreds     = `{"status":"Error","code":401,"message":"Invalid API key or merchant ID"}`
	pay88NoSession    = `{"status":"Error","code":400,"message":"Missing required header: x-session-id"}`
)

var sessionIDPattern = regexp.MustCompile(`^sess_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// sessFixture is an 88Pay setup: a sandbox key store, a key ring, Sessions
// and the Guards of the token endpoint and of the calls, on one clock.
type sessFixture struct {
	clock  *testClock
	key    *SigningKey
	ring   *KeyRing
	s      *Sessions
	store  *MemoryKeyStore
	issueG *Guard // MerchantKey, Pay88, sandbox
	callG  *Guard // SessionScheme, Pay88, sandbox
	issuer http.Handler
}

func newSessFixture(t testing.TB, opts ...Option) *sessFixture {
	t.Helper()
	f := &sessFixture{clock: newTestClock()}
	var err error
	if f.key, err = GenerateSigningKey("k1"); err != nil {
		t.Fatal(err)
	}
	if f.ring, err = NewKeyRing(f.key); err != nil {
		t.Fatal(err)
	}
	opts = append([]Option{WithClock(f.clock.Now), WithEnvironment(Sandbox)}, opts...)
	if f.s, err = NewSessions("test-api", f.ring, opts...); err != nil {
		t.Fatal(err)
	}
	if f.store, err = NewMemoryKeyStore(WithClock(f.clock.Now)); err != nil {
		t.Fatal(err)
	}
	for _, sp := range []KeySpec{
		{Key: payKey, Client: Client{ID: payMerchant, Scopes: []string{"charges:create"}, Role: "merchant"}},
		{Key: payLiveKey, Client: Client{ID: payMerchant}},
		{Key: otherKey, Client: Client{ID: otherMerch}},
		{Key: "pk_test_publishable000", Client: Client{ID: payMerchant, Publishable: true}},
	} {
		if err := f.store.Add(sp); err != nil {
			t.Fatal(err)
		}
	}
	f.issueG = MustNew(MerchantKey(f.store), WithDialect(Pay88()), WithEnvironment(Sandbox), WithClock(f.clock.Now))
	f.callG = MustNew(f.s.SessionScheme(), WithDialect(Pay88()), WithEnvironment(Sandbox), WithClock(f.clock.Now))
	if f.issuer, err = f.s.Issuer(f.issueG); err != nil {
		t.Fatal(err)
	}
	return f
}

// issue gets a token from the issuer, as a client would.
func (f *sessFixture) issue(t testing.TB, key, merchant string) (token, sid string) {
	t.Helper()
	r := httptest.NewRequest("POST", "/api/auth/token", nil)
	r.Header.Set("x-api-key", key)
	r.Header.Set("x-merchant-id", merchant)
	w := serve(f.issuer, r)
	if w.Code != 200 {
		t.Fatalf("issue: %d %s", w.Code, w.Body)
	}
	return issued(t, w)
}

// issued returns the access token and session id of the issuer's answer.
func issued(t testing.TB, w *httptest.ResponseRecorder) (token, sid string) {
	t.Helper()
	var resp struct {
		Data struct {
			AccessToken string `json:"access_token"`
			SessionID   string `json:"session_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("issuer answer %q: %v", w.Body, err)
	}
	return resp.Data.AccessToken, resp.Data.SessionID
}

// call makes a request to a session-protected route.
func call(token, sid string) *http.Request {
	r := httptest.NewRequest("POST", "/api/transactions/charges", strings.NewReader(`{"amount":50000}`))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if sid != "" {
		r.Header.Set("x-session-id", sid)
	}
	return r
}

// claims returns valid claims for an access token of merchant in session
// sid, issued now.
func (f *sessFixture) claims(merchant, sid string) jwt.MapClaims {
	now := f.clock.Now().Unix()
	return jwt.MapClaims{"iss": "test-api", "aud": "test-api", "sub": merchant, "sid": sid, "jti": "jti-1", "kind": "access", "env": "sandbox", "iat": now, "exp": now + 60}
}

// sign signs claims with method and key, with the header fields in hdr
// (a nil value deletes a field).
func sign(t testing.TB, method jwt.SigningMethod, key any, hdr map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range hdr {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signOwn signs claims with the fixture's signing key.
func (f *sessFixture) signOwn(t testing.TB, claims jwt.MapClaims) string {
	return sign(t, jwt.SigningMethodES256, f.key.priv, map[string]any{"kid": f.key.ID()}, claims)
}

func TestSessionScheme(t *testing.T) {
	f := newSessFixture(t)
	tok, sid := f.issue(t, payKey, payMerchant)
	otherTok, otherSid := f.issue(t, otherKey, otherMerch)
	h := f.callG.Authenticate()(okHandler)
	for _, tc := range []struct {
		name   string
		req    func() *http.Request
		status int
		body   string
	}{
		{"token and session", func() *http.Request { return call(tok, sid) }, 200, ""},
		{"no session id", func() *http.Request { return call(tok, "") }, 400, pay88NoSession},
		{"no session id, no token", func() *http.Request { return call("", "") }, 400, pay88NoSession},
		{"no session id, bad token", func() *http.Request { return call("garbage", "") }, 400, pay88NoSession},
		{"empty session id", func() *http.Request {
			r := call(tok, "")
			r.Header["X-Session-Id"] = []string{""}
			return r
		}, 400, pay88NoSession},
		{"no token", func() *http.Request { return call("", sid) }, 401, pay88Unauthorized},
		{"another merchant's session id", func() *http.Request { return call(tok, otherSid) }, 401, pay88Unauthorized},
		{"another merchant's token", func() *http.Request { return call(otherTok, sid) }, 401, pay88Unauthorized},
		{"session id with a suffix", func() *http.Request { return call(tok, sid+"0") }, 401, pay88Unauthorized},
		{"session id in upper case", func() *http.Request { return call(tok, strings.ToUpper(sid)) }, 401, pay88Unauthorized},
		{"two session ids", func() *http.Request {
			r := call(tok, sid)
			r.Header.Add("x-session-id", sid)
			return r
		}, 401, pay88Unauthorized},
		{"two tokens", func() *http.Request {
			r := call(tok, sid)
			r.Header.Add("Authorization", "Bearer "+tok)
			return r
		}, 401, pay88Unauthorized},
		{"bearer in lower case", func() *http.Request {
			r := call("", sid)
			r.Header.Set("Authorization", "bearer "+tok)
			return r
		}, 200, ""},
		{"Basic scheme", func() *http.Request {
			r := call("", sid)
			r.Header.Set("Authorization", "Basic "+tok)
			return r
		}, 401, pay88Unauthorized},
		{"Bearer without token", func() *http.Request {
			r := call("", sid)
			r.Header.Set("Authorization", "Bearer")
			return r
		}, 401, pay88Unauthorized},
		{"token without Bearer", func() *http.Request {
			r := call("", sid)
			r.Header.Set("Authorization", tok)
			return r
		}, 401, pay88Unauthorized},
		{"garbage token", func() *http.Request { return call("not.a.jwt", sid) }, 401, pay88Unauthorized},
		{"oversized token", func() *http.Request { return call(tok+strings.Repeat("A", maxTokenLen), sid) }, 401, pay88Unauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, tc.req())
			if tc.status == 200 {
				if w.Code != 200 || w.Header().Get("X-Client") != payMerchant {
					t.Errorf("got %d %s client %q", w.Code, w.Body, w.Header().Get("X-Client"))
				}
				return
			}
			wantBody(t, w, tc.status, tc.body)
			if tc.status == 401 && w.Header().Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

// TestSessionClient: the client in the context is the token's merchant,
// with the scopes and role of its key, the token id as key id, and the
// sandbox environment.
func TestSessionClient(t *testing.T) {
	f := newSessFixture(t)
	tok, sid := f.issue(t, payKey, payMerchant)
	var got *Client
	h := f.callG.Authenticate()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = ClientFrom(r.Context())
	}))
	serve(h, call(tok, sid))
	if got == nil || got.ID != payMerchant || got.Env != Sandbox || got.Role != "merchant" ||
		len(got.Scopes) != 1 || got.Scopes[0] != "charges:create" || len(got.KeyID) != 22 || len(got.IPs) != 0 {
		t.Fatalf("client %+v", got)
	}
	if w := serve(Chain(f.callG.Authenticate(), f.callG.RequireScope("charges:create"))(okHandler), call(tok, sid)); w.Code != 200 {
		t.Errorf("scope from the key: %d", w.Code)
	}
	if w := serve(f.callG.RequireScope("refunds:create")(okHandler), call(tok, sid)); w.Code != 403 {
		t.Errorf("scope the key lacks: %d", w.Code)
	}
}

// TestSessionExpiry: a 60-second token, on an injected clock, with the
// default leeway of one second and with none.
func TestSessionExpiry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		leeway time.Duration
		after  time.Duration
		status int
	}{
		{"fresh", time.Second, 0, 200},
		{"59s", time.Second, 59 * time.Second, 200},
		{"60s within leeway", time.Second, 60 * time.Second, 200},
		{"60.999s within leeway", time.Second, 61*time.Second - time.Millisecond, 200},
		{"61s", time.Second, 61 * time.Second, 401},
		{"an hour", time.Second, time.Hour, 401},
		{"59.999s no leeway", 0, 60*time.Second - time.Millisecond, 200},
		{"60s no leeway", 0, 60 * time.Second, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSessFixture(t, WithLeeway(tc.leeway))
			tok, sid := f.issue(t, payKey, payMerchant)
			f.clock.Advance(tc.after)
			w := serve(f.callG.Authenticate()(okHandler), call(tok, sid))
			if tc.status == 200 && w.Code != 200 {
				t.Errorf("status %d, want 200", w.Code)
			} else if tc.status != 200 {
				wantBody(t, w, tc.status, pay88Unauthorized)
			}
		})
	}
	t.Run("lifetime option", func(t *testing.T) {
		f := newSessFixture(t, WithTokenLifetime(AccessToken, 5*time.Minute), WithLeeway(0))
		r := httptest.NewRequest("POST", "/api/auth/token", nil)
		r.Header.Set("x-api-key", payKey)
		r.Header.Set("x-merchant-id", payMerchant)
		if w := serve(f.issuer, r); !strings.Contains(w.Body.String(), `"expires_in":300`) {
			t.Errorf("body %s", w.Body)
		}
		tok, sid := f.issue(t, payKey, payMerchant)
		f.clock.Advance(299 * time.Second)
		if w := serve(f.callG.Authenticate()(okHandler), call(tok, sid)); w.Code != 200 {
			t.Errorf("at 299s: %d", w.Code)
		}
		f.clock.Advance(time.Second)
		if w := serve(f.callG.Authenticate()(okHandler), call(tok, sid)); w.Code != 401 {
			t.Errorf("at 300s: %d", w.Code)
		}
	})
}

// TestSessionStackInAnyOrder: the session Guard's wrappers accept and
// reject the same requests, hand over the same client and answer with the
// first failing check's body, in every order.
func TestSessionStackInAnyOrder(t *testing.T) {
	f := newSessFixture(t)
	tokA, sidA := f.issue(t, payKey, payMerchant)
	tokB, sidB := f.issue(t, otherKey, otherMerch) // no scope
	g := f.callG
	stack := fourWrappers(g, "charges:create", func(c *Client) bool { return c.Role != "merchant" }, "Content-Type", "application/json")
	req := func(tok, sid string, json bool) func() *http.Request {
		return func() *http.Request {
			r := call(tok, sid)
			if json {
				r.Header.Set("Content-Type", "application/json")
			}
			return r
		}
	}
	checkAnyOrder(t, anyOrder{
		stack: func() []namedWrapper { return stack },
		requests: []orderReq{
			{"A", payMerchant, req(tokA, sidA, true)},
			{"A/not-json", payMerchant, req(tokA, sidA, false)},
			{"A/no-sid", "", req(tokA, "", true)},
			{"A/B's sid", "", req(tokA, sidB, true)},
			{"B", otherMerch, req(tokB, sidB, true)},
			{"garbage", "", req("x.y.z", sidA, true)},
			{"none", "", req("", "", false)},
		},
		status: map[string]int{"A": 200, "A/not-json": 400, "A/no-sid": 400, "A/B's sid": 401, "B": 403, "garbage": 401, "none": 400},
	})
}

func TestNewSessionsConfig(t *testing.T) {
	key, _ := GenerateSigningKey("")
	ring, _ := NewKeyRing(key)
	for name, opts := range map[string][]Option{
		"nil clock":         {WithClock(nil)},
		"negative leeway":   {WithLeeway(-time.Second)},
		"huge leeway":       {WithLeeway(time.Hour)},
		"zero lifetime":     {WithTokenLifetime(AccessToken, 0)},
		"half a second":     {WithTokenLifetime(AccessToken, 1500*time.Millisecond)},
		"two years":         {WithTokenLifetime(UserToken, 2*366*24*time.Hour)},
		"unknown kind":      {WithTokenLifetime(TokenKind(9), time.Minute)},
		"kind zero":         {WithTokenLifetime(TokenKind(0), time.Minute)},
		"bad environment":   {WithEnvironment(Environment(7))},
		"zero capacity":     {WithCapacity(0)},
		"negative capacity": {WithCapacity(-1)},
		"a cache's option":  {WithCacheTTL(time.Minute, 0)},
	} {
		if _, err := NewSessions("test-api", ring, opts...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := NewSessions("test-api", nil); err == nil {
		t.Error("nil ring accepted")
	}
	// Sessions hold a tenth of their capacity of revocations, at least 1.
	for capacity, revs := range map[int]int{0: 10_000, 20: 2, 9: 1, 1: 1} {
		var opts []Option
		if capacity > 0 {
			opts = append(opts, WithCapacity(capacity))
		}
		if s, err := NewSessions("test-api", ring, opts...); err != nil || s.mem.maxRevs != revs {
			t.Errorf("capacity %d: %d revocations, want %d (%v)", capacity, s.mem.maxRevs, revs, err)
		}
	}
	if _, err := New(&tokenScheme{}); err == nil {
		t.Error("scheme without Sessions accepted")
	}
	if AccessToken.String() != "access" || RefreshToken.String() != "refresh" || UserToken.String() != "user" || TokenKind(0).String() != "TokenKind(0)" {
		t.Error("TokenKind.String")
	}
}

// TestSessionEnvironmentAny: Sessions of no environment issue to every
// client, stamp its environment, and still refuse an unknown one.
func TestSessionEnvironmentAny(t *testing.T) {
	f := newSessFixture(t, WithEnvironment(AnyEnvironment))
	scheme := f.s.SessionScheme()
	for _, env := range []Environment{AnyEnvironment, Sandbox, Live} {
		set, err := f.s.Issue(&Client{ID: "m", Env: env})
		if err != nil {
			t.Fatal(err)
		}
		if c, err := scheme.Authenticate(call(set.AccessToken, set.SessionID)); err != nil || c.Env != env {
			t.Errorf("%v: %v %+v", env, err, c)
		}
	}
	c := f.claims("m", "sess_x")
	c["env"] = "staging"
	if _, err := scheme.Authenticate(call(f.signOwn(t, c), "sess_x")); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("unknown environment: %v", err)
	}
}

func TestSessionIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newSessionID()
		if !sessionIDPattern.MatchString(id) || seen[id] {
			t.Fatalf("session id %q", id)
		}
		seen[id] = true
	}
}

// TestIssuedTokensAreAccepted: issuance and verification agree on how long
// a token may be. Every token Issue makes, up to the largest (a client with
// many scopes: more than 1,024 bytes), is accepted by SessionScheme, and a
// client whose token would be longer than 4,096 bytes gets no token.
func TestIssuedTokensAreAccepted(t *testing.T) {
	k, err := GenerateSigningKey("k")
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := NewKeyRing(k)
	s, err := NewSessions("test-api", ring)
	if err != nil {
		t.Fatal(err)
	}
	h := MustNew(s.SessionScheme()).Authenticate()(okHandler)
	longest := 0
	for n := 1; ; n++ {
		c := &Client{ID: "merchant", Scopes: make([]string, n)}
		for i := range c.Scopes {
			c.Scopes[i] = fmt.Sprintf("payment:scope-%03d", i)
		}
		set, err := s.Issue(c)
		if err != nil {
			if longest <= 1024 {
				t.Fatalf("issuance stopped at %d bytes, %d scopes: %v", longest, n, err)
			}
			break
		}
		if len(set.AccessToken) > maxTokenLen {
			t.Fatalf("issued a token of %d bytes, over %d", len(set.AccessToken), maxTokenLen)
		}
		longest = len(set.AccessToken)
		r := httptest.NewRequest("POST", "/charges", nil)
		r.Header.Set("Authorization", "Bearer "+set.AccessToken)
		r.Header.Set("X-Session-Id", set.SessionID)
		if w := serve(h, r); w.Code != 200 {
			t.Fatalf("a token of %d bytes (%d scopes) was issued, then refused: %d", len(set.AccessToken), n, w.Code)
		}
	}
	t.Logf("the longest token issued and accepted: %d bytes", longest)
	if longest < maxTokenLen-200 {
		t.Errorf("the longest token is %d bytes: the test did not reach the bound", longest)
	}
}
