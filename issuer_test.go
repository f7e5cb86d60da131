package apiguard

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

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
			return &Error{Status: 429, Code: "rate_limited", RetryAfter: 60 * time.Second, Err: ErrRateLimited}
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
	s, _ := NewSessions("test-api", ring)
	if _, err := s.Issue(&Client{ID: "m"}); !errors.Is(err, errNoSigningKey) {
		t.Errorf("verify-only ring issued: %v", err)
	}
	if _, err := s.Issuer(MustNew(MerchantKey(f.store))); err == nil {
		t.Error("Issuer on a verify-only ring")
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
