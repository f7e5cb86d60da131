// Package apiguardtest helps test handlers guarded by apiguard with
// net/http/httptest: a ready in-memory key store of named demo clients,
// request builders that sign for each scheme, a settable clock, and
// assertions on the documented error bodies of a dialect.
//
//	func TestCreatePayment(t *testing.T) {
//		clock := apiguardtest.ClockAt(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
//		g := apiguard.MustNew(apiguard.Bearer(apiguardtest.NewKeyStore()),
//			apiguard.WithDialect(apiguard.MockPay()), apiguard.WithClock(clock.Now))
//		h := g.RequireScope("payment:create")(http.HandlerFunc(createPayment))
//
//		resp := apiguardtest.Serve(h, apiguardtest.BearerRequest("POST", "/payments", apiguardtest.KeyClientB, nil))
//		apiguardtest.AssertError(t, resp, apiguard.MockPay(), apiguard.ErrForbidden)
//	}
//
// Like httptest.NewRequest, the builders panic on bad input, for ease of
// use in tests; they are not for production code.
package apiguardtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/client"
)

// Clock is a settable clock for tests: pass its Now to apiguard.WithClock
// (for a Guard, a store or Sessions), client.HashClock or
// client.Pay88Clock, and move it with Set and Advance instead of sleeping.
//
// The zero Clock reads the Unix epoch. A Clock is safe for concurrent use.
type Clock struct{ ns atomic.Int64 }

// ClockAt returns a Clock that reads at.
func ClockAt(at time.Time) *Clock {
	c := &Clock{}
	c.Set(at)
	return c
}

// Now returns the clock's time, in UTC.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Set makes the clock read t. Times are kept to the nanosecond between the
// years 1678 and 2262.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// Advance moves the clock by d, backwards when d is negative.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// The demo keys of NewKeyStore, the MockPay credentials of the demo gateway
// (cmd/apiguard-demo, whose tour is in the repository's README.md), plus an
// administrator.
const (
	// KeyClientA is client "client-a"'s sandbox server key, with scopes
	// payment:create and payment:read.
	KeyClientA = "sandbox_sk_test_demo_clientA_full"
	// KeyClientB is client "client-b"'s sandbox server key, with scope
	// payment:read only.
	KeyClientB = "sandbox_sk_test_demo_clientB_read"
	// KeyAdmin is client "admin"'s sandbox server key, with scopes admin,
	// payment:create and payment:read.
	KeyAdmin = "sandbox_sk_test_demo_admin"
	// KeyLive is client "client-a"'s live server key, refused by a sandbox
	// Guard.
	KeyLive = "live_sk_demo_clientA"
	// KeyGold is reseller user "123"'s key, role gold, from any address;
	// kept in plaintext for hash signatures.
	KeyGold = "topup_demo_key_gold"
	// KeyIPBound is reseller user "456"'s key, role regular, registered for
	// 203.0.113.7 only; kept in plaintext for hash signatures.
	KeyIPBound = "topup_demo_key_ipbound"
	// MidtransServerKey is merchant "M-demo"'s Midtrans server key.
	MidtransServerKey = "SB-Mid-server-demo123456"
	// MidtransClientKey is merchant "M-demo"'s publishable client key.
	MidtransClientKey = "SB-Mid-client-demo123456"
	// Pay88Key is 88Pay merchant Pay88Merchant's sandbox API key.
	Pay88Key = "sk_test_a1b2c3d4e5f6g7h8"
	// Pay88LiveKey is 88Pay merchant Pay88Merchant's live API key, refused
	// by a sandbox Guard.
	Pay88LiveKey = "sk_live_demo00000000"
	// Pay88Merchant is the 88Pay merchant id of Pay88Key and Pay88LiveKey.
	Pay88Merchant = "MCH-COL-29ZTP4"
)

// Demo is one demo key of NewKeyStore.
type Demo struct {
	Name string           // the constant's name, such as "KeyClientA"
	Spec apiguard.KeySpec // the key and the client it stands for
}

