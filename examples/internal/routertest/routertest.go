// Package routertest holds the table of requests that every router
// example must answer alike: the documented errors of each refusal, in
// MockPay's envelope, and the authenticated client reaching the handlers.
package routertest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/apiguardtest"
	"github.com/apiguard/apiguard/client"
	"github.com/apiguard/apiguard/examples/api"
)

// Run builds the API on a fresh demo key store with one payment of
// client-a (ORDER-A1) and one of client-b (ORDER-B1), routes it with
// newRouter, and checks every case in order through it.
func Run(t *testing.T, newRouter func(*api.API) http.Handler) {
	var denials atomic.Int64
	a, err := api.New(apiguardtest.NewKeyStore(), apiguard.WithDenyHook(func(apiguard.Denial) { denials.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []api.Payment{
		{OrderID: "ORDER-A1", Amount: 100000, Status: "pending", Client: "client-a"},
		{OrderID: "ORDER-B1", Amount: 5000, Status: "pending", Client: "client-b"},
	} {
		if err := a.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	h := newRouter(a)

	mock := apiguard.MockPay()
	bearer := apiguardtest.BearerRequest
	create := func(key, body string) *http.Request {
		return bearer("POST", "/api/v1/payments", key, strings.NewReader(body))
	}
	noKey := func(method, target string) *http.Request { return apiguardtest.NewRequest(method, target, nil, nil) }
	notFound := &apiguard.Error{Status: 404, Code: "not_found", Message: "Payment not found"}

	refusals := 0
	for _, c := range []struct {
		name   string
		req    *http.Request
		reason error  // a refusal: the dialect's body for it
		status int    // else: this status and body
		body   string // JSON, or plain text for /healthz
	}{
		{name: "health needs no key", req: noKey("GET", "/healthz"), status: 200, body: "ok"},

		{name: "no key", req: noKey("GET", "/api/v1/payments/ORDER-A1"), reason: apiguard.ErrMissingKey},
		{name: "unknown key", req: bearer("GET", "/api/v1/payments/ORDER-A1", "sandbox_sk_test_unknown", nil), reason: apiguard.ErrInvalidKey},
		{name: "live key in the sandbox", req: bearer("GET", "/api/v1/payments/ORDER-A1", apiguardtest.KeyLive, nil), reason: apiguard.ErrInvalidKey},
		{name: "no key on create", req: apiguardtest.NewRequest("POST", "/api/v1/payments", strings.NewReader(`{"order_id":"ORDER-X","amount":1}`), nil), reason: apiguard.ErrMissingKey},
		{name: "create without payment:create", req: create(apiguardtest.KeyClientB, `{"order_id":"ORDER-X","amount":1}`), reason: apiguard.ErrForbidden},

		{name: "create", req: create(apiguardtest.KeyClientA, `{"order_id":"ORDER-A2","amount":250000}`), status: 201,
			body: `{"success":true,"data":{"order_id":"ORDER-A2","amount":250000,"status":"pending","client":"client-a"}}`},
		{name: "create twice", req: create(apiguardtest.KeyClientA, `{"order_id":"ORDER-A2","amount":250000}`),
			reason: &apiguard.Error{Status: 409, Code: "duplicate_order", Message: "order_id already used"}},
		{name: "create with a bad body", req: create(apiguardtest.KeyClientA, `{"order_id":`), reason: apiguard.ErrInvalidBody},

		{name: "read own payment", req: bearer("GET", "/api/v1/payments/ORDER-A2", apiguardtest.KeyClientA, nil), status: 200,
			body: `{"success":true,"data":{"order_id":"ORDER-A2","amount":250000,"status":"pending","client":"client-a"}}`},
		{name: "read-only client reads its own", req: bearer("GET", "/api/v1/payments/ORDER-B1", apiguardtest.KeyClientB, nil), status: 200,
			body: `{"success":true,"data":{"order_id":"ORDER-B1","amount":5000,"status":"pending","client":"client-b"}}`},
		{name: "another client's payment is not found", req: bearer("GET", "/api/v1/payments/ORDER-A1", apiguardtest.KeyClientB, nil), reason: notFound},

		{name: "admin group without a key", req: noKey("GET", "/api/v1/admin/payments"), reason: apiguard.ErrMissingKey},
		{name: "admin group without the admin scope", req: bearer("GET", "/api/v1/admin/payments", apiguardtest.KeyClientA, nil), reason: apiguard.ErrForbidden},
		{name: "admin group", req: bearer("GET", "/api/v1/admin/payments", apiguardtest.KeyAdmin, nil), status: 200,
			body: `{"success":true,"data":{"payments":3,"admin":"admin"}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := apiguardtest.Serve(h, c.req)
			switch {
			case c.reason != nil:
				refusals++
				apiguardtest.AssertError(t, resp, mock, c.reason)
				if got := resp.Header.Get("WWW-Authenticate"); (resp.StatusCode == 401) != (got == "Bearer") {
					t.Errorf("WWW-Authenticate = %q with status %d", got, resp.StatusCode)
				}
			case strings.HasPrefix(c.body, "{"):
				apiguardtest.AssertBody(t, resp, c.status, c.body)
			default:
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != c.status || string(b) != c.body {
					t.Errorf("%d %q, want %d %q", resp.StatusCode, b, c.status, c.body)
				}
			}
		})
	}
	if got := denials.Load(); got != int64(refusals) {
		t.Errorf("the denial hook saw %d refusals, want %d", got, refusals)
	}

	// Over the network, with the client package's signer.
	t.Run("client.Transport over HTTP", func(t *testing.T) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		s, err := client.Bearer(apiguardtest.KeyClientA)
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Transport: client.Transport(s, nil)}
		resp, err := hc.Get(srv.URL + "/api/v1/payments/ORDER-A1")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		apiguardtest.AssertBody(t, resp, 200, `{"success":true,"data":{"order_id":"ORDER-A1","amount":100000,"status":"pending","client":"client-a"}}`)
	})
}
