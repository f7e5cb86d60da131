package apiguard

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestJWTAttacks is the catalogue of attacks on the session token: each
// forged, altered or misused token is refused with 401 "Unauthorized",
// and the scheme's error matches ErrInvalidToken.
func TestJWTAttacks(t *testing.T) {
	f := newSessFixture(t)
	tok, sid := f.issue(t, payKey, payMerchant)
	_, otherSid := f.issue(t, otherKey, otherMerch)
	parts := strings.Split(tok, ".")
	now := f.clock.Now().Unix()
	pubPEM, _ := f.key.PublicPEM()
	point, _ := f.key.pub.Bytes()
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	valid := func() jwt.MapClaims { return f.claims(payMerchant, sid) }
	with := func(k string, v any) jwt.MapClaims {
		c := valid()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	kid := map[string]any{"kid": "k1"}

	for _, tc := range []struct {
		name  string
		tok   string
		sid   string // "" means the token's own session
		cause error  // the reason, where it is worth pinning
	}{
		// Only ES256 with the ring's key.
		{name: "alg none", tok: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, valid()), cause: jwt.ErrTokenSignatureInvalid},
		{name: "alg none, no signature segment", tok: seg(`{"alg":"none","kid":"k1","typ":"JWT"}`) + "." + parts[1]},
		{name: "alg none in another case", tok: seg(`{"alg":"None","kid":"k1","typ":"JWT"}`) + "." + parts[1] + "."},
		{name: "HS256 keyed with the public key PEM", tok: sign(t, jwt.SigningMethodHS256, pubPEM, kid, valid()), cause: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 keyed with the public point", tok: sign(t, jwt.SigningMethodHS256, point, kid, valid()), cause: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 keyed with the kid", tok: sign(t, jwt.SigningMethodHS256, []byte("k1"), kid, valid())},
		{name: "ES384", tok: sign(t, jwt.SigningMethodES384, p384, kid, valid()), cause: jwt.ErrTokenSignatureInvalid},
		{name: "no alg", tok: seg(`{"kid":"k1","typ":"JWT"}`) + "." + parts[1] + "." + parts[2]},
		// Signatures.
		{name: "stripped signature", tok: parts[0] + "." + parts[1] + ".", cause: jwt.ErrTokenSignatureInvalid},
		{name: "signature segment missing", tok: parts[0] + "." + parts[1]},
		{name: "altered signature", tok: parts[0] + "." + parts[1] + "." + flip(parts[2], 10), cause: jwt.ErrTokenSignatureInvalid},
		{name: "signature padding bits altered", tok: parts[0] + "." + parts[1] + "." + flipLow(parts[2]), cause: jwt.ErrTokenMalformed},
		{name: "signature of another token", tok: parts[0] + "." + parts[1] + "." + strings.Split(f.signOwn(t, with("jti", "x")), ".")[2]},
		{name: "signed by the attacker under our kid", tok: sign(t, jwt.SigningMethodES256, attacker, kid, valid()), cause: jwt.ErrTokenSignatureInvalid},
		{name: "extra segment", tok: tok + "." + parts[2]},
		// Claims and header altered after signing.
		{name: "altered merchant", tok: parts[0] + "." + seg(strings.Replace(decodeSeg(t, parts[1]), payMerchant, otherMerch, 1)) + "." + parts[2], cause: jwt.ErrTokenSignatureInvalid},
		{name: "altered expiry", tok: parts[0] + "." + seg(strings.Replace(decodeSeg(t, parts[1]), `"kind"`, `"exp":9999999999,"kind"`, 1)) + "." + parts[2], cause: jwt.ErrTokenSignatureInvalid},
		{name: "altered header", tok: seg(`{"alg":"ES256","kid":"k1","typ":"JWT","x":1}`) + "." + parts[1] + "." + parts[2]},
		// Key ids.
		{name: "unknown kid", tok: sign(t, jwt.SigningMethodES256, attacker, map[string]any{"kid": "k2"}, valid()), cause: errUnknownKeyID},
		{name: "no kid", tok: sign(t, jwt.SigningMethodES256, f.key.priv, map[string]any{}, valid()), cause: errUnknownKeyID},
		{name: "kid path traversal", tok: sign(t, jwt.SigningMethodES256, f.key.priv, map[string]any{"kid": "../../k1"}, valid()), cause: errUnknownKeyID},
		{name: "kid as a number", tok: sign(t, jwt.SigningMethodES256, f.key.priv, map[string]any{"kid": 1}, valid())},
		{name: "kid with the attacker's embedded jwk", tok: sign(t, jwt.SigningMethodES256, attacker, map[string]any{"kid": "k1", "jwk": map[string]any{"kty": "EC"}}, valid())},
		{name: "critical header extension", tok: sign(t, jwt.SigningMethodES256, f.key.priv, map[string]any{"kid": "k1", "crit": []string{"exp"}}, valid()), cause: errCrit},
		// Time.
		{name: "expired", tok: f.signOwn(t, jwt.MapClaims{"sub": payMerchant, "sid": sid, "jti": "j", "kind": "access", "env": "sandbox", "iat": now - 62, "exp": now - 2}), cause: jwt.ErrTokenExpired},
		{name: "future iat", tok: f.signOwn(t, jwt.MapClaims{"sub": payMerchant, "sid": sid, "jti": "j", "kind": "access", "env": "sandbox", "iat": now + 30, "exp": now + 60}), cause: jwt.ErrTokenUsedBeforeIssued},
		{name: "future nbf", tok: f.signOwn(t, with("nbf", now+30)), cause: jwt.ErrTokenNotValidYet},
		{name: "no exp", tok: f.signOwn(t, with("exp", nil)), cause: jwt.ErrTokenRequiredClaimMissing},
		// Bound to the API that minted it.
		{name: "another API's issuer", tok: f.signOwn(t, with("iss", "other-api")), cause: jwt.ErrTokenInvalidIssuer},
		{name: "another API's audience", tok: f.signOwn(t, with("aud", "other-api")), cause: jwt.ErrTokenInvalidAudience},
		{name: "no issuer", tok: f.signOwn(t, with("iss", nil)), cause: jwt.ErrTokenRequiredClaimMissing},
		{name: "no audience", tok: f.signOwn(t, with("aud", nil)), cause: jwt.ErrTokenRequiredClaimMissing},
		{name: "audience list naming this API and another", tok: f.signOwn(t, with("aud", []string{"test-api", "other-api"}))},
		{name: "exp null", tok: f.signOwn(t, with("exp", "null"))},
		{name: "exp as a string", tok: f.signOwn(t, with("exp", "9999999999"))},
		{name: "no iat", tok: f.signOwn(t, with("iat", nil)), cause: errClaims},
		{name: "lifetime longer than issued", tok: f.signOwn(t, with("exp", now+3600)), cause: errClaims},
		{name: "lifetime of 61s", tok: f.signOwn(t, with("exp", now+61)), cause: errClaims},
		// Claims the scheme needs.
		{name: "another merchant's session id", tok: tok, sid: otherSid, cause: errSessionID},
		{name: "no sid claim", tok: f.signOwn(t, with("sid", nil)), cause: errClaims},
		{name: "no subject", tok: f.signOwn(t, with("sub", nil))},
		{name: "no jti", tok: f.signOwn(t, with("jti", nil))},
		{name: "subject as a number", tok: f.signOwn(t, with("sub", 42))},
		{name: "refresh token", tok: f.signOwn(t, with("kind", "refresh")), cause: errWrongKind},
		{name: "user token", tok: f.signOwn(t, with("kind", "user")), cause: errWrongKind},
		{name: "no kind", tok: f.signOwn(t, with("kind", nil)), cause: errWrongKind},
		{name: "kind in upper case", tok: f.signOwn(t, with("kind", "ACCESS"))},
		{name: "live token in sandbox", tok: f.signOwn(t, with("env", "live")), cause: errWrongEnv},
		{name: "unknown environment", tok: f.signOwn(t, with("env", "staging")), cause: errWrongEnv},
		// Malformed.
		{name: "header not JSON", tok: seg(`{"alg":"ES256",`) + "." + parts[1] + "." + parts[2]},
		{name: "claims not JSON", tok: parts[0] + "." + seg(`[1,2]`) + "." + parts[2]},
		{name: "not base64", tok: parts[0] + "!." + parts[1] + "." + parts[2]},
		{name: "padded base64", tok: parts[0] + "=." + parts[1] + "." + parts[2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.sid
			if s == "" {
				s = sid
			}
			r := call(tc.tok, s)
			_, err := f.s.SessionScheme().Authenticate(r)
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("scheme error %v, want ErrInvalidToken", err)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("scheme error %v, want cause %v", err, tc.cause)
			}
			w := serve(f.callG.Authenticate()(okHandler), call(tc.tok, s))
			wantBody(t, w, 401, pay88Unauthorized)
		})
	}

	// The untampered token passes, so the catalogue is not vacuous; and the
	// padding-bits variant is only refused thanks to strict decoding.
	if _, err := f.s.SessionScheme().Authenticate(call(tok, sid)); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	if _, err := f.s.SessionScheme().Authenticate(call(f.signOwn(t, valid()), sid)); err != nil {
		t.Fatalf("valid hand-signed token refused: %v", err)
	}
	lax := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(f.clock.Now))
	if _, err := lax.ParseWithClaims(parts[0]+"."+parts[1]+"."+flipLow(parts[2]), &jwt.RegisteredClaims{},
		func(*jwt.Token) (any, error) { return f.key.pub, nil }); err != nil {
		t.Errorf("the padding-bits variant does not even pass a lax parser: %v", err)
	}
}