// Demos returns the demo keys NewKeyStore holds, a fresh copy on each
// call. Each key's Client.KeyID is fixed ("key-client-a", ...) so tests can
// revoke it (MemoryKeyStore.Revoke), at once or at a time.
func Demos() []Demo {
	rw := func() []string { return []string{"payment:create", "payment:read"} }
	return []Demo{
		{"KeyClientA", apiguard.KeySpec{Key: KeyClientA, Client: apiguard.Client{ID: "client-a", KeyID: "key-client-a", Scopes: rw()}}},
		{"KeyClientB", apiguard.KeySpec{Key: KeyClientB, Client: apiguard.Client{ID: "client-b", KeyID: "key-client-b", Scopes: []string{"payment:read"}}}},
		{"KeyAdmin", apiguard.KeySpec{Key: KeyAdmin, Client: apiguard.Client{ID: "admin", KeyID: "key-admin", Scopes: append([]string{"admin"}, rw()...)}}},
		{"KeyLive", apiguard.KeySpec{Key: KeyLive, Client: apiguard.Client{ID: "client-a", KeyID: "key-client-a-live", Scopes: rw()}}},
		{"KeyGold", apiguard.KeySpec{Key: KeyGold, KeepSecret: true, Client: apiguard.Client{ID: "123", KeyID: "key-123", Role: "gold"}}},
		{"KeyIPBound", apiguard.KeySpec{Key: KeyIPBound, KeepSecret: true, Client: apiguard.Client{ID: "456", KeyID: "key-456", Role: "regular",
			IPs: []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32")}}}},
		{"MidtransServerKey", apiguard.KeySpec{Key: MidtransServerKey, Client: apiguard.Client{ID: "M-demo", KeyID: "key-m-demo-server"}}},
		{"MidtransClientKey", apiguard.KeySpec{Key: MidtransClientKey, Client: apiguard.Client{ID: "M-demo", KeyID: "key-m-demo-client", Publishable: true}}},
		{"Pay88Key", apiguard.KeySpec{Key: Pay88Key, Client: apiguard.Client{ID: Pay88Merchant, KeyID: "key-mch-sandbox"}}},
		{"Pay88LiveKey", apiguard.KeySpec{Key: Pay88LiveKey, Client: apiguard.Client{ID: Pay88Merchant, KeyID: "key-mch-live"}}},
	}
}

// NewKeyStore returns a new MemoryKeyStore, made with opts (such as
// apiguard.WithClock(clock.Now)), holding the demo keys (see Demos).
// Each call returns a store of its own, so a test may add and revoke keys
// freely. It panics if opts are invalid.
func NewKeyStore(opts ...apiguard.Option) *apiguard.MemoryKeyStore {
	s, err := apiguard.NewMemoryKeyStore(opts...)
	if err != nil {
		panic("apiguardtest: " + err.Error())
	}
	for _, d := range Demos() {
		if err := s.Add(d.Spec); err != nil {
			panic(fmt.Sprintf("apiguardtest: adding %s: %v", d.Name, err))
		}
	}
	return s
}

// NewRequest returns a request made as httptest.NewRequest makes it, with
// Content-Type application/json when body is not nil, signed by s (nil: not
// signed). It panics if the request cannot be signed.
func NewRequest(method, target string, body io.Reader, s client.Signer) *http.Request {
	r := httptest.NewRequest(method, target, body)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if s != nil {
		if err := s.Sign(r); err != nil {
			panic("apiguardtest: signing: " + err.Error())
		}
	}
	return r
}

func must(s client.Signer, err error) client.Signer {
	if err != nil {
		panic("apiguardtest: " + err.Error())
	}
	return s
}

// BearerRequest returns a request with `Authorization: Bearer key`.
func BearerRequest(method, target, key string, body io.Reader) *http.Request {
	return NewRequest(method, target, body, must(client.Bearer(key)))
}

// BasicRequest returns a request with Midtrans' `Authorization: Basic
// base64(serverKey + ":")`.
func BasicRequest(method, target, serverKey string, body io.Reader) *http.Request {
	return NewRequest(method, target, body, must(client.Basic(serverKey)))
}

// StatusRequest returns the Reseller API's status check: a POST of
// {"trx_id":trxID} to target, signed with `Authorization: Bearer
// hex(SHA256(apiKey + trxID))`. It panics, as the client refuses to sign
// it, if trxID holds a control character, which the server refuses.
func StatusRequest(target, apiKey, trxID string) *http.Request {
	body, _ := json.Marshal(map[string]string{"trx_id": trxID})
	return NewRequest("POST", target, bytes.NewReader(body), must(client.StatusHash(apiKey)))
}

// Order is the body of the Reseller API's order.
type Order struct {
	UserID    string `json:"user_id"`
	Zone      string `json:"zone,omitempty"`
	ProductID string `json:"produk_id"`
	RefID     string `json:"ref_id"`
}

// OrderRequest returns the Reseller API's order: a POST of order to
// target with X-API-Key, X-Request-Time (at, in Unix seconds) and
// `Authorization: Bearer hex(SHA256(apiKey + order.RefID + price))`. It
// panics, as the client refuses to sign it, if order.RefID holds a control
// character, which the server refuses.
func OrderRequest(target, apiKey string, order Order, price int64, at time.Time) *http.Request {
	body, _ := json.Marshal(order)
	s := must(client.OrderHash(apiKey, client.WithClock(func() time.Time { return at })))
	r := httptest.NewRequest("POST", target, bytes.NewReader(body))
	r = r.WithContext(client.WithPrice(r.Context(), price))
	r.Header.Set("Content-Type", "application/json")
	if err := s.Sign(r); err != nil {
		panic("apiguardtest: signing: " + err.Error())
	}
	return r
}

// SessionRequest returns a request of 88Pay's second layer:
// `Authorization: Bearer accessToken` and `x-session-id: sessionID`. Get
// them from a token handler with FetchToken.
func SessionRequest(method, target, accessToken, sessionID string, body io.Reader) *http.Request {
	r := NewRequest(method, target, body, nil)
	r.Header.Set("Authorization", "Bearer "+accessToken)
	r.Header.Set("X-Session-Id", sessionID)
	return r
}

// FetchToken asks the token handler h for an 88Pay token, as a client
// would: a POST to target with x-api-key and x-merchant-id, answered with
// 88Pay's envelope. It fails unless h answers 200 with an access token
// and a session id. The token's Expires counts expires_in from the wall
// clock.
func FetchToken(h http.Handler, target, apiKey, merchantID string) (client.Token, error) {
	r := httptest.NewRequest("POST", target, nil)
	r.Header.Set("X-Api-Key", apiKey)
	r.Header.Set("X-Merchant-Id", merchantID)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var env struct {
		Data struct {
			AccessToken string  `json:"access_token"`
			ExpiresIn   float64 `json:"expires_in"`
			SessionID   string  `json:"session_id"`
		} `json:"data"`
	}
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &env) != nil || env.Data.AccessToken == "" || env.Data.SessionID == "" {
		return client.Token{}, fmt.Errorf("apiguardtest: token handler answered %d %s", w.Code, w.Body)
	}
	return client.Token{
		AccessToken: env.Data.AccessToken,
		SessionID:   env.Data.SessionID,
		Expires:     time.Now().Add(time.Duration(env.Data.ExpiresIn * float64(time.Second))),
	}, nil
}

// Serve runs h on r with an httptest.ResponseRecorder and returns the
// response, with its Request set to r (so that AssertError renders the
// expected body in r's language).
func Serve(h http.Handler, r *http.Request) *http.Response {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	resp := w.Result()
	resp.Request = r
	return resp
}

// T is the part of testing.TB the assertions use; *testing.T and
// *testing.B are Ts.
type T interface {
	Helper()
	Errorf(format string, args ...any)
}

// AssertBody reports whether resp has status and a JSON body equal to
// want once both are decoded (so key order and spacing do not matter),
// and calls t.Errorf with both bodies if not. It leaves resp.Body readable.
func AssertBody(t T, resp *http.Response, status int, want string) bool {
	t.Helper()
	got := readBack(resp)
	ok := true
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d (body %s)", resp.StatusCode, status, got)
		ok = false
	}
	eq, err := jsonEqual(got, []byte(want))
	switch {
	case err != nil:
		t.Errorf("%v", err)
		ok = false
	case !eq:
		t.Errorf("body = %s\nwant   %s", got, want)
		ok = false
	}
	return ok
}

// AssertError reports whether resp is the rejection d writes for reason
// (one of apiguard's sentinels, possibly wrapped, or an *apiguard.Error):
// its status, Content-Type, JSON body and, when reason carries one,
// Retry-After. The expected body is rendered for resp.Request (its
// x-language) when set, else for a request without headers. It calls
// t.Errorf for each difference and leaves resp.Body readable.
//
// Pass the dialect the Guard was made with, overrides included. The
// WWW-Authenticate header, which comes from the Guard, is not compared.
func AssertError(t T, resp *http.Response, d apiguard.Dialect, reason error) bool {
	t.Helper()
	r := resp.Request
	if r == nil {
		r = httptest.NewRequest("GET", "/", nil)
	}
	e := apiguard.NewError(reason)
	w := httptest.NewRecorder()
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int64((e.RetryAfter+time.Second-1)/time.Second)))
	}
	d.WriteError(w, r, e)
	want := w.Result()
	ok := AssertBody(t, resp, want.StatusCode, w.Body.String())
	for _, h := range []string{"Content-Type", "Retry-After"} {
		if g, x := resp.Header.Get(h), want.Header.Get(h); g != x {
			t.Errorf("%s = %q, want %q", h, g, x)
			ok = false
		}
	}
	return ok
}

// readBack reads resp's body and puts the same bytes back.
func readBack(resp *http.Response) []byte {
	if resp.Body == nil {
		return nil
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return b
}

func jsonEqual(got, want []byte) (bool, error) {
	var g, w any
	if err := json.Unmarshal(want, &w); err != nil {
		return false, fmt.Errorf("the wanted body %q is not JSON: %v", want, err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		return false, fmt.Errorf("the body %q is not JSON: %v", got, err)
	}
	return reflect.DeepEqual(g, w), nil
}
