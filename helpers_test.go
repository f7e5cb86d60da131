package apiguard

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

// testClock is a settable clock for tests.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// okHandler answers 200 with the id of the client in the context.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if c, ok := ClientFrom(r.Context()); ok {
		w.Header().Set("X-Client", c.ID)
	}
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("ok"))
})

// clientSystem returns the client-system API's dialect: Problem in
// Indonesian unless x-language asks for English, as its documentation says.
func clientSystem() *JSONDialect {
	d := Problem()
	d.DefaultLanguage = "id"
	return d
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// wantBody fails t unless w has status and a JSON body equal to want once
// both are decoded.
func wantBody(t *testing.T, w *httptest.ResponseRecorder, status int, want string) {
	t.Helper()
	if w.Code != status {
		t.Errorf("status = %d, want %d (body %s)", w.Code, status, w.Body)
	}
	var got, exp any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q is not JSON: %v", w.Body, err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatalf("bad want %q: %v", want, err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("body = %s\nwant   %s", w.Body, want)
	}
}

func mustStore(t testing.TB, specs ...KeySpec) *MemoryKeyStore {
	t.Helper()
	s, err := NewMemoryKeyStore()
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range specs {
		if err := s.Add(sp); err != nil {
			t.Fatal(err)
		}
	}
	return s
}
