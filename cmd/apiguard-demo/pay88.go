package main

import (
	"net/http"
	"time"

	"github.com/apiguard/apiguard"
)

// 88Pay: two layers. The API key and merchant id are exchanged
// at POST /api/auth/token for a short-lived ES256 JWT and a session id;
// every call then sends both. HTTPS only; live keys refused in the sandbox.
const (
	pay88Key      = "sk_test_a1b2c3d4e5f6g7h8"
	pay88LiveKey  = "sk_live_demo00000000"
	pay88Merchant = "MCH-COL-29ZTP4"
)

// pay88Keys are 88Pay's fixed keys; its keys begin with sk_test_ or
// sk_live_.
var pay88Keys = &demoKeys{
	prefixes: []string{"sk_test_", "sk_live_"},
	specs: []apiguard.KeySpec{
		{Key: pay88Key, Client: apiguard.Client{ID: pay88Merchant, KeyID: "p88_test", Scopes: []string{"charges:create"}}},
		{Key: pay88LiveKey, Client: apiguard.Client{ID: pay88Merchant, KeyID: "p88_live", Scopes: []string{"charges:create"}}},
	},
}

var pay88API = api{
	mount: mountPay88,
	keys:  pay88Keys,
	title: "88Pay under /88pay: API key + merchant id for a token, then Bearer token + x-session-id; HTTPS only",
	credentials: []string{
		pay88Key + "  API key of merchant " + pay88Merchant,
		pay88LiveKey + "  live key: refused in this sandbox",
	},
	curl: func(_, secure string) string {
		if secure == "" {
			return "(HTTPS is disabled: -tls-addr is empty)"
		}
		return `curl -sk -X POST ` + secure + `/88pay/api/auth/token -H "x-api-key: ` + pay88Key + `" -H "x-merchant-id: ` + pay88Merchant + `"`
	},
}

// pay88Body is 88Pay's success envelope.
type pay88Body struct {
	Status  string `json:"status"`
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data"`
}

func mountPay88(mux *http.ServeMux, cfg config) error {
	keys, err := cfg.keyStore(pay88Keys)
	if err != nil {
		return err
	}
	sessions, ring, err := newSessions(cfg, "pay88.sessions",
		apiguard.WithTokenLifetime(apiguard.AccessToken, cfg.tokenTTL),
		apiguard.WithEnvironment(apiguard.Sandbox))
	if err != nil {
		return err
	}
	opts := append(cfg.common(), apiguard.WithDialect(apiguard.Pay88()), apiguard.WithEnvironment(apiguard.Sandbox))
	failures, err := pay88Failures(cfg)
	if err != nil {
		return err
	}
	credentials, err := apiguard.New(apiguard.MerchantKey(keys), append(opts, failures)...)
	if err != nil {
		return err
	}
	session, err := apiguard.New(sessions.SessionScheme(), opts...)
	if err != nil {
		return err
	}
	issuer, err := sessions.Issuer(credentials)
	if err != nil {
		return err
	}
	limits, err := pay88Limits(credentials, cfg)
	if err != nil {
		return err
	}

	charge := func(w http.ResponseWriter, r *http.Request) {
		c, _ := apiguard.ClientFrom(r.Context())
		var body struct {
			Flow       string `json:"flow"`
			MethodCode string `json:"method_code"`
			Amount     int64  `json:"amount"`
			Currency   string `json:"currency"`
			Country    string `json:"country"`
		}
		if err := decodeJSON(r, &body); err != nil || body.Amount <= 0 || body.Currency == "" {
			session.Deny(w, r, &apiguard.Error{Status: 400, Code: "invalid_request", Message: "amount and currency are required"})
			return
		}
		writeJSON(w, 200, pay88Body{"Success", 200, "Charge created successfully", map[string]any{
			"id": randomID("chg_", 8), "merchant_id": c.ID, "flow": body.Flow, "method_code": body.MethodCode,
			"amount": body.Amount, "currency": body.Currency, "country": body.Country, "status": "PENDING",
		}})
	}

	https := credentials.RequireHTTPS()
	mux.Handle("POST /88pay/api/auth/token", apiguard.Chain(https, limits)(issuer))
	mux.Handle("POST /88pay/api/transactions/charges", apiguard.Chain(https, session.Authenticate())(http.HandlerFunc(charge)))
	mux.Handle("GET /88pay/.well-known/jwks.json", https(ring.JWKS()))
	return nil
}

// pay88Limits returns the token endpoint's issuance limits: 10 per minute
// and 100 per hour per merchant, refused with 429 "Rate limit exceeded" and
// Retry-After of at least 60 seconds, as the seed asks. They are keyed by
// the merchant the credentials prove, not by the x-merchant-id header, so a
// caller without the key cannot use up a merchant's tokens.
func pay88Limits(g *apiguard.Guard, cfg config) (apiguard.Middleware, error) {
	l, err := cfg.limiter("pay88.issuance", apiguard.PerMinute(10), apiguard.PerHour(100))
	if err != nil {
		return nil, err
	}
	return g.RateLimit(l, apiguard.ByClient(), apiguard.WithMinRetryAfter(time.Minute)), nil
}

// pay88Failures returns the token endpoint's limit of failed attempts: 5
// per minute and 20 per hour per client IP, and per merchant claimed in
// x-merchant-id from one /24 (IPv4) or /48 (IPv6); then 429 "Rate limit
// exceeded" with Retry-After, whatever the credentials, until a token
// refills. The merchant itself, from another network, is never refused by
// a guesser's failures (apiguard.WithFailureLimit).
func pay88Failures(cfg config) (apiguard.Option, error) {
	l, err := cfg.limiter("pay88.failures", apiguard.PerMinute(5), apiguard.PerHour(20))
	if err != nil {
		return apiguard.Option{}, err
	}
	return apiguard.WithFailureLimit(l, apiguard.ByHeader("X-Merchant-Id")), nil
}
