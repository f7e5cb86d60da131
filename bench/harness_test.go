package bench

import (
	"flag"
	"net/http"
	"net/http/httptest"
	"testing"
)

// quickBenchmarks makes testing.Benchmark run 100 iterations, for the
// duration of a test.
func quickBenchmarks(t *testing.T) {
	f := flag.Lookup("test.benchtime")
	old := f.Value.String()
	if err := flag.Set("test.benchtime", "100x"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flag.Set("test.benchtime", old) })
}

// TestRunChecksAcceptance: the harness passes a handler that accepts every
// request, and fails one that refuses, one that answers 200 without
// reaching the handler, and ones that refuse after the first request.
func TestRunChecksAcceptance(t *testing.T) {
	quickBenchmarks(t)
	// refuseLater accepts the first request and refuses the others, after
	// they reach the handler when reach is set.
	refuseLater := func(reach bool) http.Handler {
		n := 0
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n++; n > 1 {
				if reach {
					reached(r)
				}
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			OK.ServeHTTP(w, r)
		})
	}
	same := func(h http.Handler) func() http.Handler { return func() http.Handler { return h } }
	for _, tc := range []struct {
		name string
		h    func() http.Handler // a new one for each run of the benchmark function
		pass bool
	}{
		{"ok", same(OK), true},
		{"refused", same(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) })), false},
		{"handler-not-reached", same(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })), false},
		{"refused-later", func() http.Handler { return refuseLater(false) }, false},
		{"reached-but-refused-later", func() http.Handler { return refuseLater(true) }, false},
	} {
		t.Run(tc.name+"/serial", func(t *testing.T) {
			res := testing.Benchmark(func(b *testing.B) { Run(b, tc.h(), httptest.NewRequest("GET", "/", nil), nil) })
			if got := res.N > 0; got != tc.pass {
				t.Errorf("the benchmark passed: %v, want %v", got, tc.pass)
			}
		})
		if tc.name != "ok" && tc.name != "refused" && tc.name != "handler-not-reached" {
			continue // its counter is not safe for parallel use
		}
		t.Run(tc.name+"/parallel", func(t *testing.T) {
			res := testing.Benchmark(func(b *testing.B) {
				RunParallel(b, tc.h(), func() *http.Request { return httptest.NewRequest("GET", "/", nil) }, nil)
			})
			if got := res.N > 0; got != tc.pass {
				t.Errorf("the benchmark passed: %v, want %v", got, tc.pass)
			}
		})
	}
}

// TestHarnessAllocatesNothing: what the harness does per request (reset
// the writer, serve OK, count the probe) allocates nothing, so that a
// benchmark's allocations are the code's under test.
func TestHarnessAllocatesNothing(t *testing.T) {
	r, p := WithProbe(httptest.NewRequest("GET", "/", nil))
	w := NewDiscard()
	v := []string{"1"}
	allocs := testing.AllocsPerRun(100, func() {
		w.Reset()
		w.Header()["X-Test"] = v
		OK.ServeHTTP(w, r)
		w.Write([]byte("ok"))
	})
	if allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
	if p.Reached() != 101 || w.Status() != http.StatusOK {
		t.Errorf("reached %d, status %d; want 101 and 200", p.Reached(), w.Status())
	}
}
