package apiguard

import (
	"net/http/httptest"
	"testing"
)

// BenchmarkObserve measures, in one run, what observation costs: Bearer
// (Authenticate) and a rate limit by IP, each with no observer and with an
// observer that counts Decisions. Without an observer a wrapper pays one
// nil check; with one, the state every observed request carries (one
// allocation where the wrapper would otherwise need none) and two reads of
// the clock around each store call.
func BenchmarkObserve(b *testing.B) {
	var n int
	count := WithObserver(func(d Decision) {
		if d.Allowed {
			n++
		}
	})
	b.Run("bearer/off", func(b *testing.B) {
		g := MustNew(Bearer(mockPayStore(b)), WithDialect(MockPay()), WithEnvironment(Sandbox))
		benchServe(b, g.Authenticate()(bareHandler), bearerRequest())
	})
	b.Run("bearer/on", func(b *testing.B) {
		g := MustNew(Bearer(mockPayStore(b)), WithDialect(MockPay()), WithEnvironment(Sandbox), count)
		benchServe(b, g.Authenticate()(bareHandler), bearerRequest())
	})
	limited := func(b *testing.B, opts ...Option) {
		mem, err := NewMemoryLimiter([]Window{benchWindow})
		if err != nil {
			b.Fatal(err)
		}
		g := MustNew(nil, opts...)
		r := httptest.NewRequest("GET", "/api/v1/payment/ORDER-1", nil)
		r.RemoteAddr = "10.0.0.1:4321"
		benchServe(b, g.RateLimit(mem, ByIP())(bareHandler), r)
	}
	b.Run("ratelimit/off", func(b *testing.B) { limited(b) })
	b.Run("ratelimit/on", func(b *testing.B) { limited(b, count) })
	if n == 0 {
		b.Fatal("the observer saw no decision")
	}
}
