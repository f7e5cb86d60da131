package apiguardtest_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/apiguardtest"
)

// printT stands in for a *testing.T in these examples: it prints what a
// failing assertion reports.
type printT struct{}

func (printT) Helper()                           {}
func (printT) Errorf(format string, args ...any) { fmt.Printf("FAIL: "+format+"\n", args...) }

// A handler guarded by a scope, tested with the demo key store: client-a
// may create payments, client-b may only read them.
func Example() {
	g := apiguard.MustNew(apiguard.Bearer(apiguardtest.NewKeyStore()), apiguard.WithDialect(apiguard.MockPay()))
	create := g.RequireScope("payment:create")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := apiguard.ClientFrom(r.Context())
		fmt.Fprintf(w, `{"success":true,"data":{"client":%q}}`, c.ID)
	}))
	body := `{"order_id":"ORDER-123","amount":100000}`

	resp := apiguardtest.Serve(create, apiguardtest.BearerRequest("POST", "/api/v1/payment/create", apiguardtest.KeyClientA, strings.NewReader(body)))
	fmt.Println(apiguardtest.AssertBody(printT{}, resp, 200, `{"success":true,"data":{"client":"client-a"}}`))

	resp = apiguardtest.Serve(create, apiguardtest.BearerRequest("POST", "/api/v1/payment/create", apiguardtest.KeyClientB, strings.NewReader(body)))
	fmt.Println(apiguardtest.AssertError(printT{}, resp, apiguard.MockPay(), apiguard.ErrForbidden))
	// Output:
	// true
	// true
}

// AssertError renders what the dialect writes for a reason and compares it
// with the response; a mismatch is reported like this.
func ExampleAssertError() {
	g := apiguard.MustNew(apiguard.Bearer(apiguardtest.NewKeyStore()), apiguard.WithDialect(apiguard.Reseller()))
	h := g.Authenticate()(http.NotFoundHandler())

	resp := apiguardtest.Serve(h, apiguardtest.BearerRequest("GET", "/product", "topup_wrong_key", nil))
	apiguardtest.AssertError(printT{}, resp, apiguard.Reseller(), apiguard.ErrInvalidKey) // passes: prints nothing
	apiguardtest.AssertError(printT{}, resp, apiguard.Reseller(), apiguard.ErrMissingKey)
	// Output:
	// FAIL: body = {"status":"error","message":"Invalid API key","code":401}
	// want   {"status":"error","message":"Unauthorized","code":401}
}

// A Clock moves when the test says so: a rotated key stops working when
// its overlap ends.
func ExampleClock() {
	clock := apiguardtest.ClockAt(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	keys := apiguardtest.NewKeyStore(apiguard.WithClock(clock.Now))
	g := apiguard.MustNew(apiguard.Bearer(keys), apiguard.WithClock(clock.Now), apiguard.WithDialect(apiguard.Pay88()))
	h := g.Authenticate()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))

	keys.Revoke("key-client-a", clock.Now().Add(24*time.Hour))
	for _, d := range []time.Duration{0, 23 * time.Hour, time.Hour} {
		clock.Advance(d)
		resp := apiguardtest.Serve(h, apiguardtest.BearerRequest("GET", "/", apiguardtest.KeyClientA, nil))
		fmt.Println(clock.Now().Format(time.DateTime), resp.StatusCode)
	}
	// Output:
	// 2026-11-22 10:00:00 200
	// 2026-11-23 09:00:00 200
	// 2026-11-23 10:00:00 401
}

// The Reseller API's order, signed as it documents.
func ExampleOrderRequest() {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	order := apiguardtest.Order{UserID: "123456", Zone: "1234", ProductID: "1", RefID: "REF_123456789"}
	r := apiguardtest.OrderRequest("/topup/order", apiguardtest.KeyGold, order, 14500, at)
	body, _ := io.ReadAll(r.Body)
	fmt.Println(r.Header.Get("Authorization"))
	fmt.Println(r.Header.Get("X-API-Key"), r.Header.Get("X-Request-Time"))
	fmt.Println(string(body))
	// Output:
	// Bearer d16612179ac3f46683d195cab8940e671c251714eecb3c65f68d7f41d932f5a7
	// topup_demo_key_gold 1795341600
	// {"user_id":"123456","zone":"1234","produk_id":"1","ref_id":"REF_123456789"}
}

// The reseller's status check.
func ExampleStatusRequest() {
	r := apiguardtest.StatusRequest("/topup/status", apiguardtest.KeyGold, "TRX_123456789")
	fmt.Println(r.Method, r.URL.Path, r.Header.Get("Authorization"))
	// Output: POST /topup/status Bearer 37c6df5c5e0f209029897e241c216247a8a633ab79abe5369fd342ff0a998038
}
