package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

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

// signerCase is one round trip: a client Signer against a server wrapper,
// with the right secret and with a wrong one.
//
// To run a Signer against another server wrapper (the hash wrappers of
// hmachash.go, say), add a case whose guard is that wrapper: the signers
// depend only on the wire format.
type signerCase struct {
	name       string
	guard      apiguard.Middleware // the server side
	good, bad  client.Signer       // the right secret, a wrong one
	newRequest func(url string) *http.Request
	wantClient string // the client the handler sees
	wantStatus int    // the answer to the wrong secret, to the letter
	wantBody   string
}

func signerCases(t *testing.T) []signerCase {
	sig := must[client.Signer](t)
	c := newClock()
	keys := mustStore(t,
		apiguard.KeySpec{Key: "sandbox_sk_test_rt_clientA", Client: apiguard.Client{ID: "client-a"}},
		apiguard.KeySpec{Key: "SB-Mid-server-rt123456", Client: apiguard.Client{ID: "M-rt"}},
		apiguard.KeySpec{Key: "topup_demo_key_gold", Client: apiguard.Client{ID: "123", Role: "gold"}, KeepSecret: true},
		apiguard.KeySpec{Key: "topup_demo_key_other", Client: apiguard.Client{ID: "456", Role: "regular"}, KeepSecret: true},
	)
	guard := func(s apiguard.Scheme, d apiguard.Dialect) apiguard.Middleware {
		return apiguard.MustNew(s, apiguard.WithDialect(d), apiguard.WithClock(c.Now)).Authenticate()
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
	order := `{"user_id":"123456","zone":"1234","produk_id":"1","ref_id":"REF_123456789"}`
	return []signerCase{
		{
			name:  "Bearer/MockPay",
			guard: guard(apiguard.Bearer(keys), apiguard.MockPay()),
			good:  sig(client.Bearer("sandbox_sk_test_rt_clientA")), bad: sig(client.Bearer("sandbox_sk_test_rt_wrong")),
			newRequest: post(`{"order_id":"ORDER-123","amount":100000}`), wantClient: "client-a",
			wantStatus: 401, wantBody: `{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}`,
		},
		{
			name:  "APIKey/Reseller",
			guard: guard(apiguard.Bearer(keys, "X-API-Key"), apiguard.Reseller()),
			good:  sig(client.APIKey("X-API-Key", "topup_demo_key_gold")), bad: sig(client.APIKey("x-api-key", "topup_demo_key_nope")),
			newRequest: post(`{}`), wantClient: "123",
			wantStatus: 401, wantBody: `{"status":"error","message":"Invalid API key","code":401}`,
		},
		{
			name:  "Basic/Midtrans",
			guard: guard(apiguard.Basic(keys), apiguard.Midtrans()),
			good:  sig(client.Basic("SB-Mid-server-rt123456")), bad: sig(client.Basic("SB-Mid-server-wrong")),
			newRequest: post(`{"transaction_details":{"order_id":"YOUR-ORDERID-123456","gross_amount":10000}}`), wantClient: "M-rt",
			wantStatus: 401, wantBody: `{"status_code":"401","status_message":"Access denied due to unauthorized transaction, please check client or server key"}`,
		},
		{
			name:  "StatusHash/Reseller",
			guard: guard(statusScheme{keys, map[string]string{"TRX_123456789": "123"}}, apiguard.Reseller()),
			good:  sig(client.StatusHash("topup_demo_key_gold")), bad: sig(client.StatusHash("topup_demo_key_other")),
			newRequest: post(`{"trx_id":"TRX_123456789"}`), wantClient: "123",
			wantStatus: 401, wantBody: `{"status":"error","message":"Invalid hash combination","code":401}`,
		},
		{
			name: "OrderHash/Reseller",
			guard: guard(orderScheme{keys, c.Now, map[string]map[string]int64{"1": {"regular": 15000, "gold": 14500}}},
				apiguard.Reseller()),
			good: sig(client.OrderHash("topup_demo_key_gold", client.HashClock(c.Now))),
			bad:  sig(client.OrderHash("topup_demo_key_nope", client.HashClock(c.Now))),
			newRequest: func(url string) *http.Request {
				r := post(order)(url)
				return r.WithContext(client.WithPrice(r.Context(), 14500))
			},
			wantClient: "123",
			wantStatus: 401, wantBody: `{"status":"error","message":"Invalid API key","code":401}`,
		},
	}
}

// TestRoundTrip sends a request through each Signer's Transport to a
// server guarded by the wrapper of its scheme: the right secret reaches the
// handler with the client in the context and the body intact, a wrong one
// gets the documented error to the letter.
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
			json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			if resp.StatusCode != 200 || got.Client != tc.wantClient || got.Body != string(sent) {
				t.Errorf("right secret: %d, client %q, body %q; want 200, %q, %q", resp.StatusCode, got.Client, got.Body, tc.wantClient, sent)
			}
			if req.Header.Get("Authorization") != "" {
				t.Error("the caller's request was signed in place")
			}

			resp, err = (&http.Client{Transport: client.Transport(tc.bad, nil)}).Do(tc.newRequest(srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || !jsonEqual(t, string(b), tc.wantBody) {
				t.Errorf("wrong secret: %d %s; want %d %s", resp.StatusCode, b, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

// TestRoundTripPay88 runs the 88Pay flow against a server of seed 004: the
// right credentials reach the API, a wrong key gets the token endpoint's
// documented refusal as a *TokenError.
func TestRoundTripPay88(t *testing.T) {
	c := newClock()
	f := newFake88(t, c)
	srv := httptest.NewServer(f)
	defer srv.Close()

	p := must[*client.Pay88](t)(client.NewPay88(srv.URL+"/api/auth/token", f.key, f.merchant, nil, client.Pay88Clock(c.Now)))
	resp, err := (&http.Client{Transport: p}).Post(srv.URL+"/api/charges", "application/json", strings.NewReader(`{"amount":50000}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `{"status":"Success","code":200,"message":"Charge created","data":{"token":"tok-1","body":"{\"amount\":50000}"}}`
	if resp.StatusCode != 200 || !jsonEqual(t, string(b), want) {
		t.Errorf("right credentials: %d %s; want 200 %s", resp.StatusCode, b, want)
	}

	for _, bad := range []struct{ name, key, merchant string }{
		{"wrong key", "sk_test_wrong000000000", f.merchant},
		{"wrong merchant", f.key, "MCH-COL-000000"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			p := must[*client.Pay88](t)(client.NewPay88(srv.URL+"/api/auth/token", bad.key, bad.merchant, nil, client.Pay88Clock(c.Now)))
			_, err := (&http.Client{Transport: p}).Get(srv.URL + "/api/charges")
			var te *client.TokenError
			if !errors.As(err, &te) || te.StatusCode != 401 || te.Message != "Invalid API key or merchant ID" {
				t.Fatalf("err = %v, want a 401 TokenError \"Invalid API key or merchant ID\"", err)
			}
			if strings.Contains(err.Error(), bad.key) {
				t.Errorf("the error %q shows the key", err)
			}
		})
	}

	t.Run("no session id", func(t *testing.T) {
		// Without the client, the server's documented 400 (what Pay88
		// always prevents).
		req := must[*http.Request](t)(http.NewRequestWithContext(context.Background(), "GET", srv.URL+"/api/charges", nil))
		req.Header.Set("Authorization", "Bearer tok-1")
		resp := must[*http.Response](t)(http.DefaultClient.Do(req))
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := `{"status":"Error","code":400,"message":"Missing required header: x-session-id"}`; resp.StatusCode != 400 || !jsonEqual(t, string(b), want) {
			t.Errorf("%d %s, want 400 %s", resp.StatusCode, b, want)
		}
	})
}
