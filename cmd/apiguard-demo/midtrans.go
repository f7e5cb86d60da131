package main

import (
	"net/http"
	"strings"

	"github.com/apiguard/apiguard"
)

// Midtrans: Basic with the server key as username and an empty
// password for back-end calls; the publishable client key in the client_key
// query parameter for front-end calls.
const (
	midtransServerKey = "SB-Mid-server-demo123456"
	midtransClientKey = "SB-Mid-client-demo123456"
)

// midtransKeys are Midtrans' fixed keys; its keys begin with SB-Mid-
// (sandbox) or Mid- (production).
var midtransKeys = &demoKeys{
	prefixes: []string{"SB-Mid-", "Mid-"},
	specs: []apiguard.KeySpec{
		{Key: midtransServerKey, Client: apiguard.Client{ID: "M-demo", KeyID: "mt_server"}},
		{Key: midtransClientKey, Client: apiguard.Client{ID: "M-demo", KeyID: "mt_client", Publishable: true}},
	},
}

var midtransAPI = api{
	mount: mountMidtrans,
	keys:  midtransKeys,
	title: "Midtrans under /midtrans: Basic base64(server_key + \":\"), client_key for front-end calls",
	credentials: []string{
		midtransServerKey + "  server key (merchant M-demo)",
		midtransClientKey + "  client key (merchant M-demo)",
	},
	curl: func(base, _ string) string {
		return `curl -s -X POST ` + base + `/midtrans/snap/v1/transactions -u ` + midtransServerKey +
			`: -H "Content-Type: application/json" -H "Accept: application/json" -d '{"transaction_details":{"order_id":"YOUR-ORDERID-123456","gross_amount":10000}}'`
	},
}

func mountMidtrans(mux *http.ServeMux, cfg config) error {
	keys, err := cfg.keyStore(midtransKeys)
	if err != nil {
		return err
	}
	opts := append(cfg.common(), apiguard.WithDialect(apiguard.Midtrans()), apiguard.WithEnvironment(apiguard.Sandbox))
	server, err := apiguard.New(apiguard.Basic(keys), opts...)
	if err != nil {
		return err
	}
	client, err := apiguard.New(apiguard.ClientKey(keys), opts...)
	if err != nil {
		return err
	}

	snap := func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			TransactionDetails struct {
				OrderID     string `json:"order_id"`
				GrossAmount int64  `json:"gross_amount"`
			} `json:"transaction_details"`
		}
		if err := decodeJSON(r, &body); err != nil || body.TransactionDetails.OrderID == "" || body.TransactionDetails.GrossAmount <= 0 {
			server.Deny(w, r, &apiguard.Error{Status: 400, Code: "validation_error",
				Message: "transaction_details.order_id and transaction_details.gross_amount are required"})
			return
		}
		token := uuid4()
		writeJSON(w, 201, struct {
			Token       string `json:"token"`
			RedirectURL string `json:"redirect_url"`
		}{token, "https://app.sandbox.midtrans.com/snap/v4/redirection/" + token})
	}
	cardToken := func(w http.ResponseWriter, r *http.Request) {
		card := r.URL.Query().Get("card_number")
		if len(card) < 12 || strings.Trim(card, "0123456789") != "" {
			client.Deny(w, r, &apiguard.Error{Status: 400, Code: "validation_error", Message: "card_number is invalid"})
			return
		}
		writeJSON(w, 200, map[string]string{
			"status_code":    "200",
			"status_message": "OK, success request new token",
			"token_id":       card[:6] + "-" + card[len(card)-4:] + "-" + uuid4(),
		})
	}

	// The key first, then the media types: an unauthenticated caller learns
	// nothing of what the route accepts.
	mux.Handle("POST /midtrans/snap/v1/transactions",
		apiguard.Chain(server.Authenticate(), server.RequireJSON())(http.HandlerFunc(snap)))
	mux.Handle("GET /midtrans/v2/token", client.Authenticate()(http.HandlerFunc(cardToken)))
	return nil
}
