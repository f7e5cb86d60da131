package apiguard

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// benchWriter is a ResponseWriter that keeps nothing, so that benchmarks
// measure the wrappers.
type benchWriter struct {
	h    http.Header
	code int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) WriteHeader(code int)        { w.code = code }

var okJSON = []byte(`{"status":"success"}`)

var jsonHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(okJSON)
})

// The limit of the benchmarks: 50 per 50 ns, which admits every request
// and gives headers of ordinary width.
var benchWindow = Window{Limit: 50, Period: 50 * time.Nanosecond}

func benchRateLimiter() *rate.Limiter {
	return rate.NewLimiter(rate.Every(benchWindow.Period/time.Duration(benchWindow.Limit)), benchWindow.Limit)
}

// floorOne is the floor: one rate.Limiter for every request.
func floorOne(next http.Handler) http.Handler {
	lim := benchRateLimiter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !lim.Allow() {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// floorMap is the other floor: a map of rate.Limiters by remote host
// behind one mutex, with no bound. With headers it is the floor of the
// wrapper's whole job: one clock read, and the same three RateLimit-*
// headers the wrapper writes, made as leanly as the wrapper makes them (the
// values from its table of decimals, the strings cut from its chunks, the
// names already canonical), so that neither side allocates for them.
func floorMap(next http.Handler, headers bool) http.Handler {
	var mu sync.Mutex
	m := map[string]*rate.Limiter{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		lim, ok := m[host]
		if !ok {
			lim = benchRateLimiter()
			m[host] = lim
		}
		mu.Unlock()
		now := time.Now()
		allowed := lim.AllowN(now, 1)
		if headers {
			tokens := lim.TokensAt(now)
			vs := headerStrings()
			vs[0] = decimal(int64(benchWindow.Limit))
			vs[1] = decimal(int64(tokens))
			vs[2] = decimal(ceilSeconds(time.Duration((float64(benchWindow.Limit) - tokens) * float64(benchWindow.Period) / float64(benchWindow.Limit))))
			h := w.Header()
			h[hdrLimit], h[hdrRemaining], h[hdrReset] = vs[0:1:1], vs[1:2:2], vs[2:3:3]
		}
		if !allowed {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// BenchmarkRateLimit compares the rate-limit wrapper (ByIP(), a
// MemoryLimiter, RateLimit-* headers on) with a bare handler and the three
// floors (the last writes the wrapper's headers too), on one key and on 100,000 keys, from one goroutine and from
// GOMAXPROCS goroutines, in two harnesses. "lean" reuses one ResponseWriter
// whose header map is cleared between requests, and its handler only writes
// the status: the strictest comparison. "nethttp" does per request what
// net/http and a JSON API handler do: a new header map, Content-Type set, a
// body written.
func BenchmarkRateLimit(b *testing.B) {
	for _, keys := range []int{1, 100_000} {
		addrs := make([]string, keys)
		for i := range addrs {
			addrs[i] = "10." + strconv.Itoa(i>>16&0xff) + "." + strconv.Itoa(i>>8&0xff) + "." + strconv.Itoa(i&0xff) + ":4321"
		}
		mem, err := NewMemoryLimiter([]Window{benchWindow}, WithCapacity(2*keys+1024))
		if err != nil {
			b.Fatal(err)
		}
		g := MustNew(nil)
		rl := g.RateLimit(mem, ByIP())
		type handler struct {
			name string
			h    http.Handler
		}
		wrap := func(bare http.Handler) []handler {
			return []handler{
				{"bare", bare},
				{"floor=rate.Limiter", floorOne(bare)},
				{"floor=mutex-map", floorMap(bare, false)},
				{"floor=mutex-map+headers", floorMap(bare, true)},
				{"apiguard", rl(bare)},
			}
		}
		harnesses := []struct {
			name     string
			handlers []handler
			serve    func(w *benchWriter, h http.Handler, r *http.Request)
		}{
			{"lean", wrap(bareHandler), func(w *benchWriter, h http.Handler, r *http.Request) {
				clear(w.h)
				h.ServeHTTP(w, r)
			}},
			{"nethttp", wrap(jsonHandler), func(w *benchWriter, h http.Handler, r *http.Request) {
				w.h = make(http.Header)
				h.ServeHTTP(w, r)
			}},
		}
		// Warm every map with every key, to measure the steady state.
		w := &benchWriter{h: http.Header{}}
		r := httptest.NewRequest("GET", "/product", nil)
		for _, hn := range harnesses {
			for _, h := range hn.handlers {
				for _, a := range addrs {
					r.RemoteAddr = a
					h.h.ServeHTTP(w, r)
				}
			}
		}
		for _, hn := range harnesses {
			name := "keys=" + strconv.Itoa(keys) + "/" + hn.name
			for _, h := range hn.handlers {
				b.Run(name+"/serial/"+h.name, func(b *testing.B) {
					w := &benchWriter{h: http.Header{}}
					r := httptest.NewRequest("GET", "/product", nil)
					b.ReportAllocs()
					defer reportCPU(b)()
					i := 0
					for b.Loop() {
						r.RemoteAddr = addrs[i]
						if i++; i == len(addrs) {
							i = 0
						}
						hn.serve(w, h.h, r)
					}
					if w.code != http.StatusOK {
						b.Fatalf("status %d", w.code)
					}
				})
			}
			for _, h := range hn.handlers {
				b.Run(name+"/parallel/"+h.name, func(b *testing.B) {
					var start atomic.Int64
					b.ReportAllocs()
					defer reportCPU(b)()
					b.RunParallel(func(pb *testing.PB) {
						w := &benchWriter{h: http.Header{}, code: http.StatusOK}
						r := httptest.NewRequest("GET", "/product", nil)
						i := int(start.Add(7919)) % len(addrs)
						for pb.Next() {
							r.RemoteAddr = addrs[i]
							if i++; i == len(addrs) {
								i = 0
							}
							hn.serve(w, h.h, r)
						}
						if w.code != http.StatusOK {
							b.Errorf("status %d", w.code)
						}
					})
				})
			}
		}
	}
}

// BenchmarkMemoryLimiterTake measures Take alone, on 100,000 keys.
func BenchmarkMemoryLimiterTake(b *testing.B) {
	l, err := NewMemoryLimiter([]Window{PerMinute(10), PerHour(100)}, WithCapacity(200_000))
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = "ip:10.0." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&0xff)
	}
	b.ReportAllocs()
	defer reportCPU(b)()
	i := 0
	for b.Loop() {
		l.Take(b.Context(), keys[i], 1)
		if i++; i == len(keys) {
			i = 0
		}
	}
}

// BenchmarkRateLimitParts measures the parts of the wrapper's work on one
// key, to show where its time goes.
func BenchmarkRateLimitParts(b *testing.B) {
	g, byIP := MustNew(nil), ByIP()
	r := httptest.NewRequest("GET", "/product", nil)
	r.RemoteAddr = "10.1.2.3:4321"
	mem, err := NewMemoryLimiter([]Window{benchWindow})
	if err != nil {
		b.Fatal(err)
	}
	floor := benchRateLimiter()
	h := http.Header{}
	parts := []struct {
		name string
		f    func()
	}{
		{"time.Now", func() { sinkTime = time.Now() }},
		{"ClientIP", func() { g.ClientIP(r) }},
		{"net.SplitHostPort", func() { net.SplitHostPort(r.RemoteAddr) }},
		{"ByIP", func() { byIP.key(g, r, nil) }},
		{"MemoryLimiter.Take", func() { mem.Take(r.Context(), "ip:10.1.2.3", 1) }},
		{"rate.Limiter.Allow", func() { floor.Allow() }},
		{"headers", func() {
			clear(h)
			res := LimitResult{Limit: 50, Remaining: 49, Reset: time.Nanosecond}
			vs := make([]string, 3)
			vs[0], vs[1], vs[2] = strconv.Itoa(res.Limit), strconv.Itoa(res.Remaining), strconv.FormatInt(ceilSeconds(res.Reset), 10)
			h[hdrLimit], h[hdrRemaining], h[hdrReset] = vs[0:1:1], vs[1:2:2], vs[2:3:3]
		}},
	}
	for _, p := range parts {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				p.f()
			}
		})
	}
}

// reportCPU returns a func that reports the process's CPU time per
// operation since reportCPU was called, as cpu-ns/op. Unlike ns/op, it
// does not count the time the benchmark waits for a CPU on a shared
// machine. Under RunParallel it sums the goroutines' CPU time.
func reportCPU(b *testing.B) func() {
	c0 := cpuTime()
	return func() {
		if c := cpuTime(); c > 0 && b.N > 0 {
			b.ReportMetric(float64(c-c0)/float64(b.N), "cpu-ns/op")
		}
	}
}

// sinkTime keeps the benchmark's clock reads from being optimized away.
var sinkTime time.Time
