package apiguard_test

import (
	"encoding/base64"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/apiguard/apiguard"
)

// call serves one request and prints the status and body.
func call(h http.Handler, r *http.Request) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body.String())
}

func ExampleBearer() {
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		log.Fatal(err)
	}
	if err := keys.Add(apiguard.KeySpec{
		Key:    "sandbox_sk_test_clientA",
		Client: apiguard.Client{ID: "client-a", Scopes: []string{"payment:create"}},
	}); err != nil {
		log.Fatal(err)
	}
	g := apiguard.MustNew(apiguard.Bearer(keys), apiguard.WithDialect(apiguard.MockPay()), apiguard.WithEnvironment(apiguard.Sandbox))

	create := g.Authenticate()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := apiguard.ClientFrom(r.Context())
		fmt.Fprintf(w, "payment for %s", c.ID)
	}))

	r := httptest.NewRequest("POST", "/api/v1/payment/create", nil)
	r.Header.Set("Authorization", "Bearer sandbox_sk_test_clientA")
	call(create, r)

	r = httptest.NewRequest("POST", "/api/v1/payment/create", nil)
	r.Header.Set("Authorization", "Bearer sandbox_sk_test_unknown")
	call(create, r)
	// Output:
	// 200 payment for client-a
	// 401 {"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}
}

func ExampleGuard_RequireScope() {
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		log.Fatal(err)
	}
	if err := keys.Add(apiguard.KeySpec{Key: "sandbox_sk_test_reader", Client: apiguard.Client{ID: "client-b", Scopes: []string{"payment:read"}}}); err != nil {
		log.Fatal(err)
	}
	g := apiguard.MustNew(apiguard.Bearer(keys), apiguard.WithDialect(apiguard.MockPay()))

	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "created") })
	// The scope check may stand outside Authenticate: it resolves the
	// caller itself, once per request.
	create := apiguard.Chain(g.RequireScope("payment:create"), g.Authenticate())(ok)
	read := apiguard.Chain(g.RequireScope("payment:read"), g.Authenticate())(ok)

	r := httptest.NewRequest("POST", "/api/v1/payment/create", nil)
	r.Header.Set("Authorization", "Bearer sandbox_sk_test_reader")
	call(create, r)
	call(read, r)
	// Output:
	// 403 {"success":false,"error":{"code":"FORBIDDEN","message":"Insufficient permissions for this operation"}}
	// 200 created
}

func ExampleBasic() {
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		log.Fatal(err)
	}
	if err := keys.Add(apiguard.KeySpec{Key: "SB-Mid-server-abc123cde456", Client: apiguard.Client{ID: "M-1"}}); err != nil {
		log.Fatal(err)
	}
	g := apiguard.MustNew(apiguard.Basic(keys), apiguard.WithDialect(apiguard.Midtrans()))
	h := g.Authenticate()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := apiguard.ClientFrom(r.Context())
		fmt.Fprint(w, "merchant ", c.ID)
	}))

	r := httptest.NewRequest("POST", "/snap/v1/transactions", nil)
	r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("SB-Mid-server-abc123cde456:")))
	fmt.Println(r.Header.Get("Authorization"))
	call(h, r)

	r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("SB-Mid-server-abc123cde456:password")))
	call(h, r)
	// Output:
	// Basic U0ItTWlkLXNlcnZlci1hYmMxMjNjZGU0NTY6
	// 200 merchant M-1
	// 401 {"status_code":"401","status_message":"Access denied due to unauthorized transaction, please check client or server key"}
}

func ExampleJSONDialect() {
	// A dialect of one's own: an envelope and a text of one's own.
	d := &apiguard.JSONDialect{
		Messages: map[string]apiguard.Message{"missing_key": {EN: "API key required"}},
		Body: func(e *apiguard.Error, msg string) any {
			return map[string]any{"ok": false, "error": e.Code, "message": msg}
		},
	}
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		log.Fatal(err)
	}
	g := apiguard.MustNew(apiguard.Bearer(keys), apiguard.WithDialect(d))
	call(g.Authenticate()(http.NotFoundHandler()), httptest.NewRequest("GET", "/", nil))

	// Or one text changed in a built-in dialect.
	g = apiguard.MustNew(apiguard.Bearer(keys), apiguard.WithDialect(
		apiguard.Reseller().WithMessage("rate_limited", apiguard.Message{EN: "Too many requests. Please try again later."})))
	call(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.Deny(w, r, apiguard.ErrRateLimited) }),
		httptest.NewRequest("GET", "/", nil))
	// Output:
	// 401 {"error":"missing_key","message":"API key required","ok":false}
	// 429 {"status":"error","message":"Too many requests. Please try again later.","code":429}
}

func ExampleProblem() {
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		log.Fatal(err)
	}
	g := apiguard.MustNew(apiguard.Bearer(keys)) // Problem() is the default dialect
	h := g.Authenticate()(http.NotFoundHandler())
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer nope")
	call(h, r)
	r.Header.Set("x-language", "id")
	call(h, r)
	// Output:
	// 401 {"type":"about:blank","title":"Unauthorized","status":401,"detail":"Invalid API key","code":"invalid_key"}
	// 401 {"type":"about:blank","title":"Unauthorized","status":401,"detail":"Kunci API tidak valid","code":"invalid_key"}
}
