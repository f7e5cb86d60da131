package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/apiguard/apiguard"
)

// The game top-up reseller: an IP whitelist and keys bound to
// registered IPs; a Bearer key for the product list; hash signatures for
// the status check, SHA256(api_key + trx_id), and for orders,
// SHA256(api_key + ref_id + price) with X-API-Key and X-Request-Time; limits
// per IP and per user.
const (
	topupKeyGold    = "topup_demo_key_gold"
	topupKeyIPBound = "topup_demo_key_ipbound"
)

// topupKeys are the Reseller API's fixed keys, kept in plaintext for its
// hash signatures; its keys begin with topup_.
var topupKeys = &demoKeys{
	prefixes: []string{"topup_"},
	specs: []apiguard.KeySpec{
		{Key: topupKeyGold, Client: apiguard.Client{ID: "123", KeyID: "tu_gold", Role: "gold"}, KeepSecret: true},
		{Key: topupKeyIPBound, Client: apiguard.Client{ID: "456", KeyID: "tu_ipbound", Role: "regular",
			IPs: []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32")}}, KeepSecret: true},
	},
}

var topupAPI = api{
	mount: mountTopup,
	keys:  topupKeys,
	title: "Reseller under /topup: IP whitelist, Bearer key, hash signatures, per-IP and per-user limits",
	credentials: []string{
		topupKeyGold + "  user 123, role gold, balance 1000000",
		topupKeyIPBound + "  user 456, role regular, balance 10000, registered IP 203.0.113.7 only",
		"whitelist: 127.0.0.0/8 ::1/128 203.0.113.0/24 2001:db8::/32",
	},
	curl: func(base, _ string) string {
		return `curl -s ` + base + `/topup/product -H "Authorization: Bearer ` + topupKeyGold + `"`
	},
}

var topupWhitelist = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32"),
}

// resellerBody is the reseller's success envelope.
type resellerBody struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Code    int    `json:"code"`
	Data    any    `json:"data"`
}

// The seed's route-specific errors.
var (
	errTrxRequired    = &apiguard.Error{Status: 400, Code: "trx_id_required", Message: "Transaction ID is required"}
	errTrxNotFound    = &apiguard.Error{Status: 404, Code: "transaction_not_found", Message: "Transaction not found"}
	errProductMissing = &apiguard.Error{Status: 404, Code: "product_not_found", Message: "Product not found"}
	errProductOff     = &apiguard.Error{Status: 400, Code: "product_not_available", Message: "Product is not available"}
	errNoBalanceBody  = &apiguard.Error{Status: 400, Code: "insufficient_balance", Message: "Saldo tidak cukup"}
	errRefReused      = &apiguard.Error{Status: 409, Code: "ref_id_used", Message: "ref_id already used"}
	errOrderFields    = &apiguard.Error{Status: 400, Code: "invalid_order", Message: "user_id, produk_id and ref_id are required"}
)

// orderRequest is the body of POST /topup/order.
type orderRequest struct {
	UserID   string `json:"user_id"`
	Zone     string `json:"zone"`
	ProdukID string `json:"produk_id"`
	RefID    string `json:"ref_id"`
}

