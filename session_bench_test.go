package apiguard

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkSessionVerify compares the session scheme with a bare
// jwt.ParseWithClaims of the same token, in the same run:
//
//   - bare: jwt.ParseWithClaims with RegisteredClaims and WithValidMethods,
//     as a hand-written verifier would call it (a parser per call);
//   - bare-strict: one reused parser with the scheme's options (ES256 only,
//     exp required, iat checked, leeway, strict decoding);
//   - scheme: SessionScheme().Authenticate: header checks, parse and
//     signature, kind, lifetime, environment, revocation, session id,
//     and the Client;
//   - guard: g.Authenticate() around a handler, the whole request path.
func BenchmarkSessionVerify(b *testing.B) {
	f := newSessFixture(b)
	set, err := f.s.Issue(&Client{ID: payMerchant, Env: Sandbox, Scopes: []string{"charges:create"}})
	if err != nil {
		b.Fatal(err)
	}
	pub := f.key.pub
	keyfunc := func(*jwt.Token) (any, error) { return pub, nil }
	r := call(set.AccessToken, set.SessionID)

	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jwt.ParseWithClaims(set.AccessToken, &jwt.RegisteredClaims{}, keyfunc,
				jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(f.clock.Now)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bare-strict", func(b *testing.B) {
		p := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
			jwt.WithLeeway(f.s.leeway), jwt.WithTimeFunc(f.clock.Now), jwt.WithStrictDecoding())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.ParseWithClaims(set.AccessToken, &jwt.RegisteredClaims{}, keyfunc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scheme", func(b *testing.B) {
		scheme := f.s.SessionScheme()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := scheme.Authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("guard", func(b *testing.B) {
		h := f.callG.Authenticate()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		w := httptest.NewRecorder()
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, r)
		}
	})
}

// BenchmarkSessionIssue measures issuance: Issue alone (a session id, a
// token id, an ES256 signature), the whole token endpoint (key lookup,
// merchant check, Issue, the JSON body), and Login's three tokens.
func BenchmarkSessionIssue(b *testing.B) {
	f := newSessFixture(b)
	c := &Client{ID: payMerchant, Env: Sandbox}
	b.Run("issue", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.s.Issue(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("endpoint", func(b *testing.B) {
		r := httptest.NewRequest("POST", "/api/auth/token", nil)
		r.Header.Set("x-api-key", payKey)
		r.Header.Set("x-merchant-id", payMerchant)
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			f.issuer.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	})
	b.Run("login", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.s.Login(c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
