package apiguardtest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/apiguardtest"
)

// recT records what the assertions report.
type recT struct{ errs []string }

func (r *recT) Helper() {}
func (r *recT) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

var whoAmI = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, ok := apiguard.ClientFrom(r.Context())
	if !ok {
		http.Error(w, "no client", 500)
		return
	}
	b, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%s %s %s", c.ID, c.KeyID, b)
})

func TestNewKeyStore(t *testing.T) {
	keys := apiguardtest.NewKeyStore()
	for _, c := range []struct {
		key, id, keyID string
		env            apiguard.Environment
		publishable    bool
		scope          string
	}{
		{apiguardtest.KeyClientA, "client-a", "key-client-a", apiguard.Sandbox, false, "payment:create"},
		{apiguardtest.KeyClientB, "client-b", "key-client-b", apiguard.Sandbox, false, "payment:read"},
		{apiguardtest.KeyAdmin, "admin", "key-admin", apiguard.Sandbox, false, "admin"},
		{apiguardtest.KeyLive, "client-a", "key-client-a-live", apiguard.Live, false, "payment:create"},
		{apiguardtest.KeyGold, "123", "key-123", apiguard.AnyEnvironment, false, ""},
		{apiguardtest.KeyIPBound, "456", "key-456", apiguard.AnyEnvironment, false, ""},
		{apiguardtest.MidtransServerKey, "M-demo", "key-m-demo-server", apiguard.Sandbox, false, ""},
		{apiguardtest.MidtransClientKey, "M-demo", "key-m-demo-client", apiguard.Sandbox, true, ""},
		{apiguardtest.Pay88Key, apiguardtest.Pay88Merchant, "key-mch-sandbox", apiguard.Sandbox, false, ""},
		{apiguardtest.Pay88LiveKey, apiguardtest.Pay88Merchant, "key-mch-live", apiguard.Live, false, ""},
	} {
		t.Run(c.key, func(t *testing.T) {
			got, err := keys.Lookup(context.Background(), c.key)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != c.id || got.KeyID != c.keyID || got.Env != c.env || got.Publishable != c.publishable || c.scope != "" && !slices.Contains(got.Scopes, c.scope) {
				t.Errorf("client %+v", got)
			}
		})
	}
	if n, _, _ := apiguard.Fill(keys); n != len(apiguardtest.Demos()) {
		t.Errorf("%d keys, %d demos", n, len(apiguardtest.Demos()))
	}
	if c, _ := keys.Lookup(context.Background(), apiguardtest.KeyClientB); slices.Contains(c.Scopes, "payment:create") {
		t.Error("client-b may create payments")
	}
	for _, id := range []string{"123", "456"} {
		if s, _ := keys.Secrets(context.Background(), id); len(s) != 1 {
			t.Errorf("user %s has %d secrets, want 1", id, len(s))
		}
	}
	if c, _ := keys.Lookup(context.Background(), apiguardtest.KeyIPBound); len(c.IPs) != 1 || c.IPs[0].String() != "203.0.113.7/32" {
		t.Errorf("ip-bound key: %v", c.IPs)
	}

	// Stores are independent: revoking in one leaves the other.
	other := apiguardtest.NewKeyStore()
	keys.Revoke("key-client-a", time.Time{})
	if _, err := other.Lookup(context.Background(), apiguardtest.KeyClientA); err != nil {
		t.Error("a revocation leaked into another store")
	}
	// Demos hands out copies.
	d := apiguardtest.Demos()
	d[0].Spec.Client.Scopes[0] = "changed"
	if apiguardtest.Demos()[0].Spec.Client.Scopes[0] == "changed" {
		t.Error("Demos shares its slices")
	}
}

