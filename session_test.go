package apiguard

import (
	"encoding/base64"
	"encoding/json"
	"errors"
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
	key    *TokenKey
	ring   *KeyRing
	s      *Sessions
	store  *MemoryKeyStore
	issueG *Guard // MerchantKey, Pay88, sandbox
	callG  *Guard // SessionScheme, Pay88, sandbox
	issuer http.Handler
}

func newSessFixture(t testing.TB, opts ...SessionOption) *sessFixture {
	t.Helper()
	f := &sessFixture{clock: newTestClock()}
	var err error
	if f.key, err = GenerateTokenKey("k1"); err != nil {
		t.Fatal(err)
	}
	if f.ring, err = NewKeyRing(f.key); err != nil {
		t.Fatal(err)
	}
	opts = append([]SessionOption{SessionClock(f.clock.Now), SessionEnvironment(Sandbox)}, opts...)
	if f.s, err = NewSessions(f.ring, opts...); err != nil {
		t.Fatal(err)
	}
	if f.store, err = NewMemoryKeyStore(KeyStoreClock(f.clock.Now)); err != nil {
		t.Fatal(err)
	}
	for _, sp := range []KeySpec{
		{Key: payKey, Client: Client{ID: payMerchant, Scopes: []string{"charges:create"}, Role: "merchant"}},
		{Key: payLiveKey, Client: Client{ID: payMerchant}},
		{Key: otherKey, Client: Client{ID: otherMerch}},
		{Key: "pk_test_publishable000", Client: Client{ID: payMerchant, Kind: PublishableKey}},
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
	return jwt.MapClaims{"sub": merchant, "sid": sid, "jti": "jti-1", "kind": "access", "env": "sandbox", "iat": now, "exp": now + 60}
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

func TestIssuer(t *testing.T) {
	f := newSessFixture(t)
	failing := MustNew(MerchantKey(failingStore{}), WithDialect(Pay88()))
	failingIssuer, err := f.s.Issuer(failing)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		headers  map[string][]string
		issuer   http.Handler
		status   int
		body     string
		merchant string
	}{
		{name: "seed credentials", headers: map[string][]string{"X-Api-Key": {payKey}, "X-Merchant-Id": {payMerchant}}, status: 200, merchant: payMerchant},
		{name: "another merchant's own key", headers: map[string][]string{"X-Api-Key": {otherKey}, "X-Merchant-Id": {otherMerch}}, status: 200, merchant: otherMerch},
		{name: "unknown key", headers: map[string][]string{"X-Api-Key": {"sk_test_unknown000000000"}, "X-Merchant-Id": {payMerchant}}, status: 401, body: pay88BadCreds},
		{name: "key of another merchant", headers: map[string][]string{"X-Api-Key": {otherKey}, "X-Merchant-Id": {payMerchant}}, status: 401, body: pay88BadCreds},
		{name: "merchant id in another case", headers: map[string][]string{"X-Api-Key": {payKey}, "X-Merchant-Id": {strings.ToLower(payMerchant)}}, status: 401, body: pay88BadCreds},
		{name: "live key in sandbox", headers: map[string][]string{"X-Api-Key": {payLiveKey}, "X-Merchant-Id": {payMerchant}}, status: 401, body: pay88BadCreds},
		{name: "publishable key", headers: map[string][]string{"X-Api-Key": {"pk_test_publishable000"}, "X-Merchant-Id": {payMerchant}}, status: 401, body: pay88BadCreds},
		{name: "whitespace in key", headers: map[string][]string{"X-Api-Key": {payKey + " "}, "X-Merchant-Id": {payMerchant}}, status: 401, body: pay88BadCreds},
		{name: "no merchant id", headers: map[string][]string{"X-Api-Key": {payKey}}, status: 401, body: pay88BadCreds},
		{name: "empty merchant id", headers: map[string][]string{"X-Api-Key": {payKey}, "X-Merchant-Id": {""}}, status: 401, body: pay88BadCreds},
		{name: "no key", headers: map[string][]string{"X-Merchant-Id": {payMerchant}}, status: 401, body: pay88BadCreds},
		{name: "two keys", headers: map[string][]string{"X-Api-Key": {payKey, payKey}, "X-Merchant-Id": {payMerchant}}, status: 401, body: pay88BadCreds},
		{name: "two merchant ids", headers: map[string][]string{"X-Api-Key": {payKey}, "X-Merchant-Id": {payMerchant, otherMerch}}, status: 401, body: pay88BadCreds},
		{name: "no credentials", headers: nil, status: 401, body: pay88Unauthorized},
		{name: "key store down", headers: map[string][]string{"X-Api-Key": {payKey}, "X-Merchant-Id": {payMerchant}}, issuer: failingIssuer, status: 503,
			body: `{"status":"Error","code":503,"message":"Service unavailable"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/auth/token", nil)
			for k, vs := range tc.headers {
				r.Header[k] = vs
			}
			h := f.issuer
			if tc.issuer != nil {
				h = tc.issuer
			}
			w := serve(h, r)
			if tc.status != 200 {
				wantBody(t, w, tc.status, tc.body)
				return
			}
			tok, sid := issued(t, w)
			// The seed's body to the letter, around the values that vary.
			wantBody(t, w, 200, `{"status":"Success","code":200,"message":"Token generated successfully","data":{"access_token":"`+tok+`","expires_in":60,"session_id":"`+sid+`"}}`)
			if !sessionIDPattern.MatchString(sid) {
				t.Errorf("session id %q is not sess_<uuid v4>", sid)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q", got)
			}
			// The token: ES256, kid, and the documented claims.
			var hdr map[string]any
			var claims map[string]any
			parts := strings.Split(tok, ".")
			if len(parts) != 3 {
				t.Fatalf("token %q", tok)
			}
			for i, v := range []any{&hdr, &claims} {
				b, err := base64.RawURLEncoding.DecodeString(parts[i])
				if err != nil || json.Unmarshal(b, v) != nil {
					t.Fatalf("segment %d: %v", i, err)
				}
			}
			if hdr["alg"] != "ES256" || hdr["kid"] != "k1" || hdr["typ"] != "JWT" {
				t.Errorf("header %v", hdr)
			}
			now := float64(f.clock.Now().Unix())
			if claims["sub"] != tc.merchant || claims["sid"] != sid || claims["kind"] != "access" || claims["env"] != "sandbox" ||
				claims["iat"] != now || claims["exp"] != now+60 || len(claims["jti"].(string)) != 22 {
				t.Errorf("claims %v", claims)
			}
			// And it opens the merchant's calls.
			if w := serve(f.callG.Authenticate()(okHandler), call(tok, sid)); w.Code != 200 || w.Header().Get("X-Client") != tc.merchant {
				t.Errorf("call with the new token: %d %s", w.Code, w.Body)
			}
		})
	}
}

// TestIssuerWrapped shows the issuer behind a limit of the kind the rate
// limit wrapper applies: its 429 in the 88Pay envelope with Retry-After.
func TestIssuerWrapped(t *testing.T) {
	f := newSessFixture(t)
	n := 0
	limit := f.issueG.Check(func(r *http.Request) error {
		n++
		if n > 2 {
			return &Error{Status: 429, Code: CodeRateLimited, RetryAfter: 60 * time.Second, Err: ErrRateLimited}
		}
		return nil
	})
	h := limit(f.issuer)
	for i := 1; i <= 3; i++ {
		r := httptest.NewRequest("POST", "/api/auth/token", nil)
		r.Header.Set("x-api-key", payKey)
		r.Header.Set("x-merchant-id", payMerchant)
		w := serve(h, r)
		if i <= 2 {
			if w.Code != 200 {
				t.Errorf("request %d: %d", i, w.Code)
			}
			continue
		}
		wantBody(t, w, 429, `{"status":"Error","code":429,"message":"Rate limit exceeded"}`)
		if got := w.Header().Get("Retry-After"); got != "60" {
			t.Errorf("Retry-After %q", got)
		}
	}
}

func TestIssuerConfig(t *testing.T) {
	f := newSessFixture(t)
	for name, g := range map[string]*Guard{
		"nil guard":      nil,
		"no scheme":      MustNew(nil),
		"session scheme": f.callG,
		"access scheme":  MustNew(f.s.AccessScheme()),
	} {
		if _, err := f.s.Issuer(g); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := New(MerchantKey(nil)); err == nil {
		t.Error("MerchantKey(nil) accepted")
	}
	ring, _ := NewKeyRing(nil, f.key)
	s, _ := NewSessions(ring)
	if _, err := s.Issue(&Client{ID: "m"}); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("verify-only ring issued: %v", err)
	}
	if _, err := f.s.Issue(&Client{}); err == nil {
		t.Error("client without id issued")
	}
	if _, err := f.s.Issue(&Client{ID: "m", Env: Sandbox, Scopes: strings.Fields(strings.Repeat("payments:create ", 300))}); err == nil {
		t.Error("issued a token too long to verify")
	}
	if _, err := f.s.Issue(&Client{ID: "m", Env: Live}); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("live client in sandbox sessions: %v", err)
	}
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
			f := newSessFixture(t, SessionLeeway(tc.leeway))
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
		f := newSessFixture(t, TokenLifetime(AccessToken, 5*time.Minute), SessionLeeway(0))
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

func TestRevocation(t *testing.T) {
	f := newSessFixture(t)
	tok1, sid1 := f.issue(t, payKey, payMerchant)
	tok2, sid2 := f.issue(t, payKey, payMerchant)
	tokO, sidO := f.issue(t, otherKey, otherMerch)
	h := f.callG.Authenticate()(okHandler)
	status := func(tok, sid string) int { return serve(h, call(tok, sid)).Code }

	if err := f.s.RevokeSession(sid1); err != nil {
		t.Fatal(err)
	}
	if status(tok1, sid1) != 401 || status(tok2, sid2) != 200 || status(tokO, sidO) != 200 {
		t.Error("session revocation: wrong tokens refused")
	}
	if err := f.s.RevokeSubject(payMerchant); err != nil {
		t.Fatal(err)
	}
	if status(tok2, sid2) != 401 || status(tokO, sidO) != 200 {
		t.Error("merchant revocation: wrong tokens refused")
	}
	// A token issued in the same second is refused too; from the next
	// second on, the merchant's new tokens work.
	if tok, sid := f.issue(t, payKey, payMerchant); status(tok, sid) != 401 {
		t.Error("token of the revocation's second accepted")
	}
	f.clock.Advance(time.Second)
	if tok, sid := f.issue(t, payKey, payMerchant); status(tok, sid) != 200 {
		t.Error("token issued after the revocation refused")
	}
}

func TestRevocationBound(t *testing.T) {
	f := newSessFixture(t, MaxRevocations(2))
	if err := f.s.RevokeSession("sess_a"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RevokeSubject("m1"); err != nil {
		t.Fatal(err)
	}
	// Revoking again what is revoked takes no room.
	if err := f.s.RevokeSession("sess_a"); err != nil {
		t.Errorf("revoking again: %v", err)
	}
	if err := f.s.RevokeSession("sess_b"); !errors.Is(err, ErrRevocationsFull) {
		t.Errorf("full list: %v", err)
	}
	// Once every token they concern has expired, revocations make room.
	f.clock.Advance(f.s.maxLifetime() + f.s.leeway)
	if err := f.s.RevokeSession("sess_b"); err != nil {
		t.Errorf("after expiry: %v", err)
	}
	if n := len(f.s.revs.sessions) + len(f.s.revs.subjects); n != 1 {
		t.Errorf("%d revocations held, want 1", n)
	}
}

func TestNewSessionsConfig(t *testing.T) {
	key, _ := GenerateTokenKey("")
	ring, _ := NewKeyRing(key)
	for name, opts := range map[string][]SessionOption{
		"nil clock":         {SessionClock(nil)},
		"negative leeway":   {SessionLeeway(-time.Second)},
		"huge leeway":       {SessionLeeway(time.Hour)},
		"zero lifetime":     {TokenLifetime(AccessToken, 0)},
		"half a second":     {TokenLifetime(AccessToken, 1500*time.Millisecond)},
		"two years":         {TokenLifetime(UserToken, 2*366*24*time.Hour)},
		"unknown kind":      {TokenLifetime(TokenKind(9), time.Minute)},
		"kind zero":         {TokenLifetime(TokenKind(0), time.Minute)},
		"bad environment":   {SessionEnvironment(Environment(7))},
		"no revocations":    {MaxRevocations(0)},
		"negative families": {MaxSessionFamilies(-1)},
	} {
		if _, err := NewSessions(ring, opts...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := NewSessions(nil); err == nil {
		t.Error("nil ring accepted")
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
	f := newSessFixture(t, SessionEnvironment(AnyEnvironment))
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