// TestRotatedOutKey: a token signed by a key that rotated out of signing
// keeps verifying until the key is removed, then is refused.
func TestRotatedOutKey(t *testing.T) {
	f := newSessFixture(t)
	old, oldSid := f.issue(t, payKey, payMerchant)
	k2, err := GenerateSigningKey("k2")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ring.Rotate(k2); err != nil {
		t.Fatal(err)
	}
	fresh, freshSid := f.issue(t, payKey, payMerchant)
	if hdr := decodeSeg(t, strings.Split(fresh, ".")[0]); hdr != `{"alg":"ES256","kid":"k2","typ":"JWT"}` {
		t.Errorf("new token's header %s, want kid k2", hdr)
	}
	h := f.callG.Authenticate()(okHandler)
	if serve(h, call(old, oldSid)).Code != 200 || serve(h, call(fresh, freshSid)).Code != 200 {
		t.Fatal("tokens of either key refused during the overlap")
	}
	if !f.ring.Remove("k1") {
		t.Fatal("Remove(k1)")
	}
	wantBody(t, serve(h, call(old, oldSid)), 401, pay88Unauthorized)
	if serve(h, call(fresh, freshSid)).Code != 200 {
		t.Error("token of the signing key refused")
	}
	// A token re-signed under the retired id by another key is refused too.
	f.clock.Advance(time.Second)
	if serve(h, call(sign(t, jwt.SigningMethodES256, k2.priv, map[string]any{"kid": "k1"}, f.claims(payMerchant, oldSid)), oldSid)).Code != 401 {
		t.Error("token under a retired kid accepted")
	}
}