func TestNewKeyStoreClock(t *testing.T) {
	clock := apiguardtest.ClockAt(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	keys := apiguardtest.NewKeyStore(apiguard.WithClock(clock.Now))
	keys.Revoke("key-client-a", clock.Now().Add(24*time.Hour)) // a rotation's overlap
	clock.Advance(24*time.Hour - time.Second)
	if _, err := keys.Lookup(context.Background(), apiguardtest.KeyClientA); err != nil {
		t.Errorf("during the overlap: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := keys.Lookup(context.Background(), apiguardtest.KeyClientA); !errors.Is(err, apiguard.ErrInvalidKey) {
		t.Errorf("after the overlap: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("bad options did not panic")
		}
	}()
	apiguardtest.NewKeyStore(apiguard.WithCapacity(0))
}

func TestClock(t *testing.T) {
	var zero apiguardtest.Clock
	if !zero.Now().Equal(time.Unix(0, 0)) {
		t.Errorf("zero clock reads %v", zero.Now())
	}
	at := time.Date(2026, 11, 22, 10, 0, 0, 123, time.FixedZone("WIB", 7*3600))
	c := apiguardtest.ClockAt(at)
	if !c.Now().Equal(at) || c.Now().Location() != time.UTC {
		t.Errorf("Now = %v, want %v in UTC", c.Now(), at)
	}
	c.Advance(-time.Hour)
	if !c.Now().Equal(at.Add(-time.Hour)) {
		t.Errorf("after Advance(-1h): %v", c.Now())
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				c.Advance(time.Millisecond)
				c.Now()
			}
		})
	}
	wg.Wait()
	if !c.Now().Equal(at.Add(-time.Hour + 8*time.Second)) {
		t.Errorf("after concurrent advances: %v", c.Now())
	}
}

// TestBuilders sends each builder's request through the server wrapper of
// its scheme.
func TestBuilders(t *testing.T) {
	keys := apiguardtest.NewKeyStore()
	bearer := apiguard.MustNew(apiguard.Bearer(keys), apiguard.WithDialect(apiguard.MockPay())).Authenticate()(whoAmI)
	basic := apiguard.MustNew(apiguard.Basic(keys), apiguard.WithDialect(apiguard.Midtrans())).Authenticate()(whoAmI)

	resp := apiguardtest.Serve(bearer, apiguardtest.BearerRequest("POST", "/payments", apiguardtest.KeyClientA, strings.NewReader(`{"amount":1}`)))
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != `client-a key-client-a {"amount":1}` {
		t.Errorf("Bearer: %d %s", resp.StatusCode, b)
	}
	if resp.Request == nil || resp.Request.Header.Get("Content-Type") != "application/json" {
		t.Error("Serve did not keep the request, or the builder set no Content-Type")
	}
	resp = apiguardtest.Serve(basic, apiguardtest.BasicRequest("POST", "/snap/v1/transactions", apiguardtest.MidtransServerKey, nil))
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "M-demo key-m-demo-server " {
		t.Errorf("Basic: %d %s", resp.StatusCode, b)
	}
	resp = apiguardtest.Serve(basic, apiguardtest.BasicRequest("POST", "/snap/v1/transactions", apiguardtest.MidtransClientKey, nil))
	apiguardtest.AssertError(t, resp, apiguard.Midtrans(), apiguard.ErrInvalidKey)

	r := apiguardtest.StatusRequest("/status", apiguardtest.KeyGold, "TRX_123456789")
	if got, want := r.Header.Get("Authorization"), "Bearer "+sha256Hex(apiguardtest.KeyGold+"TRX_123456789"); got != want {
		t.Errorf("status: %s, want %s", got, want)
	}
	if b, _ := io.ReadAll(r.Body); string(b) != `{"trx_id":"TRX_123456789"}` {
		t.Errorf("status body %s", b)
	}

	at := time.Unix(1764000000, 0)
	r = apiguardtest.OrderRequest("/order", apiguardtest.KeyGold, apiguardtest.Order{UserID: "123456", Zone: "1234", ProductID: "1", RefID: "REF_1"}, 14500, at)
	for h, want := range map[string]string{
		"Authorization":  "Bearer " + sha256Hex(apiguardtest.KeyGold+"REF_1"+"14500"),
		"X-API-Key":      apiguardtest.KeyGold,
		"X-Request-Time": "1764000000",
		"Content-Type":   "application/json",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("order %s = %q, want %q", h, got, want)
		}
	}
	if b, _ := io.ReadAll(r.Body); string(b) != `{"user_id":"123456","zone":"1234","produk_id":"1","ref_id":"REF_1"}` {
		t.Errorf("order body %s", b)
	}

	r = apiguardtest.SessionRequest("POST", "/api/transactions/charges", "tok", "sess_1", strings.NewReader(`{}`))
	if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("x-session-id") != "sess_1" {
		t.Errorf("session headers %v", r.Header)
	}

	defer func() {
		if recover() == nil {
			t.Error("a bad key did not panic")
		}
	}()
	apiguardtest.BearerRequest("GET", "/", "bad key", nil)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestAssertError checks the assertion against real denials, and that it
