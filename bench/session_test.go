package bench

import (
	"context"
	"crypto/ecdsa"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
	jwtmiddleware "github.com/auth0/go-jwt-middleware/v2"
	"github.com/auth0/go-jwt-middleware/v2/validator"
	"github.com/golang-jwt/jwt/v5"
)

// sessionKeys is the signing key of the session benchmarks, made once:
// apiguard's Sessions sign with it, and the other libraries verify its
// tokens with its public half.
type sessionKeys struct {
	sessions *apiguard.Sessions
	priv     *ecdsa.PrivateKey
	pub      *ecdsa.PublicKey
}

var sessionSetup = sync.OnceValues(func() (*sessionKeys, error) {
	k, err := apiguard.GenerateSigningKey("bench")
	if err != nil {
		return nil, err
	}
	ring, err := apiguard.NewKeyRing(k)
	if err != nil {
		return nil, err
	}
	s, err := apiguard.NewSessions(sessionName, ring, apiguard.WithTokenLifetime(apiguard.AccessToken, time.Hour))
	if err != nil {
		return nil, err
	}
	privPEM, err := k.PrivatePEM()
	if err != nil {
		return nil, err
	}
	priv, err := jwt.ParseECPrivateKeyFromPEM(privPEM)
	if err != nil {
		return nil, err
	}
	return &sessionKeys{sessions: s, priv: priv, pub: &priv.PublicKey}, nil
})

func mustSessionKeys(tb testing.TB) *sessionKeys {
	tb.Helper()
	k, err := sessionSetup()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// sessionName is the name of the API of the session benchmarks: the
// issuer and audience of its tokens, which every library checks.
const sessionName = "bench-api"

// token is one request's credentials: its Authorization value, and for
// SessionScheme its X-Session-Id.
type token struct{ auth, sid []string }

// sessionLibs are the libraries of BenchmarkSessionVerify; mint returns n
// new tokens (each of its own session) that the handler accepts. Every
// library verifies apiguard's tokens.
var sessionLibs = []struct {
	name string
	make func(k *sessionKeys) http.Handler
	mint func(tb testing.TB, k *sessionKeys, n int) []token
}{
	{"apiguard-access",
		func(k *sessionKeys) http.Handler {
			return apiguard.MustNew(k.sessions.AccessScheme()).Authenticate()(OK)
		},
		mintApiguard},
	{"apiguard-session",
		func(k *sessionKeys) http.Handler {
			return apiguard.MustNew(k.sessions.SessionScheme()).Authenticate()(OK)
		},
		mintApiguard},
	// auth0's go-jwt-middleware with its validator: ES256, issuer and
	// audience checked, 1 s of leeway.
	{"auth0",
		func(k *sessionKeys) http.Handler {
			v, err := validator.New(func(context.Context) (any, error) { return k.pub, nil },
				validator.ES256, sessionName, []string{sessionName}, validator.WithAllowedClockSkew(time.Second))
			if err != nil {
				panic(err)
			}
			return jwtmiddleware.New(v.ValidateToken).CheckJWT(OK)
		},
		mintApiguard},
	// The floor parses apiguard's access tokens.
	{"floor",
		func(k *sessionKeys) http.Handler { return SessionFloor(k.pub, sessionName, OK) },
		mintApiguard},
}

func mintApiguard(tb testing.TB, k *sessionKeys, n int) []token {
	ts := make([]token, n)
	for i := range ts {
		set, err := k.sessions.Issue(&apiguard.Client{ID: "merchant-1", Scopes: []string{"payment:read"}})
		if err != nil {
			tb.Fatal(err)
		}
		ts[i] = token{auth: []string{"Bearer " + set.AccessToken}, sid: []string{set.SessionID}}
	}
	return ts
}

func sessionRequest() *http.Request {
	return httptest.NewRequest("GET", "/api/v1/balance", nil)
}

// useToken returns the Vary that presents ts[i] (repeated: ts[0]).
func useToken(ts []token, repeated bool) Vary {
	return func(r *http.Request, i int) {
		if repeated {
			i = 0
		}
		r.Header["Authorization"] = ts[i].auth
		if ts[i].sid != nil {
			r.Header["X-Session-Id"] = ts[i].sid
		}
	}
}

// BenchmarkSessionVerify compares the verification of ES256 access tokens:
// apiguard's AccessScheme and SessionScheme (the token and x-session-id)
// through Authenticate, auth0's go-jwt-middleware, and a bare golang-jwt
// parse (SessionFloor). In case=repeated every request presents the same
// token; in case=fresh each presents a token never presented before (a
// pool of b.N+1 tokens minted before the timer starts), so that a
// verification cache shows in the first and not in the second.
func BenchmarkSessionVerify(b *testing.B) {
	k := mustSessionKeys(b)
	for _, repeated := range []bool{true, false} {
		c := "case=fresh"
		if repeated {
			c = "case=repeated"
		}
		for _, lib := range sessionLibs {
			h := lib.make(k)
			b.Run(c+"/lib="+lib.name, func(b *testing.B) {
				n := b.N + 1
				if repeated {
					n = 1
				}
				Run(b, h, sessionRequest(), useToken(lib.mint(b, k, n), repeated))
			})
		}
	}
}
