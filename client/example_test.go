package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/client"
)

// A MockPay client: every request carries the server key as a Bearer
// token, and the server's handler sees the client the key belongs to.
func ExampleBearer() {
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		log.Fatal(err)
	}
	if err := keys.Add(apiguard.KeySpec{Key: "sandbox_sk_test_example", Client: apiguard.Client{ID: "client-a"}}); err != nil {
		log.Fatal(err)
	}
	g := apiguard.MustNew(apiguard.Bearer(keys), apiguard.WithDialect(apiguard.MockPay()))
	srv := httptest.NewServer(g.Authenticate()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := apiguard.ClientFrom(r.Context())
		fmt.Fprintf(w, "hello %s", c.ID)
	})))
	defer srv.Close()

	s, err := client.Bearer("sandbox_sk_test_example")
	if err != nil {
		log.Fatal(err)
	}
	hc := &http.Client{Transport: client.Transport(s, nil)}
	resp, err := hc.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(b))
	// Output: 200 hello client-a
}

// Midtrans' example server key, as its documentation encodes it.
func ExampleBasic() {
	s, err := client.Basic("SB-Mid-server-abc123cde456")
	if err != nil {
		log.Fatal(err)
	}
	r := httptest.NewRequest("POST", "https://app.sandbox.midtrans.com/snap/v1/transactions", nil)
	s.Sign(r)
	fmt.Println(r.Header.Get("Authorization"))
	// Output: Basic U0ItTWlkLXNlcnZlci1hYmMxMjNjZGU0NTY6
}

// The reseller's status check: the hash of the key and the body's trx_id,
// and the body sent unchanged.
func ExampleStatusHash() {
	s, err := client.StatusHash("topup_demo_key_gold")
	if err != nil {
		log.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/status", strings.NewReader(`{"trx_id":"TRX_123456789"}`))
	if err := s.Sign(r); err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	fmt.Println(r.Header.Get("Authorization"))
	fmt.Println(string(body))
	// Output:
	// Bearer 37c6df5c5e0f209029897e241c216247a8a633ab79abe5369fd342ff0a998038
	// {"trx_id":"TRX_123456789"}
}

// The reseller's order: the price, which the body does not carry, comes
// from the request's context.
func ExampleOrderHash() {
	at := time.Unix(1764000000, 0)
	s, err := client.OrderHash("topup_demo_key_gold", client.WithClock(func() time.Time { return at }))
	if err != nil {
		log.Fatal(err)
	}
	ctx := client.WithPrice(context.Background(), 14500) // product 1 at the gold price
	r := httptest.NewRequest("POST", "/order",
		strings.NewReader(`{"user_id":"123456","zone":"1234","produk_id":"1","ref_id":"REF_123456789"}`)).WithContext(ctx)
	if err := s.Sign(r); err != nil {
		log.Fatal(err)
	}
	for _, h := range []string{"Authorization", "X-API-Key", "X-Request-Time"} {
		fmt.Printf("%s: %s\n", h, r.Header.Get(h))
	}
	// Output:
	// Authorization: Bearer d16612179ac3f46683d195cab8940e671c251714eecb3c65f68d7f41d932f5a7
	// X-API-Key: topup_demo_key_gold
	// X-Request-Time: 1764000000
}

// HMAC signatures for apiguard's HMACSignature: the secret never travels,
// the client names itself in X-Client-Id, and the time, the payment id of
// the path and the amount are signed, joined by newlines.
func ExampleNewHMAC() {
	at := time.Unix(1763805600, 0)
	paymentID := client.FieldFunc(func(r *http.Request, _ []byte) (string, error) { return path.Base(r.URL.Path), nil })
	s, err := client.NewHMAC("whsec_demo",
		[]client.Field{client.HeaderField("X-Request-Time"), paymentID, client.JSONField("amount")},
		client.SendTime("X-Request-Time"), client.SendHeader("X-Client-Id", "acme"),
		client.WithClock(func() time.Time { return at }))
	if err != nil {
		log.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/payments/pay-42", strings.NewReader(`{"amount":"100000"}`))
	if err := s.Sign(r); err != nil {
		log.Fatal(err)
	}
	for _, h := range []string{"Authorization", "X-Client-Id", "X-Request-Time"} {
		fmt.Printf("%s: %s\n", h, r.Header.Get(h))
	}
	// Output:
	// Authorization: Bearer 52d045eb42781da86e62fef7e528b334a9afdc9cd5181fc0f010ba432d963db0
	// X-Client-Id: acme
	// X-Request-Time: 1763805600
}

// An 88Pay client against apiguard's own 88Pay server (Sessions.Issuer
// and SessionScheme): the token is fetched once and sent, with its session
// id, on every call.
func ExampleNewSession() {
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		log.Fatal(err)
	}
	if err := keys.Add(apiguard.KeySpec{Key: "sk_test_a1b2c3d4e5f6g7h8", Client: apiguard.Client{ID: "MCH-COL-29ZTP4"}}); err != nil {
		log.Fatal(err)
	}
	signing, err := apiguard.GenerateSigningKey("")
	if err != nil {
		log.Fatal(err)
	}
	ring, err := apiguard.NewKeyRing(signing)
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := apiguard.NewSessions("https://api.example.com", ring)
	if err != nil {
		log.Fatal(err)
	}
	credentials := apiguard.MustNew(apiguard.MerchantKey(keys), apiguard.WithDialect(apiguard.Pay88()))
	session := apiguard.MustNew(sessions.SessionScheme(), apiguard.WithDialect(apiguard.Pay88()))
	issuer, err := sessions.Issuer(credentials) // a real server adds the issuance limits
	if err != nil {
		log.Fatal(err)
	}

	var tokens atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("POST /api/auth/token", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokens.Add(1)
		issuer.ServeHTTP(w, r)
	}))
	mux.Handle("POST /api/transactions/charges", session.Authenticate()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := apiguard.ClientFrom(r.Context())
		fmt.Fprintf(w, "charge for %s", c.ID)
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	p, err := client.NewSession(srv.URL+"/api/auth/token", "sk_test_a1b2c3d4e5f6g7h8", "MCH-COL-29ZTP4", nil)
	if err != nil {
		log.Fatal(err)
	}
	hc := &http.Client{Transport: p}
	for range 3 {
		resp, err := hc.Post(srv.URL+"/api/transactions/charges", "application/json", strings.NewReader(`{"amount":50000}`))
		if err != nil {
			log.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(string(b))
	}
	fmt.Println("tokens fetched:", tokens.Load())

	// Wrong credentials: the token endpoint's refusal, as a *TokenError.
	bad, err := client.NewSession(srv.URL+"/api/auth/token", "sk_test_wrong", "MCH-COL-29ZTP4", nil)
	if err != nil {
		log.Fatal(err)
	}
	_, err = (&http.Client{Transport: bad}).Post(srv.URL+"/api/transactions/charges", "application/json", nil)
	var te *client.TokenError
	if errors.As(err, &te) {
		fmt.Println(te.StatusCode, te.Message)
	}
	// Output:
	// charge for MCH-COL-29ZTP4
	// charge for MCH-COL-29ZTP4
	// charge for MCH-COL-29ZTP4
	// tokens fetched: 1
	// 401 Invalid API key or merchant ID
}
