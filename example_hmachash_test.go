package apiguard_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/apiguard/apiguard"
)

func ExampleHashSignature() {
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		log.Fatal(err)
	}
	if err := keys.Add(apiguard.KeySpec{Key: "topup_demo_key_gold", Client: apiguard.Client{ID: "123", Role: "gold"}, KeepSecret: true}); err != nil {
		log.Fatal(err)
	}

	// POST /topup/status {"trx_id":"..."} with
	// Authorization: Bearer hex(SHA256(api_key + trx_id)), the key being
	// that of the transaction's owner.
	owner := func(r *http.Request, fields []string) (string, error) {
		if fields[0] == "TRX_123456789" {
			return "123", nil
		}
		return "", &apiguard.Error{Status: 404, Code: "not_found", Message: "Transaction not found"}
	}
	g := apiguard.MustNew(apiguard.HashSignature(apiguard.SignerFromOwner(keys, owner),
		[]apiguard.Field{apiguard.BodyField("trx_id", &apiguard.Error{Status: 400, Code: "trx_id_required", Message: "Transaction ID is required"})}),
		apiguard.WithDialect(apiguard.Reseller()))
	h := g.Authenticate()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := apiguard.ClientFrom(r.Context())
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "user %s asks %s", c.ID, body)
	}))

	d := sha256.Sum256([]byte("topup_demo_key_gold" + "TRX_123456789"))
	for _, auth := range []string{"Bearer " + hex.EncodeToString(d[:]), "Bearer 00", ""} {
		r := httptest.NewRequest("POST", "/topup/status", strings.NewReader(`{"trx_id":"TRX_123456789"}`))
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	}
	// Output:
	// 200 user 123 asks {"trx_id":"TRX_123456789"}
	// 401 {"status":"error","message":"Invalid hash combination","code":401}
	// 401 {"status":"error","message":"Unauthorized","code":401}
}

// The reseller's order route: the key in X-API-Key, the digest over ref_id
// and the price the server computes for the product and the caller's role.
func ExampleHashSignature_order() {
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		log.Fatal(err)
	}
	if err := keys.Add(apiguard.KeySpec{Key: "topup_demo_key_gold", Client: apiguard.Client{ID: "123", Role: "gold"}}); err != nil {
		log.Fatal(err)
	}

	price := func(r *http.Request, c *apiguard.Client) (string, error) {
		var order struct {
			ProdukID string `json:"produk_id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&order); err != nil || order.ProdukID != "1" {
			return "", &apiguard.Error{Status: 404, Code: "product_not_found", Message: "Product not found"}
		}
		if c.Role == "gold" {
			return "14500", nil
		}
		return "15000", nil
	}
	g := apiguard.MustNew(apiguard.HashSignature(apiguard.SignerFromHeader(keys, "X-API-Key"),
		[]apiguard.Field{apiguard.BodyField("ref_id", nil), apiguard.ComputedField(price)},
		apiguard.WithRequiredHeaders("X-Request-Time")),
		apiguard.WithDialect(apiguard.Reseller()))
	h := g.Authenticate()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // the whole body, though price read it
		fmt.Fprintf(w, "%d bytes", len(body))
	}))

	body := `{"user_id":"123456","zone":"1234","produk_id":"1","ref_id":"REF_123456789"}`
	d := sha256.Sum256([]byte("topup_demo_key_gold" + "REF_123456789" + "14500"))
	for _, withTime := range []bool{true, false} {
		r := httptest.NewRequest("POST", "/topup/order", strings.NewReader(body))
		r.Header.Set("X-API-Key", "topup_demo_key_gold")
		r.Header.Set("Authorization", "Bearer "+hex.EncodeToString(d[:]))
		if withTime {
			r.Header.Set("X-Request-Time", "1763805600")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Body.String())
	}
	// Output:
	// 200 75 bytes
	// 401 {"status":"error","message":"Unauthorized: Missing required headers","code":401}
}

// HMAC signatures for a new API: the client names itself in X-Client-Id,
// its secret never travels, and the fields are joined by newlines.
func ExampleHMACSignature() {
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		log.Fatal(err)
	}
	if err := keys.Add(apiguard.KeySpec{Key: "whsec_demo", Client: apiguard.Client{ID: "acme"}, KeepSecret: true}); err != nil {
		log.Fatal(err)
	}

	client := func(r *http.Request, _ []string) (string, error) { return r.Header.Get("X-Client-Id"), nil }
	g := apiguard.MustNew(apiguard.HMACSignature(apiguard.SignerFromOwner(keys, client),
		[]apiguard.Field{apiguard.HeaderField("X-Request-Time", nil), apiguard.PathField("id", nil), apiguard.BodyField("amount", nil)}))
	mux := http.NewServeMux()
	mux.Handle("POST /payments/{id}", g.Authenticate()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := apiguard.ClientFrom(r.Context())
		fmt.Fprint(w, "paid by ", c.ID)
	})))

	m := hmac.New(sha256.New, []byte("whsec_demo"))
	m.Write([]byte("1763805600\npay-42\n100000"))
	r := httptest.NewRequest("POST", "/payments/pay-42", strings.NewReader(`{"amount":"100000"}`))
	r.Header.Set("X-Client-Id", "acme")
	r.Header.Set("X-Request-Time", "1763805600")
	r.Header.Set("Authorization", "Bearer "+hex.EncodeToString(m.Sum(nil)))
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body.String())
	// Output:
	// 200 paid by acme
}