// reports each kind of difference.
func TestAssertError(t *testing.T) {
	keys := apiguardtest.NewKeyStore()
	guarded := func(d apiguard.Dialect) http.Handler {
		g := apiguard.MustNew(apiguard.Bearer(keys), apiguard.WithDialect(d), apiguard.WithEnvironment(apiguard.Sandbox))
		return apiguard.Chain(g.Authenticate(), g.RequireScope("payment:create"))(whoAmI)
	}
	en := func(r *http.Request) *http.Request { r.Header.Set("X-Language", "en"); return r }
	id := func(r *http.Request) *http.Request { r.Header.Set("X-Language", "id"); return r }
	rateLimited := &apiguard.Error{Status: 429, Code: "rate_limited", RetryAfter: 1500 * time.Millisecond, Err: apiguard.ErrRateLimited}
	reseller := apiguard.Reseller().WithMessage("rate_limited", apiguard.Message{EN: "Too many requests. Please try again later."})
	limited := apiguard.MustNew(nil, apiguard.WithDialect(reseller)).Check(func(*http.Request) error { return rateLimited })(whoAmI)

	pass := []struct {
		name   string
		h      http.Handler
		r      *http.Request
		d      apiguard.Dialect
		reason error
	}{
		{"MockPay missing", guarded(apiguard.MockPay()), apiguardtest.NewRequest("GET", "/", nil, nil), apiguard.MockPay(), apiguard.ErrMissingKey},
		{"MockPay live key", guarded(apiguard.MockPay()), apiguardtest.BearerRequest("GET", "/", apiguardtest.KeyLive, nil), apiguard.MockPay(), apiguard.ErrInvalidKey},
		{"MockPay forbidden", guarded(apiguard.MockPay()), apiguardtest.BearerRequest("GET", "/", apiguardtest.KeyClientB, nil), apiguard.MockPay(), apiguard.ErrForbidden},
		{"Problem in Indonesian", guarded(apiguard.Problem()), id(apiguardtest.BearerRequest("GET", "/", "sandbox_sk_test_nope", nil)), apiguard.Problem(), apiguard.ErrInvalidKey},
		{"Problem in English", guarded(apiguard.Problem()), en(apiguardtest.BearerRequest("GET", "/", "sandbox_sk_test_nope", nil)), apiguard.Problem(), apiguard.ErrInvalidKey},
		{"Reseller 429 with Retry-After", limited, apiguardtest.NewRequest("GET", "/", nil, nil), reseller, rateLimited},
	}
	for _, c := range pass {
		t.Run(c.name, func(t *testing.T) {
			resp := apiguardtest.Serve(c.h, c.r)
			if !apiguardtest.AssertError(t, resp, c.d, c.reason) {
				t.Error("AssertError reported false")
			}
			if b, _ := io.ReadAll(resp.Body); len(b) == 0 {
				t.Error("the body was not put back")
			}
		})
	}

	fail := []struct {
		name   string
		h      http.Handler
		r      *http.Request
		d      apiguard.Dialect
		reason error
		want   string // in the report
	}{
		{"other status", guarded(apiguard.MockPay()), apiguardtest.BearerRequest("GET", "/", apiguardtest.KeyClientB, nil), apiguard.MockPay(), apiguard.ErrInvalidKey, "status = 403, want 401"},
		{"other dialect", guarded(apiguard.MockPay()), apiguardtest.NewRequest("GET", "/", nil, nil), apiguard.Reseller(), apiguard.ErrMissingKey, "body ="},
		{"other language", guarded(apiguard.Problem()), apiguardtest.NewRequest("GET", "/", nil, nil), apiguard.Problem(), apiguard.ErrMissingKey, ""},
		{"other content type", guarded(apiguard.MockPay()), apiguardtest.NewRequest("GET", "/", nil, nil), &apiguard.JSONDialect{ContentType: "text/json", Body: apiguard.MockPay().Body, Messages: apiguard.MockPay().Messages}, apiguard.ErrMissingKey, "Content-Type"},
		{"no Retry-After", guarded(apiguard.Reseller()), apiguardtest.NewRequest("GET", "/", nil, nil), apiguard.Reseller(), rateLimited, "Retry-After"},
		{"not JSON", whoAmI, apiguardtest.NewRequest("GET", "/", nil, nil), apiguard.MockPay(), apiguard.ErrMissingKey, "not JSON"},
	}
	for _, c := range fail {
		t.Run(c.name, func(t *testing.T) {
			resp := apiguardtest.Serve(c.h, c.r)
			if c.name == "other language" {
				resp.Request = id(resp.Request.Clone(resp.Request.Context())) // expect Indonesian, got English
			}
			rt := &recT{}
			if apiguardtest.AssertError(rt, resp, c.d, c.reason) || len(rt.errs) == 0 {
				t.Fatal("AssertError passed")
			}
			if !strings.Contains(strings.Join(rt.errs, "\n"), c.want) {
				t.Errorf("report %q does not mention %q", rt.errs, c.want)
			}
		})
	}
}

