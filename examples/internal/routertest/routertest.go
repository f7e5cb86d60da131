// Package routertest holds the table of requests that every router
// example must answer alike: the documented errors of each refusal, in
// MockPay's envelope, the authenticated client reaching the handlers, and
// each route group's rate limit.
package routertest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/apiguardtest"
	"github.com/apiguard/apiguard/client"
	"github.com/apiguard/apiguard/examples/api"
)

// A Router routes the example API; each example package's New is one.
type Router func(*api.API) http.Handler

// env is the API routed by a Router, on a settable clock, with one
// payment of client-a (ORDER-A1) and one of client-b (ORDER-B1), counting
// the refusals its Guard renders.
type env struct {
	h       http.Handler
	clock   *apiguardtest.Clock
	denials atomic.Int64
}

func newEnv(t *testing.T, newRouter Router) *env {
	t.Helper()
	e := &env{clock: apiguardtest.ClockAt(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))}
	a, err := api.New(apiguardtest.NewKeyStore(), e.clock.Now, apiguard.WithObserver(func(d apiguard.Decision) {
		if !d.Allowed {
			e.denials.Add(1)
		}
	}))
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
	e.h = newRouter(a)
	return e
}

func (e *env) wantDenials(t *testing.T, n int) {
	t.Helper()
	if got := e.denials.Load(); got != int64(n) {
		t.Errorf("the observer saw %d refusals, want %d", got, n)
	}
}

// Run routes the API with newRouter and checks through it every case of
// the table in order, a call over HTTP with the client package's signer,
// and the limits of the route groups.
func Run(t *testing.T, newRouter Router) {
	e := newEnv(t, newRouter)
	h := e.h

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
	e.wantDenials(t, refusals)

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

	t.Run("admin group limit", func(t *testing.T) { adminLimit(t, newRouter) })
	t.Run("per-IP limit", func(t *testing.T) { perIPLimit(t, newRouter) })
}

// wantLimit checks the rate-limit headers of resp.
func wantLimit(t *testing.T, resp *http.Response, limit, remaining, reset int) {
	t.Helper()
	for h, want := range map[string]int{"RateLimit-Limit": limit, "RateLimit-Remaining": remaining, "RateLimit-Reset": reset} {
		if got := resp.Header.Get(h); got != strconv.Itoa(want) {
			t.Errorf("%s = %q, want %d", h, got, want)
		}
	}
}

// rateLimited is the refusal of a limit whose bucket refills in wait.
func rateLimited(wait time.Duration) error {
	return &apiguard.Error{Status: http.StatusTooManyRequests, Code: "rate_limited", RetryAfter: wait, Err: apiguard.ErrRateLimited}
}

// tooMany is MockPay's 429, to the letter.
const tooMany = `{"success":false,"error":{"code":"TOO_MANY_REQUESTS","message":"Too many requests"}}`

// adminLimit: the admin group admits exactly AdminPerMinute requests of a
// client at once, then refuses with 429 in MockPay's envelope with
// Retry-After and the RateLimit headers, while the rest of the API still
// serves the client; a token refills every 6 seconds.
func adminLimit(t *testing.T, newRouter Router) {
	e := newEnv(t, newRouter)
	admin := func() *http.Response {
		return apiguardtest.Serve(e.h, apiguardtest.BearerRequest("GET", "/api/v1/admin/payments", apiguardtest.KeyAdmin, nil))
	}
	const n, refill = api.AdminPerMinute, time.Minute / api.AdminPerMinute
	for i := 1; i <= n; i++ {
		resp := admin()
		if !apiguardtest.AssertBody(t, resp, 200, `{"success":true,"data":{"payments":2,"admin":"admin"}}`) {
			t.Fatalf("request %d of %d refused", i, n)
		}
		wantLimit(t, resp, n, n-i, int(time.Duration(i)*refill/time.Second))
	}
	resp := admin()
	apiguardtest.AssertError(t, resp, apiguard.MockPay(), rateLimited(refill))
	apiguardtest.AssertBody(t, resp, 429, tooMany)
	if got := resp.Header.Get("Retry-After"); got != "6" {
		t.Errorf("Retry-After = %q, want 6", got)
	}
	wantLimit(t, resp, n, 0, 60)

	// The limit is the group's: the client's other calls still pass.
	resp = apiguardtest.Serve(e.h, apiguardtest.BearerRequest("POST", "/api/v1/payments", apiguardtest.KeyAdmin,
		strings.NewReader(`{"order_id":"ORDER-ADM1","amount":1}`)))
	apiguardtest.AssertBody(t, resp, 201, `{"success":true,"data":{"order_id":"ORDER-ADM1","amount":1,"status":"pending","client":"admin"}}`)
	wantLimit(t, resp, api.PerIPPerMinute, api.PerIPPerMinute-n-2, int(time.Duration(n+2)*time.Minute/api.PerIPPerMinute/time.Second))

	// 6 seconds later, one more token.
	e.clock.Advance(refill)
	resp = admin()
	apiguardtest.AssertBody(t, resp, 200, `{"success":true,"data":{"payments":3,"admin":"admin"}}`)
	wantLimit(t, resp, n, 0, 60)
	apiguardtest.AssertError(t, admin(), apiguard.MockPay(), rateLimited(refill))
	e.wantDenials(t, 2)
}

// perIPLimit: /api/v1 admits exactly PerIPPerMinute requests of a client IP
// at once, counted before the key is checked (so a run of wrong keys uses
// up the IP's budget, and the right key does not help), while other IPs
// and the routes outside the group are served.
func perIPLimit(t *testing.T, newRouter Router) {
	e := newEnv(t, newRouter)
	from := func(ip string, r *http.Request) *http.Response {
		r.RemoteAddr = ip + ":40000"
		return apiguardtest.Serve(e.h, r)
	}
	const n = api.PerIPPerMinute
	for i := 1; i <= n; i++ {
		resp := from("198.51.100.7", apiguardtest.BearerRequest("GET", "/api/v1/payments/ORDER-A1", "sandbox_sk_test_guess"+strconv.Itoa(i), nil))
		if !apiguardtest.AssertError(t, resp, apiguard.MockPay(), apiguard.ErrInvalidKey) {
			t.Fatalf("guess %d of %d", i, n)
		}
		wantLimit(t, resp, n, n-i, i)
	}
	resp := from("198.51.100.7", apiguardtest.BearerRequest("GET", "/api/v1/payments/ORDER-A1", apiguardtest.KeyClientA, nil))
	apiguardtest.AssertError(t, resp, apiguard.MockPay(), rateLimited(time.Second))
	apiguardtest.AssertBody(t, resp, 429, tooMany)
	if got := resp.Header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	wantLimit(t, resp, n, 0, 60)

	resp = from("198.51.100.8", apiguardtest.BearerRequest("GET", "/api/v1/payments/ORDER-A1", apiguardtest.KeyClientA, nil))
	apiguardtest.AssertBody(t, resp, 200, `{"success":true,"data":{"order_id":"ORDER-A1","amount":100000,"status":"pending","client":"client-a"}}`)
	wantLimit(t, resp, n, n-1, 1)
	resp = from("198.51.100.7", apiguardtest.NewRequest("GET", "/healthz", nil, nil))
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "ok" || resp.Header.Get("RateLimit-Limit") != "" {
		t.Errorf("/healthz: %d %q, RateLimit-Limit %q; want 200 \"ok\" without limit", resp.StatusCode, b, resp.Header.Get("RateLimit-Limit"))
	}
	e.wantDenials(t, n+1)
}
