package apiguard

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestChainOrder(t *testing.T) {
	var got []string
	tag := func(s string) Middleware {
		return func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = append(got, s)
				h.ServeHTTP(w, r)
			})
		}
	}
	serve(Chain(tag("a"), tag("b"), tag("c"))(okHandler), httptest.NewRequest("GET", "/", nil))
	if strings.Join(got, "") != "abc" {
		t.Errorf("order %v, want a b c", got)
	}
	if Chain()(okHandler) == nil {
		t.Error("empty chain")
	}
}

// countingStore counts lookups, to prove identity is resolved once.
type countingStore struct {
	KeyStore
	n atomic.Int64
}

func (c *countingStore) Lookup(ctx context.Context, key string) (*Client, error) {
	c.n.Add(1)
	return c.KeyStore.Lookup(ctx, key)
}

var errBlocked = &Error{Status: 403, Code: "account_blocked", Message: "Account blocked"}
var errNoGlobal = &Error{Status: 400, Code: "global_missing", Message: "X-Global required"}

func permutations(n int) [][]int {
	if n == 1 {
		return [][]int{{0}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

// TestStackInAnyOrder builds every permutation of a stack of four wrappers
// (authentication, scope, a per-client check and a global check) and shows
// that each accepts and rejects the same requests, hands the handler the
// same client, answers with the body of the first check that fails in its
// order, and looks the key up once per request.
func TestStackInAnyOrder(t *testing.T) {
	store := &countingStore{KeyStore: mustStore(t,
		KeySpec{Key: "sandbox_sk_test_A", Client: Client{ID: "a", Scopes: []string{"read", "write"}}},
		KeySpec{Key: "sandbox_sk_test_B", Client: Client{ID: "b", Scopes: []string{"read"}}},
		KeySpec{Key: "sandbox_sk_test_C", Client: Client{ID: "c", Scopes: []string{"read", "write"}}},
		KeySpec{Key: "live_sk_D", Client: Client{ID: "d", Scopes: []string{"read", "write"}}},
	)}
	g := MustNew(Bearer(store), WithDialect(MockPay()), WithEnvironment(Sandbox))
	type named struct {
		name string
		mw   Middleware
	}
	stack := []named{
		{"auth", g.Authenticate()},
		{"scope", g.RequireScope("write")},
		{"client", g.CheckClient(func(_ *http.Request, c *Client) error {
			if c.ID == "c" {
				return errBlocked
			}
			return nil
		})},
		{"global", g.Check(func(r *http.Request) error {
			if r.Header.Get("X-Global") != "on" {
				return errNoGlobal
			}
			return nil
		})},
	}
	req := func(key string, global bool) *http.Request {
		r := httptest.NewRequest("POST", "/pay", nil)
		if key != "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		if global {
			r.Header.Set("X-Global", "on")
		}
		return r
	}
	requests := map[string]func() *http.Request{
		"A":           func() *http.Request { return req("sandbox_sk_test_A", true) },
		"A/no-global": func() *http.Request { return req("sandbox_sk_test_A", false) },
		"B":           func() *http.Request { return req("sandbox_sk_test_B", true) },
		"C":           func() *http.Request { return req("sandbox_sk_test_C", true) },
		"live":        func() *http.Request { return req("live_sk_D", true) },
		"unknown":     func() *http.Request { return req("sandbox_sk_test_X", true) },
		"none":        func() *http.Request { return req("", true) },
		"none/none":   func() *http.Request { return req("", false) },
	}
	// What each wrapper alone says of each request.
	alone := map[string]map[string]*httptest.ResponseRecorder{}
	for _, w := range stack {
		alone[w.name] = map[string]*httptest.ResponseRecorder{}
		for rn, mk := range requests {
			alone[w.name][rn] = serve(w.mw(okHandler), mk())
		}
	}
	for _, p := range permutations(len(stack)) {
		var mws []Middleware
		var names []string
		for _, i := range p {
			mws = append(mws, stack[i].mw)
			names = append(names, stack[i].name)
		}
		h := Chain(mws...)(okHandler)
		for rn, mk := range requests {
			store.n.Store(0)
			got := serve(h, mk())
			if n := store.n.Load(); n > 1 {
				t.Errorf("%v %s: %d key lookups, want at most 1", names, rn, n)
			}
			wantStatus, wantBody, wantClient := 200, "ok", ""
			for _, name := range names {
				if a := alone[name][rn]; a.Code != 200 {
					wantStatus, wantBody = a.Code, a.Body.String()
					break
				}
			}
			if rn == "A" {
				wantClient = "a"
			}
			if got.Code != wantStatus || got.Body.String() != wantBody || got.Header().Get("X-Client") != wantClient {
				t.Errorf("%v %s: got %d %s client %q, want %d %s client %q", names, rn,
					got.Code, got.Body, got.Header().Get("X-Client"), wantStatus, wantBody, wantClient)
			}
		}
	}
	// And the expected verdicts themselves, so the test cannot pass vacuously.
	for rn, want := range map[string]int{"A": 200, "A/no-global": 400, "B": 403, "C": 403, "live": 401, "unknown": 401, "none": 401} {
		h := Chain(stack[0].mw, stack[1].mw, stack[2].mw, stack[3].mw)(okHandler)
		if got := serve(h, requests[rn]()); got.Code != want {
			t.Errorf("%s: status %d, want %d", rn, got.Code, want)
		}
	}
}

// TestIdentityWithoutSchemeFailsClosed: a wrapper that needs an identity,
// in a stack where nothing can establish one, refuses with 401.
func TestIdentityWithoutSchemeFailsClosed(t *testing.T) {
	g := MustNew(nil, WithDialect(MockPay()))
	called := false
	wrappers := map[string]Middleware{
		"scope":        g.RequireScope("read"),
		"no-scope":     g.RequireScope(),
		"client":       g.CheckClient(func(*http.Request, *Client) error { called = true; return nil }),
		"authenticate": g.Authenticate(),
	}
	for name, mw := range wrappers {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer sandbox_sk_test_A")
		// Even a client injected by NewContext is not taken as proof.
		r = r.WithContext(NewContext(r.Context(), &Client{ID: "a", Scopes: []string{"read"}}))
		w := serve(mw(okHandler), r)
		wantBody(t, w, 401, `{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}`)
		if name == "client" && called {
			t.Error("CheckClient called its check without an identity")
		}
	}
}

func TestIdentityConflictBetweenGuards(t *testing.T) {
	store := mustStore(t,
		KeySpec{Key: "key-a", Client: Client{ID: "a"}},
		KeySpec{Key: "key-b", Client: Client{ID: "b"}},
	)
	g1 := MustNew(Bearer(store))
	g2 := MustNew(Bearer(store, "X-Other-Key"))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer key-a")
	r.Header.Set("X-Other-Key", "key-b")
	w := serve(Chain(g1.Authenticate(), g2.Authenticate())(okHandler), r)
	if w.Code != 401 {
		t.Fatalf("status %d, want 401", w.Code)
	}
	r.Header.Set("X-Other-Key", "key-a")
	if w := serve(Chain(g1.Authenticate(), g2.Authenticate())(okHandler), r); w.Code != 200 || w.Header().Get("X-Client") != "a" {
		t.Fatalf("agreeing guards: %d %q", w.Code, w.Header().Get("X-Client"))
	}
}

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

func TestDenyHookAndLogger(t *testing.T) {
	store := mustStore(t, KeySpec{Key: "sandbox_sk_test_secretvalue", Client: Client{ID: "a", KeyID: "kid-a"}})
	var mu sync.Mutex
	var denials []Denial
	var logs bytes.Buffer
	g := MustNew(Bearer(store),
		WithDenyHook(func(d Denial) { mu.Lock(); denials = append(denials, d); mu.Unlock() }),
		WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	h := Chain(g.Authenticate(), g.RequireScope("write"))(okHandler)

	r := httptest.NewRequest("GET", "/x?client_key=q", nil)
	r.Header.Set("Authorization", "Bearer sandbox_sk_test_secretvalue")
	serve(h, r)
	r = httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Authorization", "Bearer sandbox_sk_test_wrongsecret")
	w := serve(h, r)

	if len(denials) != 2 {
		t.Fatalf("%d denials", len(denials))
	}
	if !errors.Is(denials[0].Err, ErrForbidden) || denials[0].Client == nil || denials[0].Client.ID != "a" {
		t.Errorf("first denial %+v", denials[0])
	}
	if !errors.Is(denials[1].Err, ErrInvalidKey) || denials[1].Client != nil || denials[1].IP.String() != "192.0.2.1" {
		t.Errorf("second denial %+v", denials[1])
	}
	for _, secret := range []string{"secretvalue", "wrongsecret", "client_key"} {
		if strings.Contains(logs.String(), secret) || strings.Contains(w.Body.String(), secret) {
			t.Errorf("%q leaked: %s %s", secret, logs.String(), w.Body)
		}
	}
	if !strings.Contains(logs.String(), `"code":"forbidden"`) || !strings.Contains(logs.String(), `"key_id":"kid-a"`) {
		t.Errorf("log lacks code or key id: %s", logs.String())
	}
	if got := w.Header().Get("WWW-Authenticate"); got != "Bearer" {
		t.Errorf("WWW-Authenticate = %q", got)
	}
}

func TestClientFromAndNewContext(t *testing.T) {
	if _, ok := ClientFrom(context.Background()); ok {
		t.Error("client in an empty context")
	}
	c := &Client{ID: "x"}
	got, ok := ClientFrom(NewContext(context.Background(), c))
	if !ok || got != c {
		t.Error("NewContext/ClientFrom")
	}
	// A wrapper that needs no identity leaves no client.
	g := MustNew(nil)
	w := serve(g.Check(func(*http.Request) error { return nil })(okHandler), httptest.NewRequest("GET", "/", nil))
	if w.Header().Get("X-Client") != "" {
		t.Error("client without authentication")
	}
}

func TestConfigErrors(t *testing.T) {
	for name, f := range map[string]func() (*Guard, error){
		"nil store":   func() (*Guard, error) { return New(Bearer(nil)) },
		"bad header":  func() (*Guard, error) { return New(Bearer(mustStore(t), "X Key")) },
		"nil basic":   func() (*Guard, error) { return New(Basic(nil)) },
		"nil client":  func() (*Guard, error) { return New(ClientKey(nil)) },
		"nil dialect": func() (*Guard, error) { return New(nil, WithDialect(nil)) },
		"nil clock":   func() (*Guard, error) { return New(nil, WithClock(nil)) },
		"bad env":     func() (*Guard, error) { return New(nil, WithEnvironment(7)) },
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MustNew did not panic")
		}
	}()
	MustNew(Bearer(nil))
}

// TestAppBesideUser: an application's identity (a publishable key) and a
// user's identity stand side by side in any order, and the handler sees the
// user; two accounts still conflict.
func TestAppBesideUser(t *testing.T) {
	store := mustStore(t,
		KeySpec{Key: "app-key", Client: Client{ID: "app", Kind: PublishableKey}},
		KeySpec{Key: "user-key", Client: Client{ID: "user"}},
		KeySpec{Key: "app2-key", Client: Client{ID: "app2", Kind: PublishableKey}},
	)
	app := MustNew(AppKey(store))
	user := MustNew(Bearer(store))
	app2 := MustNew(ClientKey(store))
	for _, order := range [][]Middleware{
		{app.Authenticate(), user.Authenticate()},
		{user.Authenticate(), app.Authenticate()},
		{user.RequireScope(), app.Authenticate(), user.Authenticate()},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-App-Key", "app-key")
		r.Header.Set("Authorization", "Bearer user-key")
		if w := serve(Chain(order...)(okHandler), r); w.Code != 200 || w.Header().Get("X-Client") != "user" {
			t.Errorf("got %d client %q, want the user", w.Code, w.Header().Get("X-Client"))
		}
	}
	// Two applications naming different clients conflict.
	r := httptest.NewRequest("GET", "/?client_key=app2-key", nil)
	r.Header.Set("X-App-Key", "app-key")
	if w := serve(Chain(app.Authenticate(), app2.Authenticate())(okHandler), r); w.Code != 401 {
		t.Errorf("two apps: %d", w.Code)
	}
}
