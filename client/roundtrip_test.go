package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/client"
)

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// jsonEqual reports whether two JSON texts decode to equal values.
func jsonEqual(t testing.TB, got, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Errorf("body %q is not JSON: %v", got, err)
		return false
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %q: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

// signerCase is one round trip: a client Signer against apiguard's server
// wrapper for its scheme, with the right secret, then with a wrong one and
// other requests the server refuses with its documented errors.
type signerCase struct {
	name       string
	guard      apiguard.Middleware // the server side
	good       client.Signer       // the right secret
	newRequest func(url string) *http.Request
	wantClient string    // the client the handler sees
	refusals   []refusal // the first one: a wrong secret
}

// refusal is a request the server refuses, with its answer to the letter.
type refusal struct {
	name       string
	s          client.Signer
	newRequest func(url string) *http.Request // nil: the case's
	status     int
	body       string
}

// The reseller's route errors (seed 001), as the demo gateway defines them.
var (
	errTrxRequired    = &apiguard.Error{Status: 400, Code: "trx_id_required", Message: "Transaction ID is required"}
	errTrxNotFound    = &apiguard.Error{Status: 404, Code: "transaction_not_found", Message: "Transaction not found"}
	errProductMissing = &apiguard.Error{Status: 404, Code: "product_not_found", Message: "Product not found"}
)

func signerCases(t *testing.T) []signerCase {
	sig := must[client.Signer](t)
	c := newClock()
	keys := mustStore(t,
		apiguard.KeySpec{Key: "sandbox_sk_test_rt_clientA", Client: apiguard.Client{ID: "client-a"}},
		apiguard.KeySpec{Key: "SB-Mid-server-rt123456", Client: apiguard.Client{ID: "M-rt"}},
		apiguard.KeySpec{Key: "topup_demo_key_gold", Client: apiguard.Client{ID: "123", Role: "gold"}, KeepSecret: true},
		apiguard.KeySpec{Key: "topup_demo_key_other", Client: apiguard.Client{ID: "456", Role: "regular"}, KeepSecret: true},
		apiguard.KeySpec{Key: "whsec_rt_acme", Client: apiguard.Client{ID: "acme"}, KeepSecret: true},
	)
	guard := func(s apiguard.Scheme, d apiguard.Dialect) *apiguard.Guard {
		return apiguard.MustNew(s, apiguard.WithDialect(d), apiguard.WithClock(c.Now))
	}
	post := func(body string) func(string) *http.Request {
		return func(url string) *http.Request {
			r, err := http.NewRequest("POST", url, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Content-Type", "application/json")
			return r
		}
	}
	reseller := func(status int, msg string) string {
		return fmt.Sprintf(`{"status":"error","message":%q,"code":%d}`, msg, status)
	}

	// The status route, as the demo gateway builds it: the digest is made
	// with the key of the transaction's owner.
	owners := map[string]string{"TRX_123456789": "123"}
	owner := func(r *http.Request, fields []string) (string, error) {
		id, ok := owners[fields[0]]
		if !ok {
			return "", errTrxNotFound
		}
		return id, nil
	}
	status := guard(apiguard.HashSignature(apiguard.SignerFromOwner(keys, owner),
		[]apiguard.Field{apiguard.BodyField("trx_id", errTrxRequired)}), apiguard.Reseller())

	// The order route: the key in X-API-Key, the digest over ref_id and the
	// price of the product for the caller's role, X-Request-Time checked
	// by RequestTime.
	prices := map[string]map[string]int64{"1": {"regular": 15000, "gold": 14500}}
	price := func(r *http.Request, cl *apiguard.Client) (string, error) {
		var o struct {
			ProdukID string `json:"produk_id"`
		}
		json.NewDecoder(r.Body).Decode(&o)
		p, ok := prices[o.ProdukID]
		if !ok {
			return "", errProductMissing
		}
		return strconv.FormatInt(p[cl.Role], 10), nil
	}
	order := guard(apiguard.HashSignature(apiguard.SignerFromHeader(keys, "X-API-Key"),
		[]apiguard.Field{apiguard.BodyField("ref_id", nil), apiguard.ComputedField(price)},
		apiguard.WithRequiredHeaders("X-Request-Time")), apiguard.Reseller())
	orderBody := `{"user_id":"123456","zone":"1234","produk_id":"1","ref_id":"REF_123456789"}`
	orderAt := func(body string, price int64) func(string) *http.Request {
		return func(url string) *http.Request {
			r := post(body)(url)
			return r.WithContext(client.WithPrice(r.Context(), price))
		}
	}
	orderHash := func(key string, opts ...client.Option) client.Signer {
		return sig(client.OrderHash(key, append([]client.Option{client.WithClock(c.Now)}, opts...)...))
	}

	// HMAC for a new API: the client names itself in X-Client-Id; the
	// time, the payment id of the path and the amount are signed.
	hmacG := guard(apiguard.HMACSignature(
		apiguard.SignerFromOwner(keys, func(r *http.Request, _ []string) (string, error) { return r.Header.Get("X-Client-Id"), nil }),
		[]apiguard.Field{apiguard.HeaderField("X-Request-Time", nil), apiguard.PathField("id", nil), apiguard.BodyField("amount", nil)}),
		apiguard.MockPay())
	hmacRoute := func(next http.Handler) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("POST /payments/{id}", apiguard.Chain(hmacG.RequestTime(0), hmacG.Authenticate())(next))
		return mux
	}
	lastSegment := client.FieldFunc(func(r *http.Request, _ []byte) (string, error) { return path.Base(r.URL.Path), nil })
	hmacSigner := func(secret, clientID string, opts ...client.Option) client.Signer {
		return sig(client.NewHMAC(secret,
			[]client.Field{client.HeaderField("X-Request-Time"), lastSegment, client.JSONField("amount")},
			append([]client.Option{client.SendTime("X-Request-Time"), client.SendHeader("X-Client-Id", clientID), client.WithClock(c.Now)}, opts...)...))
	}
	toPayment := func(body string) func(string) *http.Request {
		return func(url string) *http.Request { return post(body)(url + "/payments/pay-42") }
	}
	mockpay := func(code, msg string) string {
		return fmt.Sprintf(`{"success":false,"error":{"code":%q,"message":%q}}`, code, msg)
	}

	return []signerCase{
		{
			name:  "Bearer/MockPay",
			guard: guard(apiguard.Bearer(keys), apiguard.MockPay()).Authenticate(),
			good:  sig(client.Bearer("sandbox_sk_test_rt_clientA")), newRequest: post(`{"order_id":"ORDER-123","amount":100000}`), wantClient: "client-a",
			refusals: []refusal{{name: "wrong key", s: sig(client.Bearer("sandbox_sk_test_rt_wrong")),
				status: 401, body: `{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}`}},
		},
		{
			name:  "APIKey/Reseller",
			guard: guard(apiguard.Bearer(keys, "X-API-Key"), apiguard.Reseller()).Authenticate(),
			good:  sig(client.APIKey("X-API-Key", "topup_demo_key_gold")), newRequest: post(`{}`), wantClient: "123",
			refusals: []refusal{{name: "wrong key", s: sig(client.APIKey("x-api-key", "topup_demo_key_nope")),
				status: 401, body: reseller(401, "Invalid API key")}},
		},
		{
			name:  "Basic/Midtrans",
			guard: guard(apiguard.Basic(keys), apiguard.Midtrans()).Authenticate(),
			good:  sig(client.Basic("SB-Mid-server-rt123456")), wantClient: "M-rt",
			newRequest: post(`{"transaction_details":{"order_id":"YOUR-ORDERID-123456","gross_amount":10000}}`),
			refusals: []refusal{{name: "wrong key", s: sig(client.Basic("SB-Mid-server-wrong")),
				status: 401, body: `{"status_code":"401","status_message":"Access denied due to unauthorized transaction, please check client or server key"}`}},
		},
		{
			name:  "StatusHash/HashSignature",
			guard: status.Authenticate(),
			good:  sig(client.StatusHash("topup_demo_key_gold")), newRequest: post(`{"trx_id":"TRX_123456789"}`), wantClient: "123",
			refusals: []refusal{
				{name: "another user's key", s: sig(client.StatusHash("topup_demo_key_other")), status: 401, body: reseller(401, "Invalid hash combination")},
				{name: "unknown key", s: sig(client.StatusHash("topup_demo_key_nope")), status: 401, body: reseller(401, "Invalid hash combination")},
				{name: "unknown transaction", s: sig(client.StatusHash("topup_demo_key_gold")), newRequest: post(`{"trx_id":"TRX_000"}`),
					status: 404, body: reseller(404, "Transaction not found")},
				{name: "no trx_id", s: sig(client.StatusHash("topup_demo_key_gold")), newRequest: post(`{}`),
					status: 400, body: reseller(400, "Transaction ID is required")},
				{name: "trx_id in another case", s: sig(client.StatusHash("topup_demo_key_gold")), newRequest: post(`{"TRX_ID":"TRX_123456789"}`),
					status: 400, body: reseller(400, "Transaction ID is required")},
			},
		},
		{
			name:  "OrderHash/HashSignature",
			guard: apiguard.Chain(order.RequestTime(0), order.Authenticate()),
			good:  orderHash("topup_demo_key_gold"), newRequest: orderAt(orderBody, 14500), wantClient: "123",
			refusals: []refusal{
				{name: "unknown key", s: orderHash("topup_demo_key_nope"), status: 401, body: reseller(401, "Invalid API key")},
				{name: "the regular price", s: orderHash("topup_demo_key_gold"), newRequest: orderAt(orderBody, 15000),
					status: 401, body: reseller(401, "Invalid hash combination")},
				{name: "unknown product", s: orderHash("topup_demo_key_gold"), status: 404, body: reseller(404, "Product not found"),
					newRequest: orderAt(`{"user_id":"123456","produk_id":"99","ref_id":"REF_1"}`, 14500)},
				{name: "clock 6 minutes slow", s: orderHash("topup_demo_key_gold", client.WithClock(func() time.Time { return c.Now().Add(-6 * time.Minute) })),
					status: 400, body: reseller(400, "Request expired")},
				{name: "no request time", s: sig(client.NewHash("topup_demo_key_gold", []client.Field{client.JSONField("ref_id"), client.PriceField()}, client.SendKey("X-API-Key"))),
					status: 401, body: reseller(401, "Unauthorized: Missing required headers")},
			},
		},
		{
			name:  "NewHMAC/HMACSignature",
			guard: hmacRoute,
			good:  hmacSigner("whsec_rt_acme", "acme"), newRequest: toPayment(`{"amount":"100000"}`), wantClient: "acme",
			refusals: []refusal{
				{name: "wrong secret", s: hmacSigner("whsec_rt_wrong", "acme"), status: 401, body: mockpay("UNAUTHORIZED", "Invalid hash combination")},
				{name: "another client", s: hmacSigner("whsec_rt_acme", "client-a"), status: 401, body: mockpay("UNAUTHORIZED", "Invalid hash combination")},
			},
		},
	}
}

// TestRoundTrip sends a request through each Signer's Transport to a
// server guarded by apiguard's wrapper for its scheme: the right secret
// reaches the handler with the client in the context and the body intact;
// a wrong secret, and the other refusals, get the documented error to the
// letter.
func TestRoundTrip(t *testing.T) {
	for _, tc := range signerCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.guard(echoHandler))
			defer srv.Close()

			req := tc.newRequest(srv.URL)
			sent, _ := io.ReadAll(must[io.ReadCloser](t)(req.GetBody()))
			resp, err := (&http.Client{Transport: client.Transport(tc.good, nil)}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var got struct{ Client, Body string }
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			json.Unmarshal(b, &got)
			if resp.StatusCode != 200 || got.Client != tc.wantClient || got.Body != string(sent) {
				t.Errorf("right secret: %d %s; want 200, client %q, body %q", resp.StatusCode, b, tc.wantClient, sent)
			}
			if req.Header.Get("Authorization") != "" {
				t.Error("the caller's request was signed in place")
			}

			for _, rf := range tc.refusals {
				t.Run(rf.name, func(t *testing.T) {
					newRequest := rf.newRequest
					if newRequest == nil {
						newRequest = tc.newRequest
					}
					resp, err := (&http.Client{Transport: client.Transport(rf.s, nil)}).Do(newRequest(srv.URL))
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != rf.status || !jsonEqual(t, string(b), rf.body) {
						t.Errorf("%d %s; want %d %s", resp.StatusCode, b, rf.status, rf.body)
					}
				})
			}
		})
	}
}

