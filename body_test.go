package apiguard

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
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

// countingKeys counts the lookups of a KeyStore.
type countingKeys struct {
	KeyStore
	n atomic.Int64
}

func (c *countingKeys) Lookup(ctx context.Context, key string) (*Client, error) {
	c.n.Add(1)
	return c.KeyStore.Lookup(ctx, key)
}

func (c *countingKeys) Secrets(ctx context.Context, id string) ([]Secret, error) {
	c.n.Add(1)
	return c.KeyStore.Secrets(ctx, id)
}

// parkedBody is a body whose sender never finishes: Read blocks until
// released, as a slow client's would.
type parkedBody struct {
	reading chan struct{}
	release chan struct{}
}

func (p *parkedBody) Read([]byte) (int, error) {
	p.reading <- struct{}{}
	<-p.release
	return 0, io.ErrUnexpectedEOF
}

func (p *parkedBody) Close() error { return nil }

// TestBodyBudgetParkedBodiesCannotTakeTheHeap: requests parking their
// bodies on a hash-signed route take at most the Guard's budget of
// buffered bytes; the next one that does not fit is refused at once with
// 503 and Retry-After before any key is looked up, while a request that
// fits is answered exactly as without them, and the budget is whole again
// once they are done (regression: 400 connections parking 1 MiB bodies
// took the heap to 593 MB).
func TestBodyBudgetParkedBodiesCannotTakeTheHeap(t *testing.T) {
	t.Run("unobserved", func(t *testing.T) { testBodyBudget(t) })
	// An observed Guard sets the state up on its own path: it must
	// reserve and give back as well.
	t.Run("observed", func(t *testing.T) { testBodyBudget(t, WithObserver(func(Decision) {})) })
}

func testBodyBudget(t *testing.T, opts ...Option) {
	keys := &countingKeys{KeyStore: resellerStore(t)}
	scheme := func() Scheme {
		return HashSignature(SignerFromOwner(keys, trxOwner), []Field{BodyField("trx_id", errTrxRequired)})
	}
	g := MustNew(scheme(), append(opts, WithBodyBudget(3000))...)
	calm := MustNew(scheme(), opts...)
	handled := 0
	h := g.Authenticate()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { handled++ }))
	post := func(n int) *http.Request {
		body := `{"trx_id":"TRX_123456789","pad":"` + strings.Repeat("7", n-35) + `"}`
		r := httptest.NewRequest("POST", "/trx", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer 0123456789abcdef")
		return r
	}

	// Two parked bodies of 1,000 bytes each.
	var wg sync.WaitGroup
	parked := make([]*parkedBody, 2)
	for i := range parked {
		p := &parkedBody{make(chan struct{}), make(chan struct{})}
		parked[i] = p
		r := post(1000)
		r.Body = p
		wg.Go(func() { serve(h, r) })
		<-p.reading
	}
	if used := g.budget.used.Load(); used != 2000 {
		t.Fatalf("budget used %d, want 2000", used)
	}

	before := keys.n.Load()
	w := serve(h, post(1500))
	if w.Code != 503 || w.Header().Get("Retry-After") != "1" {
		t.Errorf("over the budget: %d Retry-After %q, want 503 and 1", w.Code, w.Header().Get("Retry-After"))
	}
	if keys.n.Load() != before || handled != 0 {
		t.Errorf("over the budget: %d lookups, %d handled, want none", keys.n.Load()-before, handled)
	}

	// A request that fits is answered as by a Guard without the flood.
	got, want := serve(h, post(900)), serve(calm.Authenticate()(okHandler), post(900))
	t.Logf("within the budget: %d", got.Code)
	if got.Code != want.Code || got.Body.String() != want.Body.String() {
		t.Errorf("request within the budget: %d %s, want %d %s", got.Code, got.Body, want.Code, want.Body)
	}

	for _, p := range parked {
		close(p.release)
	}
	wg.Wait()
	if used := g.budget.used.Load(); used != 0 {
		t.Errorf("budget used %d once every request is done, want 0", used)
	}
	if w := serve(h, post(1500)); w.Code == 503 || keys.n.Load() == before {
		t.Errorf("after the parked bodies: %d, key store not reached", w.Code)
	}
	if _, err := New(nil, WithBodyBudget(0)); err == nil {
		t.Error("WithBodyBudget(0) accepted")
	}
}
