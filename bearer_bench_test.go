package apiguard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

var bareHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })

func benchServe(b *testing.B, h http.Handler, r *http.Request) {
	b.Helper()
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

func bearerRequest() *http.Request {
	r := httptest.NewRequest("GET", "/api/v1/payment/ORDER-1", nil)
	r.Header.Set("Authorization", "Bearer "+keyA)
	return r
}

// BenchmarkBearer compares, in one run: a bare handler; the floor of the
// job written by hand (SHA-256 of the presented key, a map lookup, a
// constant-time compare); and the Bearer scheme through Authenticate.
func BenchmarkBearer(b *testing.B) {
	b.Run("bare", func(b *testing.B) { benchServe(b, bareHandler, bearerRequest()) })

	b.Run("floor", func(b *testing.B) { benchServe(b, bearerFloor(false), bearerRequest()) })
	// The floor plus what any net/http middleware pays to hand the client to
	// the handler: a context value and the request copy WithContext makes.
	b.Run("floor+ctx", func(b *testing.B) { benchServe(b, bearerFloor(true), bearerRequest()) })

	b.Run("apiguard", func(b *testing.B) {
		g := MustNew(Bearer(mockPayStore(b)), WithDialect(MockPay()), WithEnvironment(Sandbox))
		benchServe(b, g.Authenticate()(bareHandler), bearerRequest())
	})

	b.Run("apiguard+scope", func(b *testing.B) {
		g := MustNew(Bearer(mockPayStore(b)), WithDialect(MockPay()), WithEnvironment(Sandbox))
		benchServe(b, Chain(g.Authenticate(), g.RequireScope("payment:read"))(bareHandler), bearerRequest())
	})
}

// bearerFloor is the floor of Bearer's job written by hand: SHA-256 of the
// presented key, a map lookup and a constant-time compare; with handoff,
// the client is also put in the context for the handler.
func bearerFloor(handoff bool) http.Handler {
	type ctxKey struct{}
	digest := sha256.Sum256([]byte(keyA))
	m := map[[sha256.Size]byte]*Client{digest: {ID: "client-a"}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get("Authorization")
		if !strings.HasPrefix(v, "Bearer ") {
			w.WriteHeader(401)
			return
		}
		d := sha256.Sum256([]byte(v[7:]))
		c, ok := m[d]
		if !ok || subtle.ConstantTimeCompare(d[:], digest[:]) != 1 || c == nil {
			w.WriteHeader(401)
			return
		}
		if handoff {
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, c))
		}
		bareHandler.ServeHTTP(w, r)
	})
}
