package apiguard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzSessionHeaders feeds arbitrary Authorization, x-session-id and
// x-user-token values to the three token schemes. Invariants: no panic;
// every refusal is ErrMissingSessionID (400) or ErrInvalidToken (401); and
// an accepted request carries exactly a token the Sessions issued (its
// merchant or user and token id) with, for 88Pay, that token's session id.
func FuzzSessionHeaders(f *testing.F) {
	fx := newSessFixture(f)
	pay, err := fx.s.Issue(&Client{ID: payMerchant, Env: Sandbox})
	if err != nil {
		f.Fatal(err)
	}
	set, err := fx.s.Login(context.Background(), &Client{ID: "demo", Env: Sandbox})
	if err != nil {
		f.Fatal(err)
	}
	// The token ids, read from the tokens.
	jti := map[string]string{}
	for _, tok := range []string{pay.AccessToken, set.AccessToken, set.UserToken} {
		var c tokenClaims
		if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
			f.Fatal(err)
		}
		jti[tok] = c.ID
	}
	none := sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": "k1"}, fx.claims(payMerchant, pay.SessionID))
	parts := strings.Split(pay.AccessToken, ".")

	f.Add("Bearer "+pay.AccessToken, pay.SessionID, "")
	f.Add("Bearer "+set.AccessToken, "", set.UserToken)
	f.Add("bearer  "+pay.AccessToken, pay.SessionID+" ", "")
	f.Add("Bearer "+pay.AccessToken, set.SessionID, set.UserToken)
	f.Add("Bearer "+none, pay.SessionID, "")
	f.Add("Bearer "+parts[0]+"."+parts[1]+".", pay.SessionID, "")
	f.Add("Bearer "+parts[0]+"."+parts[1]+"."+flipLow(parts[2]), pay.SessionID, "")
	f.Add("Bearer "+set.RefreshToken, set.SessionID, set.RefreshToken)
	f.Add("Bearer e30.e30.", "sess_", "e30.e30.")
	f.Add("Basic Zm9vOmJhcg==", "", "")
	f.Add("", "", "")

	schemes := map[string]Scheme{"session": fx.s.SessionScheme(), "access": fx.s.AccessScheme(), "user": fx.s.UserScheme()}
	f.Fuzz(func(t *testing.T, auth, sid, user string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header = http.Header{"Authorization": {auth}, "X-Session-Id": {sid}, "X-User-Token": {user}}
		for name, scheme := range schemes {
			c, err := scheme.Authenticate(r)
			if err != nil {
				if e := NewError(err); !(errors.Is(err, ErrInvalidToken) && e.Status == 401 ||
					name == "session" && errors.Is(err, ErrMissingSessionID) && e.Status == 400) {
					t.Fatalf("%s: refusal %v (%d)", name, err, e.Status)
				}
				if c != nil {
					t.Fatalf("%s: client and error", name)
				}
				continue
			}
			if len(auth) < 7 || !strings.EqualFold(auth[:7], "bearer ") {
				t.Fatalf("%s: accepted without a Bearer token: %q", name, auth)
			}
			switch name {
			case "session":
				if c.ID != payMerchant || c.KeyID != jti[pay.AccessToken] || sid != pay.SessionID {
					t.Fatalf("session: accepted %+v with session %q", c, sid)
				}
			case "access":
				if !(c.ID == payMerchant && c.KeyID == jti[pay.AccessToken]) && !(c.ID == "demo" && c.KeyID == jti[set.AccessToken]) {
					t.Fatalf("access: accepted %+v", c)
				}
			case "user":
				if c.ID != "demo" || c.KeyID != jti[set.AccessToken] || user != set.UserToken {
					t.Fatalf("user: accepted %+v with user token %q", c, user)
				}
			}
		}
	})
}

// FuzzMerchantKey feeds arbitrary x-api-key and x-merchant-id values to the
// token endpoint's scheme. Invariants: no panic; only a stored server key
// with its own merchant id is accepted; every refusal is ErrMissingKey or
// ErrInvalidKey.
func FuzzMerchantKey(f *testing.F) {
	fx := newSessFixture(f)
	scheme := MerchantKey(fx.store)
	f.Add(payKey, payMerchant)
	f.Add(otherKey, payMerchant)
	f.Add(payLiveKey, payMerchant)
	f.Add("pk_test_publishable000", payMerchant)
	f.Add(payKey+" ", payMerchant)
	f.Add("", "")
	f.Fuzz(func(t *testing.T, key, merchant string) {
		r := httptest.NewRequest("POST", "/api/auth/token", nil)
		r.Header = http.Header{"X-Api-Key": {key}, "X-Merchant-Id": {merchant}}
		c, err := scheme.Authenticate(r)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) && !errors.Is(err, ErrMissingKey) {
				t.Fatalf("refusal %v", err)
			}
			return
		}
		ok := key == payKey && merchant == payMerchant || key == payLiveKey && merchant == payMerchant || key == otherKey && merchant == otherMerch
		if !ok || c.ID != merchant {
			t.Fatalf("accepted %q %q as %+v", key, merchant, c)
		}
	})
}