func decodeSeg(t *testing.T, s string) string {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// flip changes the base64url character at i to another.
func flip(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// flipLow changes the last character of a base64url segment of 64 bytes in
// its unused low bits: lax decoders read the same bytes.
func flipLow(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := []byte(s)
	i := strings.IndexByte(alphabet, b[len(b)-1])
	b[len(b)-1] = alphabet[i^1]
	return string(b)
}

// TestTokensOfAnotherAPIAreRefused: a key of another API added to the ring
// (NewKeyRing takes other keys, to verify) opens nothing here: that API's
// tokens, valid there, name another issuer and audience.
func TestTokensOfAnotherAPIAreRefused(t *testing.T) {
	ours, err := GenerateSigningKey("ours")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := GenerateSigningKey("theirs")
	if err != nil {
		t.Fatal(err)
	}
	theirRing, _ := NewKeyRing(theirs)
	other, err := NewSessions("https://other.example.com", theirRing)
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := NewKeyRing(ours, theirs) // their key, to verify their tokens... by mistake
	s, err := NewSessions("https://api.example.com", ring)
	if err != nil {
		t.Fatal(err)
	}
	set, err := other.Issue(&Client{ID: "merchant-1"})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/x", nil)
	r.Header.Set("Authorization", "Bearer "+set.AccessToken)
	if _, err := other.AccessScheme().Authenticate(r); err != nil {
		t.Fatalf("the other API's own token there: %v", err)
	}
	if _, err := s.AccessScheme().Authenticate(r); !errors.Is(err, ErrInvalidToken) || !errors.Is(err, jwt.ErrTokenInvalidIssuer) {
		t.Errorf("another API's token here: %v, want ErrInvalidToken for its issuer", err)
	}
	// And the same ring under two names: still two APIs.
	twin, _ := NewSessions("https://api.example.com/b", ring)
	mine, _ := s.Issue(&Client{ID: "merchant-1"})
	r.Header.Set("Authorization", "Bearer "+mine.AccessToken)
	if _, err := twin.AccessScheme().Authenticate(r); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("a token of one name under another: %v", err)
	}
	if _, err := NewSessions("", ring); err == nil {
		t.Error("NewSessions without a name")
	}
	if _, err := NewSessions("has space", ring); err == nil {
		t.Error("NewSessions with a name with a space")
	}
}
