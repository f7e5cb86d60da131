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

// bodyScheme authenticates by a key in the body, to exercise the body the
// state keeps for the handler.
type bodyScheme struct{ limit int64 }

func (b bodyScheme) Authenticate(r *http.Request) (*Client, error) {
	body, err := stateFrom(r.Context()).readBody(r, b.limit)
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