func mountTopup(mux *http.ServeMux, cfg config) error {
	keys, err := cfg.keyStore(topupKeys)
	if err != nil {
		return err
	}
	book := newLedger()
	refs, err := cfg.fleetIDs("topup.ref_ids")
	if err != nil {
		return err
	}
	opts := append(cfg.common(), apiguard.WithDialect(apiguard.Reseller()))

	// Product list: a Bearer key; its own text for 429.
	productG, err := apiguard.New(apiguard.Bearer(keys), append(cfg.common(), apiguard.WithDialect(
		apiguard.Reseller().WithMessage("rate_limited", apiguard.Message{EN: "Too many requests. Please try again later."})))...)
	if err != nil {
		return err
	}
	// Status: the digest is made with the key of the transaction's owner.
	owner := func(r *http.Request, fields []string) (string, error) {
		t, ok := book.transaction(fields[0])
		if !ok {
			return "", errTrxNotFound
		}
		return t.owner, nil
	}
	statusG, err := apiguard.New(apiguard.HashSignature(apiguard.SignerFromOwner(keys, owner),
		[]apiguard.Field{apiguard.BodyField("trx_id", errTrxRequired)}), opts...)
	if err != nil {
		return err
	}
	// Order: the key in X-API-Key, the digest over ref_id and the price of
	// the product for the caller's role.
	price := func(r *http.Request, c *apiguard.Client) (string, error) {
		p, err := orderedProduct(r)
		if err != nil {
			return "", err
		}
		return strconv.FormatInt(p.priceFor(c.Role), 10), nil
	}
	orderG, err := apiguard.New(apiguard.HashSignature(apiguard.SignerFromHeader(keys, "X-API-Key"),
		[]apiguard.Field{apiguard.BodyField("ref_id", errOrderFields), apiguard.ComputedField(price)},
		apiguard.WithRequiredHeaders("X-Request-Time")), opts...)
	if err != nil {
		return err
	}

	limit := func(name string, g *apiguard.Guard, key apiguard.Bucket, perMinute int) (apiguard.Middleware, error) {
		l, err := cfg.limiter(name, apiguard.PerMinute(perMinute))
		if err != nil {
			return nil, err
		}
		return g.RateLimit(l, key), nil
	}
	productPerIP, err := limit("topup.product_per_ip", productG, apiguard.ByIP(), 20)
	if err != nil {
		return err
	}
	statusPerUser, err := limit("topup.status_per_user", statusG, apiguard.ByClient(), 30)
	if err != nil {
		return err
	}
	orderPerIP, err := limit("topup.order_per_ip", orderG, apiguard.ByIP(), 100)
	if err != nil {
		return err
	}
	orderPerUser, err := limit("topup.order_per_user", orderG, apiguard.ByClient(), 30)
	if err != nil {
		return err
	}

	products := func(w http.ResponseWriter, r *http.Request) {
		c, _ := apiguard.ClientFrom(r.Context())
		list := make([]product, len(topupProducts))
		for i, p := range topupProducts {
			p.Price = p.priceFor(c.Role)
			list[i] = p
		}
		writeJSON(w, 200, resellerBody{"success", "Berhasil mendapatkan list product", 200, list})
	}
	status := func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			TrxID string `json:"trx_id"`
		}
		json.NewDecoder(r.Body).Decode(&body) // the hash scheme has checked the body
		t, _ := book.transaction(body.TrxID)
		writeJSON(w, 200, resellerBody{"success", "Berhasil mendapatkan status transaksi", 200, t})
	}
	order := func(w http.ResponseWriter, r *http.Request) {
		c, _ := apiguard.ClientFrom(r.Context())
		var req orderRequest
		if err := decodeJSON(r, &req); err != nil || req.UserID == "" || req.ProdukID == "" || req.RefID == "" {
			orderG.Deny(w, r, errOrderFields)
			return
		}
		p, err := findProductOf(req.ProdukID)
		if err != nil {
			orderG.Deny(w, r, err)
			return
		}
		if refs != nil {
			// In a fleet, a ref_id is claimed in Redis first, so that it
			// is used once across every replica; an order refused after
			// that gives it back.
			switch fresh, err := refs.Seen(r.Context(), c.ID, req.RefID, refRetention); {
			case err != nil:
				orderG.Deny(w, r, apiguard.ErrUnavailable)
				return
			case !fresh:
				orderG.Deny(w, r, errRefReused)
				return
			}
		}
		data, err := book.order(c.ID, req.RefID, req.UserID, req.Zone, p, p.priceFor(c.Role))
		if err != nil && refs != nil && !errors.Is(err, errRefUsed) {
			if ferr := refs.Forget(context.WithoutCancel(r.Context()), c.ID, req.RefID); ferr != nil {
				log.Printf("apiguard-demo: giving back ref_id: %v", ferr)
			}
		}
		switch {
		case errors.Is(err, errRefUsed):
			orderG.Deny(w, r, errRefReused)
		case errors.Is(err, errNoBalance):
			orderG.Deny(w, r, errNoBalanceBody)
		case err != nil:
			orderG.Deny(w, r, apiguard.ErrUnavailable)
		default:
			writeJSON(w, 200, resellerBody{"success", "Order created successfully", 200, data})
		}
	}

	// The whitelist first, then the per-IP limit, then who is calling,
	// then the key's registered IP, then the per-user limit.
	mux.Handle("GET /topup/product", apiguard.Chain(
		productG.IPAllow(topupWhitelist...), productPerIP, productG.Authenticate(), productG.RegisteredIP(),
	)(http.HandlerFunc(products)))
	mux.Handle("POST /topup/status", apiguard.Chain(
		statusG.IPAllow(topupWhitelist...), statusG.Authenticate(), statusG.RegisteredIP(), statusPerUser,
	)(http.HandlerFunc(status)))
	mux.Handle("POST /topup/order", apiguard.Chain(
		orderG.IPAllow(topupWhitelist...), orderPerIP, orderG.RequestTime(0), orderG.Authenticate(),
		orderG.RegisteredIP(), orderPerUser,
	)(http.HandlerFunc(order)))
	return nil
}

// orderedProduct reads the product the order body names.
func orderedProduct(r *http.Request) (product, error) {
	var req orderRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.ProdukID == "" {
		return product{}, errOrderFields
	}
	return findProductOf(req.ProdukID)
}

// findProductOf returns the product with code, or the seed's errors for a
// missing or inactive one.
func findProductOf(code string) (product, error) {
	p, ok := findProduct(code)
	switch {
	case !ok:
		return product{}, errProductMissing
	case p.Status != "Aktif":
		return product{}, errProductOff
	}
	return p, nil
}
