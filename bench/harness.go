package bench

import (
	"context"
	"flag"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/labstack/echo/v4"
)

// Discard is an http.ResponseWriter that keeps nothing. Its header map is
// reused (Reset clears it between requests), so it allocates nothing
// itself: what a benchmark counts is what the code under test allocates.
// Unlike net/http's writer it does not make a header map per response.
type Discard struct {
	h       http.Header
	status  int
	refused int // responses whose status was not 200
}

// NewDiscard returns a Discard with an empty header map.
func NewDiscard() *Discard { return &Discard{h: make(http.Header)} }

// Header returns the response's header map.
func (d *Discard) Header() http.Header { return d.h }

// Write discards p, writing the status 200 first if none was written.
func (d *Discard) Write(p []byte) (int, error) {
	if d.status == 0 {
		d.WriteHeader(http.StatusOK)
	}
	return len(p), nil
}

// WriteHeader records the status code.
func (d *Discard) WriteHeader(code int) {
	d.status = code
	if code != http.StatusOK {
		d.refused++
	}
}

// Status returns the status of the last response, 0 if none was written.
func (d *Discard) Status() int { return d.status }

// Reset clears the header map and the status, for the next request.
func (d *Discard) Reset() {
	clear(d.h)
	d.status = 0
}

// A Probe counts the requests that reached the handler (OK, EchoOK): it
// travels in the request's context, which every middleware passes on.
type Probe struct{ reached int }

// Reached returns how many requests reached the handler.
func (p *Probe) Reached() int { return p.reached }

type probeKey struct{}

// WithProbe returns a shallow copy of r carrying a new Probe in its
// context, and the Probe.
func WithProbe(r *http.Request) (*http.Request, *Probe) {
	p := new(Probe)
	return r.WithContext(context.WithValue(r.Context(), probeKey{}, p)), p
}

func reached(r *http.Request) {
	if p, ok := r.Context().Value(probeKey{}).(*Probe); ok {
		p.reached++
	}
}

// OK is the handler of every net/http benchmark: it counts the request on
// its Probe and writes the status 200 and no body.
var OK http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	reached(r)
	w.WriteHeader(http.StatusOK)
})

// EchoOK is OK for echo.
func EchoOK(c echo.Context) error {
	reached(c.Request())
	return c.NoContent(http.StatusOK)
}

// A Vary changes the prepared request before its i-th use (i from 0): a
// client address, a token, a body to rewind. It must not allocate.
type Vary func(r *http.Request, i int)

// Run is the serial harness: it serves r to h once, untimed, and fails b
// unless that request was accepted and reached the handler; then it serves
// r b.N times, calling vary (if not nil) before each, and fails b unless
// every request was accepted and reached the handler. Uses of r are
// numbered from 0 (the checked request) to b.N.
func Run(b *testing.B, h http.Handler, r *http.Request, vary Vary) {
	b.Helper()
	r, p := WithProbe(r)
	w := NewDiscard()
	if vary != nil {
		vary(r, 0)
	}
	h.ServeHTTP(w, r)
	if w.status != http.StatusOK || p.reached != 1 {
		b.Fatalf("the first request: status %d, %d requests reached the handler; want 200 and 1", w.status, p.reached)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		w.Reset()
		if vary != nil {
			vary(r, i)
		}
		h.ServeHTTP(w, r)
	}
	b.StopTimer()
	if w.refused != 0 || p.reached != b.N+1 {
		b.Fatalf("%d of %d requests refused, %d reached the handler", w.refused, b.N+1, p.reached)
	}
}

// RunParallel is the parallel harness (b.RunParallel): each goroutine
// serves its own request from newReq to h, calling vary (if not nil)
// before each use with a running index that starts at a different place in
// each goroutine (i*7919), and checks its first request as Run does. It
// fails b unless every request was accepted and reached the handler.
func RunParallel(b *testing.B, h http.Handler, newReq func() *http.Request, vary Vary) {
	b.Helper()
	var start atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r, p := WithProbe(newReq())
		w := NewDiscard()
		i := int(start.Add(1) * 7919)
		if vary != nil {
			vary(r, i)
		}
		h.ServeHTTP(w, r)
		if w.status != http.StatusOK || p.reached != 1 {
			b.Errorf("the first request: status %d, %d requests reached the handler; want 200 and 1", w.status, p.reached)
			for pb.Next() {
			}
			return
		}
		n := 1
		for pb.Next() {
			i++
			w.Reset()
			if vary != nil {
				vary(r, i)
			}
			h.ServeHTTP(w, r)
			n++
		}
		if w.refused != 0 || p.reached != n {
			b.Errorf("%d of %d requests refused, %d reached the handler", w.refused, n, p.reached)
		}
	})
}

// onePass reports whether the benchmarks run with -benchtime=1x, once
// each, as CI runs them to keep them compiling and working: the
// benchmarks then skip what takes seconds to set up and measures nothing
// new.
func onePass() bool {
	f := flag.Lookup("test.benchtime")
	return f != nil && f.Value.String() == "1x"
}
