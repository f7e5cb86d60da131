package apiguard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

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
//     A repeated token's signature is verified once (see Sessions.parse);
//   - scheme-full: the same with the verification cache emptied each call;
//   - guard: g.Authenticate() around a handler, the whole request path.
func BenchmarkSessionVerify(b *testing.B) {
	f, set, keyfunc, r := verifyBench(b)

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
	b.Run("scheme-full", func(b *testing.B) {
		// The same, with the verification cache emptied before every call:
		// what every call cost before the cache, and a first call costs.
		scheme := f.s.SessionScheme()
		b.ReportAllocs()
		for b.Loop() {
			f.s.verified.Purge()
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
			if _, err := f.s.Login(context.Background(), c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSessionVerifyPaired runs the bare parse and the scheme on the
// same token in alternating order within each iteration, so that load from
// other processes weighs on both alike, and reports the median time of each
// (medians shrug off the preemptions of a shared machine) and their ratio
// (scheme/bare).
func BenchmarkSessionVerifyPaired(b *testing.B) {
	f, set, keyfunc, r := verifyBench(b)
	scheme := f.s.SessionScheme()
	bare := func() {
		if _, err := jwt.ParseWithClaims(set.AccessToken, &jwt.RegisteredClaims{}, keyfunc,
			jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(f.clock.Now)); err != nil {
			b.Fatal(err)
		}
	}
	ours := func() {
		if _, err := scheme.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
	var tBare, tOurs []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		first, second, t1, t2 := bare, ours, &tBare, &tOurs
		if len(tBare)%2 == 1 {
			first, second, t1, t2 = ours, bare, &tOurs, &tBare
		}
		start := time.Now()
		first()
		mid := time.Now()
		second()
		end := time.Now()
		*t1 = append(*t1, mid.Sub(start))
		*t2 = append(*t2, end.Sub(mid))
	}
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2])
	}
	mb, mo := median(tBare), median(tOurs)
	b.ReportMetric(mb, "bare-ns/op")
	b.ReportMetric(mo, "scheme-ns/op")
	b.ReportMetric(mo/mb, "scheme/bare")
}

// verifyBench issues a token and returns what both verification benchmarks
// use: the fixture, the token, a Keyfunc giving the bare parse the same
// public key, and a request presenting the token.
func verifyBench(b *testing.B) (*sessFixture, *TokenSet, jwt.Keyfunc, *http.Request) {
	f := newSessFixture(b)
	set, err := f.s.Issue(&Client{ID: payMerchant, Env: Sandbox, Scopes: []string{"charges:create"}})
	if err != nil {
		b.Fatal(err)
	}
	pub := f.key.pub
	keyfunc := func(*jwt.Token) (any, error) { return pub, nil }
	return f, set, keyfunc, call(set.AccessToken, set.SessionID)
}
