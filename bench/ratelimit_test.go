package bench

import (
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/didip/tollbooth/v7"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/sethvargo/go-limiter/httplimit"
	"github.com/sethvargo/go-limiter/memorystore"
	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/middleware/stdlib"
	ulmemory "github.com/ulule/limiter/v3/drivers/store/memory"
)

// The limits of BenchmarkRateLimit, high enough that no request is
// refused: token buckets (apiguard's GCRA, x/time/rate in echo, tollbooth
// and the floors) refill at 10^9 a second with a burst of 50, so that
// their headers have ordinary widths; the window counters (httprate,
// ulule) allow 10^9 a second, sethvargo's buckets 10^9 a day (see there).
const (
	rateBurst  = 50
	ratePerSec = 1e9
)

// rateAddr returns the i-th client address of the rate-limit benchmarks.
func rateAddr(i int) string {
	return "10." + strconv.Itoa(i>>16&0xff) + "." + strconv.Itoa(i>>8&0xff) + "." + strconv.Itoa(i&0xff) + ":4321"
}

// rateAddrs holds rateAddr(0) to rateAddr(99,999), made once, so that
// varying the address allocates nothing.
var rateAddrs = sync.OnceValue(func() []string {
	a := make([]string, 100_000)
	for i := range a {
		a[i] = rateAddr(i)
	}
	return a
})

func rateRequest() *http.Request {
	r := httptest.NewRequest("GET", "/product", nil)
	r.RemoteAddr = rateAddr(0)
	return r
}

// hostKey keys a request by the host of its RemoteAddr, as apiguard's
// ByIP does.
func hostKey(r *http.Request) (string, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	return host, err
}

// rateLibs are the libraries of BenchmarkRateLimit, each limiting by the
// client's address; make returns the handler and what releases it.
var rateLibs = []struct {
	name string
	make func(tb testing.TB, keys int) (http.Handler, func())
}{
	{"ref-bare", func(testing.TB, int) (http.Handler, func()) { return OK, func() {} }},
	{"ref-echo", func(testing.TB, int) (http.Handler, func()) {
		e := echo.New()
		e.GET("/product", EchoOK)
		return e, func() {}
	}},
	{"ref-chi", func(testing.TB, int) (http.Handler, func()) {
		m := chi.NewRouter()
		m.Method("GET", "/product", OK)
		return m, func() {}
	}},
	// apiguard: RateLimit(ByIP()) with a MemoryLimiter, headers on.
	{"apiguard", func(tb testing.TB, keys int) (http.Handler, func()) {
		mem, err := apiguard.NewMemoryLimiter([]apiguard.Window{{Limit: rateBurst, Period: rateBurst * time.Second / ratePerSec}},
			apiguard.WithCapacity(2*keys+1024))
		if err != nil {
			tb.Fatal(err)
		}
		return apiguard.MustNew(nil).RateLimit(mem, apiguard.ByIP())(OK), func() {}
	}},
	// echo's RateLimiter with its memory store, keyed by RealIP (the
	// remote address here): no headers.
	{"echo", func(testing.TB, int) (http.Handler, func()) {
		e := echo.New()
		store := middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{Rate: ratePerSec, Burst: rateBurst})
		e.GET("/product", EchoOK, middleware.RateLimiter(store))
		return e, func() {}
	}},
	// httprate (chi's): a sliding window counter; X-RateLimit-Limit,
	// -Remaining and -Reset.
	{"httprate", func(testing.TB, int) (http.Handler, func()) {
		return httprate.LimitBy(ratePerSec, time.Second, hostKey)(OK), func() {}
	}},
	// tollbooth: x/time/rate buckets in an expirable cache; X-Rate-Limit-*
	// and RateLimit-* headers.
	{"tollbooth", func(testing.TB, int) (http.Handler, func()) {
		lmt := tollbooth.NewLimiter(ratePerSec, nil).SetBurst(rateBurst).SetIPLookups([]string{"RemoteAddr"})
		return tollbooth.LimitHandler(lmt, OK), func() {}
	}},
	// ulule/limiter: a fixed window counter in its memory store;
	// X-RateLimit-* headers.
	{"ulule", func(testing.TB, int) (http.Handler, func()) {
		l := limiter.New(ulmemory.NewStore(), limiter.Rate{Period: time.Second, Limit: ratePerSec})
		return stdlib.NewMiddleware(l).Handler(OK), func() {}
	}},
	// sethvargo/go-limiter: a token bucket per interval in its memory
	// store; X-RateLimit-* headers. Its 10^9 tokens are given for a day,
	// not a second: past its first interval the store refills a bucket
	// with interval/tokens tokens a tick, 1 for 10^9 a second, and the
	// benchmark would measure refusals.
	{"sethvargo", func(tb testing.TB, _ int) (http.Handler, func()) {
		store, err := memorystore.New(&memorystore.Config{Tokens: ratePerSec, Interval: 24 * time.Hour})
		if err != nil {
			tb.Fatal(err)
		}
		m, err := httplimit.NewMiddleware(store, hostKey)
		if err != nil {
			tb.Fatal(err)
		}
		return m.Handle(OK), func() { store.Close(tb.Context()) }
	}},
	{"floor", func(testing.TB, int) (http.Handler, func()) {
		return RateFloor(ratePerSec, rateBurst, true, OK), func() {}
	}},
	{"floor-noheaders", func(testing.TB, int) (http.Handler, func()) {
		return RateFloor(ratePerSec, rateBurst, false, OK), func() {}
	}},
}

// BenchmarkRateLimit compares rate limiting by client address on one key
// and on 100,000 keys (a different address each request, every one seen
// before the timer starts), from one goroutine and from GOMAXPROCS
// goroutines (b.RunParallel): apiguard (RateLimit, ByIP, a MemoryLimiter,
// headers on), echo's RateLimiter, httprate, tollbooth, ulule/limiter,
// sethvargo/go-limiter, the floor with apiguard's three headers and the
// floor without headers (RateFloor). The serial and the parallel case of
// a number of keys share one limiter per library, dropped after them.
// With -benchtime=1x the limiters are not warmed with every key first.
func BenchmarkRateLimit(b *testing.B) {
	for _, keys := range []int{1, 100_000} {
		addrs := rateAddrs()[:keys]
		vary := func(r *http.Request, i int) { r.RemoteAddr = addrs[i%keys] }
		c := "case=" + map[int]string{1: "1key", 100_000: "100k"}[keys]
		for _, lib := range rateLibs {
			var h http.Handler
			var release func()
			build := func(b *testing.B) {
				if h != nil {
					return
				}
				h, release = lib.make(b, keys)
				if onePass() {
					return // no steady state to reach for one request
				}
				w, r := NewDiscard(), rateRequest()
				for i := range keys {
					w.Reset()
					vary(r, i)
					h.ServeHTTP(w, r)
				}
				runtime.GC()
			}
			b.Run(c+"/lib="+lib.name, func(b *testing.B) {
				build(b)
				Run(b, h, rateRequest(), vary)
			})
			b.Run(c+"-parallel/lib="+lib.name, func(b *testing.B) {
				build(b)
				RunParallel(b, h, rateRequest, vary)
			})
			if release != nil {
				release()
			}
			h = nil
		}
	}
}