func TestAssertBody(t *testing.T) {
	resp := apiguardtest.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(201)
		io.WriteString(w, `{"b":[1,2],"a":"x"}`)
	}), apiguardtest.NewRequest("GET", "/", nil, nil))
	if !apiguardtest.AssertBody(t, resp, 201, ` { "a": "x", "b": [1, 2] } `) {
		t.Error("equal bodies reported different")
	}
	for _, c := range []struct {
		status int
		want   string
	}{{200, `{"a":"x","b":[1,2]}`}, {201, `{"a":"x","b":[2,1]}`}, {201, `{"a":"x"}`}, {201, `not json`}} {
		rt := &recT{}
		if apiguardtest.AssertBody(rt, resp, c.status, c.want) || len(rt.errs) == 0 {
			t.Errorf("%d %s: passed", c.status, c.want)
		}
	}
}

func TestFetchToken(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.Header.Get("x-api-key") != apiguardtest.Pay88Key || r.Header.Get("x-merchant-id") != apiguardtest.Pay88Merchant {
			w.WriteHeader(401)
			io.WriteString(w, `{"status":"Error","code":401,"message":"Invalid API key or merchant ID"}`)
			return
		}
		io.WriteString(w, `{"status":"Success","code":200,"message":"Token generated successfully","data":{"access_token":"eyJ.x.y","expires_in":60,"session_id":"sess_1"}}`)
	})
	tok, err := apiguardtest.FetchToken(h, "/api/auth/token", apiguardtest.Pay88Key, apiguardtest.Pay88Merchant)
	if err != nil || tok.AccessToken != "eyJ.x.y" || tok.SessionID != "sess_1" || time.Until(tok.Expires) < 50*time.Second {
		t.Errorf("token %+v, %v", tok, err)
	}
	if _, err := apiguardtest.FetchToken(h, "/api/auth/token", apiguardtest.Pay88LiveKey, apiguardtest.Pay88Merchant); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong key: %v", err)
	}
}
