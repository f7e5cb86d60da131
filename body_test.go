package apiguard

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// bodyScheme authenticates by a key in the body, as a user's own Scheme
// would: through ReadBody, the one owner of the body.
type bodyScheme struct{ limit int64 }

func (b bodyScheme) Authenticate(r *http.Request) (*Client, error) {
	body, err := ReadBody(r, b.limit)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(body, []byte("key=k1")) {
		return nil, ErrInvalidKey
	}
	return &Client{ID: "k1"}, nil
}

func TestBodyHandedOnWhole(t *testing.T) {
	g := MustNew(bodyScheme{limit: 64})
	var got []byte
	var gotLen int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		gotLen = r.ContentLength
		again, _ := r.GetBody()
		if b, _ := io.ReadAll(again); !bytes.Equal(b, got) {
			t.Error("GetBody differs")
		}
	})
	// The scope check runs first and resolves the identity (reading the
	// body); the handler still gets every byte.
	for _, body := range []string{"key=k1", "key=k1&" + strings.Repeat("x", 57)} {
		for _, stack := range [][]Middleware{{g.RequireScope(), g.Authenticate()}, {g.Authenticate(), g.RequireScope()}} {
			got = nil
			w := serve(Chain(stack...)(h), httptest.NewRequest("POST", "/", strings.NewReader(body)))
			if w.Code != 200 || string(got) != body || gotLen != int64(len(body)) {
				t.Errorf("body %d bytes: status %d, handler got %q (len %d)", len(body), w.Code, got, gotLen)
			}
		}
	}
	// Past the limit: 413, and the handler is not called.
	got = nil
	w := serve(g.Authenticate()(h), httptest.NewRequest("POST", "/", strings.NewReader("key=k1"+strings.Repeat("x", 59))))
	if w.Code != 413 || got != nil {
		t.Errorf("over limit: status %d", w.Code)
	}
	// Unknown length, past the limit.
	r := httptest.NewRequest("POST", "/", io.NopCloser(strings.NewReader(strings.Repeat("y", 100))))
	r.ContentLength = -1
	if w := serve(g.Authenticate()(h), r); w.Code != 413 {
		t.Errorf("chunked over limit: status %d", w.Code)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestBodyReadErrorIs400(t *testing.T) {
	g := MustNew(bodyScheme{limit: 64})
	r := httptest.NewRequest("POST", "/", failingReader{})
	if w := serve(g.Authenticate()(okHandler), r); w.Code != 400 {
		t.Errorf("status %d, want 400", w.Code)
	}
}

// TestGateKeepsBody: a wrapper that needs no state, placed inside one that
// read the body, still hands the handler every byte.
func TestGateKeepsBody(t *testing.T) {
	g := MustNew(bodyScheme{limit: 64})
	var got string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
	})
	r := httptest.NewRequest("POST", "/", strings.NewReader("key=k1&x=1"))
	r.Header.Set("Content-Type", "application/json")
	w := serve(Chain(g.Authenticate(), g.RequireJSON())(h), r)
	if w.Code != 200 || got != "key=k1&x=1" {
		t.Errorf("status %d, handler got %q", w.Code, got)
	}
}

// TestUserSchemeSharesKeptBody: a user's Scheme, a user's Check and the
// handler each read the body, through ReadBody or r.Body, in either order
// and with a middleware of someone else's in between that copies the
// request: every one of them gets every byte.
func TestUserSchemeSharesKeptBody(t *testing.T) {
	const body = "key=k1&amount=100"
	g := MustNew(bodyScheme{limit: 64})
	var seen []string
	check := g.Check(func(r *http.Request) error {
		b, err := ReadBody(r, 64)
		seen = append(seen, string(b))
		return err
	})
	foreign := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(r.Context())) // a copy apiguard did not make
		})
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		again, _ := ReadBody(r, 1) // the first read decided: the limit no longer matters
		seen = append(seen, string(b), string(again))
	})
	for name, stack := range map[string][]Middleware{
		"scheme first":  {g.Authenticate(), check},
		"check first":   {check, g.Authenticate()},
		"foreign first": {foreign, g.Authenticate(), foreign, check, foreign},
		"foreign after": {g.Authenticate(), foreign, check},
	} {
		seen = nil
		w := serve(Chain(stack...)(h), httptest.NewRequest("POST", "/", strings.NewReader(body)))
		if w.Code != 200 || len(seen) != 3 {
			t.Errorf("%s: status %d, reads %q", name, w.Code, seen)
			continue
		}
		for _, s := range seen {
			if s != body {
				t.Errorf("%s: a reader got %q", name, s)
			}
		}
	}
}

// TestHandOnKeepsOwnRequest: once a wrapper has made the request that
// carries the state, handing the kept body on changes that request in
// place rather than copying it again.
func TestHandOnKeepsOwnRequest(t *testing.T) {
	g := MustNew(bodyScheme{limit: 64})
	var own bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := stateFrom(r.Context())
		own = s != nil && s.own == r
	})
	serve(Chain(g.Authenticate(), g.RequireScope())(h), httptest.NewRequest("POST", "/", strings.NewReader("key=k1")))
	if !own {
		t.Error("the handler got a copy of the state's own request")
	}
}

// TestReadBodyWithoutWrapper: on a request no wrapper has seen, ReadBody
// reads the body and leaves the same bytes on r.Body.
func TestReadBodyWithoutWrapper(t *testing.T) {
	r := httptest.NewRequest("POST", "/", strings.NewReader("hello"))
	if b, err := ReadBody(r, 5); err != nil || string(b) != "hello" {
		t.Fatalf("ReadBody: %q, %v", b, err)
	}
	if b, _ := io.ReadAll(r.Body); string(b) != "hello" {
		t.Errorf("r.Body after ReadBody: %q", b)
	}
	r = httptest.NewRequest("POST", "/", strings.NewReader("hello!"))
	if _, err := ReadBody(r, 5); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
}