// TestRoundTripPay88 runs the 88Pay flow against apiguard's Issuer and
// SessionScheme (seed 004): the right credentials reach the API as the
// merchant, wrong ones get the token endpoint's documented refusal as a
// *TokenError.
func TestRoundTripPay88(t *testing.T) {
	c := newClock()
	s := newServer88(t, c)

	p := must[*client.Session](t)(client.NewSession(s.tokenURL(), s.key, s.merchant, nil, client.WithClock(c.Now)))
	resp, err := (&http.Client{Transport: p}).Post(s.srv.URL+"/api/charges", "application/json", strings.NewReader(`{"amount":50000}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `{"status":"Success","code":200,"message":"Charge created","data":{"merchant":"MCH-COL-29ZTP4","body":"{\"amount\":50000}"}}`
	if resp.StatusCode != 200 || !jsonEqual(t, string(b), want) {
		t.Errorf("right credentials: %d %s; want 200 %s", resp.StatusCode, b, want)
	}
	if n := s.tokenCalls.Load(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}

	for _, bad := range []struct{ name, key, merchant string }{
		{"wrong key", "sk_test_wrong000000000", s.merchant},
		{"wrong merchant", s.key, "MCH-COL-000000"},
		{"another merchant's key", "sk_test_other_merchant00", s.merchant},
	} {
		t.Run(bad.name, func(t *testing.T) {
			p := must[*client.Session](t)(client.NewSession(s.tokenURL(), bad.key, bad.merchant, nil, client.WithClock(c.Now)))
			_, err := (&http.Client{Transport: p}).Get(s.srv.URL + "/api/charges")
			var te *client.TokenError
			if !errors.As(err, &te) || te.StatusCode != 401 || te.Message != "Invalid API key or merchant ID" {
				t.Fatalf("err = %v, want a 401 TokenError \"Invalid API key or merchant ID\"", err)
			}
			if strings.Contains(err.Error(), bad.key) {
				t.Errorf("the error %q shows the key", err)
			}
		})
	}

	tok := must[client.Token](t)(p.Token(context.Background()))
	for _, c := range []struct {
		name, session, status, body string
	}{
		// Without the client, the server's documented answers (what Pay88
		// always prevents).
		{"no session id", "", "400", `{"status":"Error","code":400,"message":"Missing required header: x-session-id"}`},
		{"another session's id", "sess_53a2cfc4-441e-4554-b560-4e008784d98e", "401", `{"status":"Error","code":401,"message":"Unauthorized"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := must[*http.Request](t)(http.NewRequestWithContext(context.Background(), "GET", s.srv.URL+"/api/charges", nil))
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			if c.session != "" {
				req.Header.Set("X-Session-Id", c.session)
			}
			resp := must[*http.Response](t)(http.DefaultClient.Do(req))
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strconv.Itoa(resp.StatusCode) != c.status || !jsonEqual(t, string(b), c.body) {
				t.Errorf("%d %s, want %s %s", resp.StatusCode, b, c.status, c.body)
			}
		})
	}
}
