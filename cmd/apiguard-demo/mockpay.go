package main

import (
	"net/http"

	"github.com/apiguard/apiguard"
)

// MockPay: Bearer server keys scoped to a client account, data
// isolated per client, sandbox keys only.
const (
	mockPayKeyA    = "sandbox_sk_test_demo_clientA_full"
	mockPayKeyB    = "sandbox_sk_test_demo_clientB_read"
	mockPayKeyLive = "live_sk_demo_clientA"
)

// mockPayKeys are MockPay's fixed keys; its keys begin with sandbox_ or
// live_.
var mockPayKeys = &demoKeys{
	prefixes: []string{"sandbox_", "live_"},
	specs: []apiguard.KeySpec{
		{Key: mockPayKeyA, Client: apiguard.Client{ID: "client-a", KeyID: "mp_a", Scopes: []string{"payment:create", "payment:read"}}},
		{Key: mockPayKeyB, Client: apiguard.Client{ID: "client-b", KeyID: "mp_b", Scopes: []string{"payment:read"}}},
		{Key: mockPayKeyLive, Client: apiguard.Client{ID: "client-a", KeyID: "mp_live", Scopes: []string{"payment:create", "payment:read"}}},
	},
}

var mockPayAPI = api{
	mount: mountMockPay,
	keys:  mockPayKeys,
	title: "MockPay under /mockpay: Bearer server key, sandbox",
	credentials: []string{
		mockPayKeyA + "  client-a, payment:create payment:read",
		mockPayKeyB + "  client-b, payment:read",
		mockPayKeyLive + "  live key: refused in this sandbox",
	},
	curl: func(base, _ string) string {
		return `curl -s -X POST ` + base + `/mockpay/api/v1/payment/create -H "Authorization: Bearer ` + mockPayKeyA +
			`" -H "Content-Type: application/json" -d '{"order_id":"ORDER-123","amount":100000}'`
	},
}

// paymentBody is MockPay's success envelope.
type paymentBody struct {
	Success bool    `json:"success"`
	Data    payment `json:"data"`
}

type payment struct {
	OrderID string `json:"order_id"`
	Amount  int64  `json:"amount"`
	Status  string `json:"status"`
}

// paymentKey keys payments by owner, so one client never sees another's.
type paymentKey struct{ client, order string }

func mountMockPay(mux *http.ServeMux, cfg config) error {
	keys, err := cfg.keyStore(mockPayKeys)
	if err != nil {
		return err
	}
	if _, _, ok := apiguard.Fill(keys); ok { // in memory; with -db, the database's cache is its own
		if err := cfg.watch("mockpay.keys", keys); err != nil {
			return err
		}
	}
	g, err := apiguard.New(apiguard.Bearer(keys),
		append(cfg.common(), apiguard.WithDialect(apiguard.MockPay()), apiguard.WithEnvironment(apiguard.Sandbox))...)
	if err != nil {
		return err
	}
	payments := newBoundedMap[paymentKey, payment](100_000)

	create := func(w http.ResponseWriter, r *http.Request) {
		c, _ := apiguard.ClientFrom(r.Context())
		var p payment
		if err := decodeJSON(r, &p); err != nil || p.OrderID == "" || len(p.OrderID) > 64 || p.Amount <= 0 {
			g.Deny(w, r, &apiguard.Error{Status: 400, Code: "invalid_request", Message: "order_id and a positive amount are required"})
			return
		}
		p.Status = "pending"
		switch added, err := payments.add(paymentKey{c.ID, p.OrderID}, p); {
		case err != nil:
			g.Deny(w, r, apiguard.ErrUnavailable)
		case !added:
			g.Deny(w, r, &apiguard.Error{Status: 409, Code: "duplicate_order", Message: "Order already exists"})
		default:
			writeJSON(w, 200, paymentBody{true, p})
		}
	}
	get := func(w http.ResponseWriter, r *http.Request) {
		c, _ := apiguard.ClientFrom(r.Context())
		p, ok := payments.get(paymentKey{c.ID, r.PathValue("order_id")})
		if !ok {
			g.Deny(w, r, &apiguard.Error{Status: 404, Code: "not_found", Message: "Payment not found"})
			return
		}
		writeJSON(w, 200, paymentBody{true, p})
	}

	mux.Handle("POST /mockpay/api/v1/payment/create",
		apiguard.Chain(g.Authenticate(), g.RequireScope("payment:create"))(http.HandlerFunc(create)))
	mux.Handle("GET /mockpay/api/v1/payment/{order_id}",
		apiguard.Chain(g.Authenticate(), g.RequireScope("payment:read"))(http.HandlerFunc(get)))
	return nil
}
