package apiguard

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

// tagHandler records that it ran. It is a pointer, so that a test can ask
// whether a handler is this one.
type tagHandler struct{ got *[]string }

func (h *tagHandler) ServeHTTP(http.ResponseWriter, *http.Request) { *h.got = append(*h.got, "h") }

// TestChainOrder: Chain(a, b, c)(h) is a(b(c(h))), and Chain()(h) is h.
func TestChainOrder(t *testing.T) {
	var got []string
	h := &tagHandler{&got}
	tag := func(s string) Middleware {
		return func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = append(got, s)
				h.ServeHTTP(w, r)
			})
		}
	}
	serve(Chain(tag("a"), tag("b"), tag("c"))(h), httptest.NewRequest("GET", "/", nil))
	if strings.Join(got, " ") != "a b c h" {
		t.Errorf("order %v, want a b c h", got)
	}
	if c := Chain()(h); c != http.Handler(h) {
		t.Errorf("Chain()(h) = %T %p, want h itself", c, c)
	}
	// One wrapper: Chain(a)(h) is a(h), which then calls h once.
	got = nil
	serve(Chain(tag("a"))(h), httptest.NewRequest("GET", "/", nil))
	if strings.Join(got, " ") != "a h" {
		t.Errorf("one wrapper: %v, want a h", got)
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

// namedWrapper is one wrapper of a stack that checkAnyOrder reorders; the
// name stands for it in the orders that failures report.
type namedWrapper struct {
	name string
	mw   Middleware
}

// orderReq is one request that checkAnyOrder serves through every order.
type orderReq struct {
	name   string
	client string               // the id the handler sees if the request passes; "" if none
	new    func() *http.Request // called once a run: each run gets a request of its own
}

// anyOrder is a claim that a stack of wrappers works in any order: each
// order answers each request as the first wrapper that refuses it in that
// order ("first failing check"), or, where none does, as the handler with
// the request's client in the context.
type anyOrder struct {
	// stack returns the wrappers. It is called for every run (each wrapper
	// alone, each order), so that wrappers with state (a limiter, a replay
	// store) start afresh in each; a stateless stack may return the same
	// wrappers every time.
	stack func() []namedWrapper
	// requests are served in this order in every run; their names differ.
	requests []orderReq
	// handler ends every run (default okHandler) and answers a request
	// that passes with 200 and okBody (default "ok").
	handler http.Handler
	okBody  string
	// headers are more headers that each order must answer as the wrapper
	// that decides (and, when the request passes, not at all).
	headers []string
	// lookups, if set, counts the key lookups of each request in each
	// order: at most one.
	lookups *countingStore
	// status and body are what the named requests get, in every order (the
	// body to the letter): the verdicts themselves, so that the claim
	// cannot hold vacuously, with every wrapper refusing everything.
	status map[string]int
	body   map[string]string
	// says, if set, declares the verdicts of the wrappers instead of
	// measuring each wrapper alone: says[request][wrapper] is the status
	// with which the wrapper refuses the request; a wrapper not listed
	// passes it. Only the status of a refusal is then compared. It is for
	// wrappers whose state the stack rolls back when a later wrapper
	// refuses, so that alone they would answer otherwise than stacked.
	says map[string]map[string]int
}

// checkAnyOrder builds every order of c.stack and fails t unless each
// answers each of c.requests as c claims: the status, the body, the client
// the handler sees and the headers of the first wrapper that refuses the
// request in that order (by its verdict alone, or by c.says), and at most
// one key lookup a request.
func checkAnyOrder(t *testing.T, c anyOrder) {
	t.Helper()
	h, okBody := c.handler, c.okBody
	if h == nil {
		h = okHandler
	}
	if okBody == "" {
		okBody = "ok"
	}
	var names []string
	for _, w := range c.stack() {
		names = append(names, w.name)
	}
	reqs := map[string]bool{}
	for _, rq := range c.requests {
		if reqs[rq.name] {
			t.Fatalf("request %q twice", rq.name)
		}
		reqs[rq.name] = true
	}
	for rn, ws := range c.says {
		for wn := range ws {
			if !reqs[rn] || !slices.Contains(names, wn) {
				t.Fatalf("says[%q][%q]: no such request or wrapper", rn, wn)
			}
		}
	}
	for rn := range c.status {
		if !reqs[rn] {
			t.Fatalf("status of %q: no such request", rn)
		}
	}
	for rn := range c.body {
		if !reqs[rn] {
			t.Fatalf("body of %q: no such request", rn)
		}
	}

	// What each wrapper alone answers each request, in a run of its own.
	alone := map[string][]*httptest.ResponseRecorder{}
	if c.says == nil {
		for i, name := range names {
			w := c.stack()[i]
			for _, rq := range c.requests {
				alone[name] = append(alone[name], serve(w.mw(h), rq.new()))
			}
		}
	}

	orders := map[string]bool{}
	for _, p := range permutations(len(names)) {
		stack := c.stack()
		var mws []Middleware
		var order []string
		for _, i := range p {
			mws = append(mws, stack[i].mw)
			order = append(order, stack[i].name)
		}
		orders[strings.Join(order, " ")] = true
		run := Chain(mws...)(h)
		for j, rq := range c.requests {
			if c.lookups != nil {
				c.lookups.n.Store(0)
			}
			got := serve(run, rq.new())
			if c.lookups != nil {
				if n := c.lookups.n.Load(); n > 1 {
					t.Errorf("%v %s: %d key lookups, want at most 1", order, rq.name, n)
				}
			}
			want := httptest.NewRecorder()
			want.Header().Set("X-Client", rq.client)
			want.Body.WriteString(okBody)
			statusOnly := false
			for _, name := range order {
				if c.says != nil {
					if status, ok := c.says[rq.name][name]; ok {
						want, statusOnly = httptest.NewRecorder(), true
						want.Code = status
						break
					}
				} else if a := alone[name][j]; a.Code != 200 {
					want = a
					break
				}
			}
			d, wd := describe(got, c.headers), describe(want, c.headers)
			if statusOnly { // a refusal of which only the status is declared
				d = fmt.Sprintf("%d client %q", got.Code, got.Header().Get("X-Client"))
				wd = fmt.Sprintf("%d client %q", want.Code, "")
			}
			if d != wd {
				t.Errorf("%v %s: got %s\nwant %s", order, rq.name, d, wd)
			}
			if status, ok := c.status[rq.name]; ok && got.Code != status {
				t.Errorf("%v %s: status %d, want %d", order, rq.name, got.Code, status)
			}
			if body, ok := c.body[rq.name]; ok && got.Body.String() != body {
				t.Errorf("%v %s: body %s, want %s", order, rq.name, got.Body, body)
			}
		}
	}
	n := 1
	for i := 2; i <= len(names); i++ {
		n *= i
	}
	if len(orders) != n {
		t.Fatalf("%d orders of %d wrappers, want %d", len(orders), len(names), n)
	}
}

// request returns a new request of c's named name.
func (c anyOrder) request(t *testing.T, name string) *http.Request {
	t.Helper()
	for _, rq := range c.requests {
		if rq.name == name {
			return rq.new()
		}
	}
	t.Fatalf("no request %q", name)
	return nil
}

// describe is the status, body, client and headers of w, to compare.
func describe(w *httptest.ResponseRecorder, headers []string) string {
	d := fmt.Sprintf("%d %s client %q", w.Code, w.Body, w.Header().Get("X-Client"))
	for _, k := range headers {
		d += fmt.Sprintf(" %s %q", k, w.Header().Get(k))
	}
	return d
}

// fourWrappers is the stack of TestStackInAnyOrder and its kin:
// Authenticate, RequireScope(scope), a Check of the caller that refuses the blocked
// clients (errBlocked) and a Check that refuses requests whose header is
// not value (errNoGlobal).
func fourWrappers(g *Guard, scope string, blocked func(*Client) bool, header, value string) []namedWrapper {
	return []namedWrapper{
		{"auth", g.Authenticate()},
		{"scope", g.RequireScope(scope)},
		{"client", g.Check(func(r *http.Request) error {
			c, err := g.Identify(r)
			if err != nil {
				return err
			}
			if blocked(c) {
				return errBlocked
			}
			return nil
		})},
		{"global", g.Check(func(r *http.Request) error {
			if r.Header.Get(header) != value {
				return errNoGlobal
			}
			return nil
		})},
	}
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
	stack := fourWrappers(g, "write", func(c *Client) bool { return c.ID == "c" }, "X-Global", "on")
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
	checkAnyOrder(t, anyOrder{
		stack: func() []namedWrapper { return stack },
		requests: []orderReq{
			{"A", "a", func() *http.Request { return req("sandbox_sk_test_A", true) }},
			{"A/no-global", "a", func() *http.Request { return req("sandbox_sk_test_A", false) }},
			{"B", "b", func() *http.Request { return req("sandbox_sk_test_B", true) }},
			{"C", "c", func() *http.Request { return req("sandbox_sk_test_C", true) }},
			{"live", "", func() *http.Request { return req("live_sk_D", true) }}, // a live key in the sandbox
			{"unknown", "", func() *http.Request { return req("sandbox_sk_test_X", true) }},
			{"none", "", func() *http.Request { return req("", true) }},
			{"none/none", "", func() *http.Request { return req("", false) }},
		},
		lookups: store,
		status:  map[string]int{"A": 200, "A/no-global": 400, "B": 403, "C": 403, "live": 401, "unknown": 401, "none": 401},
	})
}

// TestIdentityWithoutSchemeFailsClosed: a wrapper that needs an identity,
// in a stack where nothing can establish one, refuses with 401.
func TestIdentityWithoutSchemeFailsClosed(t *testing.T) {
	g := MustNew(nil, WithDialect(MockPay()))
	called := false
	wrappers := map[string]Middleware{
		"scope":    g.RequireScope("read"),
		"no-scope": g.RequireScope(),
		"client": g.Check(func(r *http.Request) error {
			if _, err := g.Identify(r); err != nil {
				return err
			}
			called = true
			return nil
		}),
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
			t.Error("a Check of the caller went on without an identity")
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

func TestDenyHookAndLogger(t *testing.T) {
	store := mustStore(t, KeySpec{Key: "sandbox_sk_test_secretvalue", Client: Client{ID: "a", KeyID: "kid-a"}})
	var mu sync.Mutex
	var denials []Decision
	var logs bytes.Buffer
	g := MustNew(Bearer(store),
		WithObserver(func(d Decision) {
			if d.Allowed {
				return
			}
			mu.Lock()
			denials = append(denials, d)
			mu.Unlock()
		}),
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
	if !errors.Is(denials[1].Err, ErrInvalidKey) || denials[1].Client != nil || denials[1].Cause != "unknown_key" || denials[1].Wrapper != "authenticate" {
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
		KeySpec{Key: "app-key", Client: Client{ID: "app", Publishable: true}},
		KeySpec{Key: "user-key", Client: Client{ID: "user"}},
		KeySpec{Key: "app2-key", Client: Client{ID: "app2", Publishable: true}},
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

func TestRequireHTTPS(t *testing.T) {
	const refused = `{"status":"Error","code":403,"message":"HTTPS required"}`
	g := MustNew(nil, WithDialect(Pay88()), WithTrustedProxies(proxies...))
	plain := MustNew(nil, WithDialect(Pay88()))
	cases := []struct {
		name   string
		g      *Guard
		r      *http.Request
		accept bool
	}{
		{"http", g, ipRequest("203.0.113.9:1"), false},
		{"tls", g, httptest.NewRequest("GET", "https://api.example/x", nil), true},
		{"untrusted peer says https", g, ipRequest("203.0.113.9:1", "X-Forwarded-Proto", "https"), false},
		{"no proxies, proxy range says https", plain, ipRequest("10.0.0.2:1", "X-Forwarded-Proto", "https"), false},
		{"trusted proxy says https", g, ipRequest("10.0.0.2:1", "X-Forwarded-Proto", "https"), true},
		{"trusted proxy says HTTPS", g, ipRequest("[fd00::1]:1", "X-Forwarded-Proto", " HTTPS "), true},
		{"trusted proxy says http", g, ipRequest("10.0.0.2:1", "X-Forwarded-Proto", "http"), false},
		{"trusted proxy, forged https left of http", g, ipRequest("10.0.0.2:1", "X-Forwarded-Proto", "https, http"), false},
		{"trusted proxy, two headers, last http", g, ipRequest("10.0.0.2:1", "X-Forwarded-Proto", "https", "X-Forwarded-Proto", "http"), false},
		{"trusted proxy, http then https", g, ipRequest("10.0.0.2:1", "X-Forwarded-Proto", "http, https"), true},
		{"trusted proxy, no header", g, ipRequest("10.0.0.2:1"), false},
		{"trusted proxy, garbage", g, ipRequest("10.0.0.2:1", "X-Forwarded-Proto", "httpsx"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(tc.g.RequireHTTPS()(okHandler), tc.r)
			if tc.accept {
				if w.Code != 200 {
					t.Errorf("status %d, want 200", w.Code)
				}
				return
			}
			wantBody(t, w, 403, refused)
		})
	}
	// A TLS connection that the test builds by hand.
	r := ipRequest("203.0.113.9:1")
	r.TLS = &tls.ConnectionState{}
	if w := serve(plain.RequireHTTPS()(okHandler), r); w.Code != 200 {
		t.Errorf("r.TLS set: %d", w.Code)
	}
}

// TestCarrierSize holds the one allocation of a request's state (the state
// and the request that carries it) in the 384-byte size class, and with
// room for a small body in the 768-byte one (see TestHashAuthAllocations): what few
// requests need lives behind state.rare. The garbage collector's work is
// in proportion to the bytes allocated, so a field added to state costs
// every request.
func TestCarrierSize(t *testing.T) {
	if n := unsafe.Sizeof(carrier{}); n > 384 {
		t.Errorf("a carrier is %d bytes (a %d-byte request and a %d-byte state), want at most 384", n, unsafe.Sizeof(http.Request{}), unsafe.Sizeof(state{}))
	}
	// With room for a small body, for a Guard whose Scheme reads bodies: a
	// 768-byte allocation, of which the runtime takes 8 bytes for the
	// header of an object of pointers over 512 bytes.
	if n := unsafe.Sizeof(bodyCarrier{}); n > 760 {
		t.Errorf("a bodyCarrier is %d bytes (a %d-byte keptSmall), want at most 760", n, unsafe.Sizeof(keptSmall{}))
	}
}
