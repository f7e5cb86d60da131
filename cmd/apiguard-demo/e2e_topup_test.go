package main

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"
)

func seedHash(parts ...string) string {
	d := sha256.Sum256([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(d[:])
}

func reseller(code int, msg string) string {
	return `{"status":"error","message":"` + msg + `","code":` + strconv.Itoa(code) + `}`
}

func TestTopupProduct(t *testing.T) {
	d := startDemo(t, config{})
	url := d.base + "/topup/product"
	gold := []string{"Authorization", "Bearer " + topupKeyGold}

	r := d.call(t, "GET", url, "", gold...)
	r.want(t, 200, `{"status":"success","message":"Berhasil mendapatkan list product","code":200,"data":[
		{"kode":"1","kategori":"Mobile Games","produk":"Mobile Legends Diamonds","harga":14500,"catatan":"Minimal pembelian 100 diamonds","status":"Aktif"},
		{"kode":"2","kategori":"Mobile Games","produk":"Free Fire 100 Diamonds","harga":15500,"catatan":"","status":"Aktif"},
		{"kode":"3","kategori":"Mobile Games","produk":"PUBG UC 60","harga":11500,"catatan":"","status":"NonAktif"}]}`)
	// Prices for the key's role: the regular key from its registered IP.
	r = d.call(t, "GET", url, "", "Authorization", "Bearer "+topupKeyIPBound, "X-Forwarded-For", "203.0.113.7")
	if r.status != 200 || r.field(t, "data") == nil || r.body == "" || !strings.Contains(r.body, `"harga":15000`) {
		t.Errorf("regular prices: %d %s", r.status, r.body)
	}

	for name, tc := range map[string]struct {
		headers []string
		status  int
		msg     string
	}{
		"no key":                       {nil, 401, "Unauthorized"},
		"unknown key":                  {[]string{"Authorization", "Bearer topup_nope"}, 401, "Invalid API key"},
		"not whitelisted":              {append([]string{"X-Forwarded-For", "198.51.100.9"}, gold...), 403, "IP belum di whitelist"},
		"not whitelisted (IPv6)":       {append([]string{"X-Forwarded-For", "2001:db9::1"}, gold...), 403, "IP belum di whitelist"},
		"not the key's registered IP":  {[]string{"Authorization", "Bearer " + topupKeyIPBound, "X-Forwarded-For", "203.0.113.8"}, 403, "IP address not authorized"},
		"registered IP, loopback peer": {[]string{"Authorization", "Bearer " + topupKeyIPBound}, 403, "IP address not authorized"},
		"forged leftmost entry":        {[]string{"Authorization", "Bearer " + topupKeyIPBound, "X-Forwarded-For", "203.0.113.7, 198.51.100.9"}, 403, "IP belum di whitelist"},
	} {
		t.Run(name, func(t *testing.T) {
			d.call(t, "GET", url, "", tc.headers...).want(t, tc.status, reseller(tc.status, tc.msg))
		})
	}
	// Whitelisted IPv6 client through the loopback proxy.
	if r := d.call(t, "GET", url, "", append([]string{"X-Forwarded-For", "2001:db8::5"}, gold...)...); r.status != 200 {
		t.Errorf("IPv6 client: %d %s", r.status, r.body)
	}
}

func TestTopupProductRateLimit(t *testing.T) {
	clock := newFakeClock()
	d := startDemo(t, config{now: clock.Now})
	url := d.base + "/topup/product"
	from := func(ip string) []string {
		return []string{"Authorization", "Bearer " + topupKeyGold, "X-Forwarded-For", ip}
	}
	for i := 0; i < 20; i++ {
		if r := d.call(t, "GET", url, "", from("203.0.113.50")...); r.status != 200 {
			t.Fatalf("request %d: %d", i+1, r.status)
		}
	}
	r := d.call(t, "GET", url, "", from("203.0.113.50")...)
	r.want(t, 429, reseller(429, "Too many requests. Please try again later."))
	if r.header.Get("Retry-After") == "" || r.header.Get("RateLimit-Limit") != "20" {
		t.Errorf("headers: %v", r.header)
	}
	// Per IP: another address still has its 20.
	if r := d.call(t, "GET", url, "", from("203.0.113.51")...); r.status != 200 {
		t.Errorf("another IP: %d", r.status)
	}
	clock.Advance(time.Minute)
	if r := d.call(t, "GET", url, "", from("203.0.113.50")...); r.status != 200 {
		t.Errorf("a minute later: %d", r.status)
	}
}

func TestTopupStatus(t *testing.T) {
	clock := newFakeClock()
	d := startDemo(t, config{now: clock.Now})
	url := d.base + "/topup/status"
	body := `{"trx_id":"TRX_123456789"}`
	bearer := func(h string) []string {
		return []string{"Authorization", "Bearer " + h, "Content-Type", "application/json"}
	}
	good := seedHash(topupKeyGold, "TRX_123456789")

	seedBody := `{"status":"success","message":"Berhasil mendapatkan status transaksi","code":200,"data":{"order_id":"TRX_123456789",
		"user_id":"123","produk":"Mobile Legends Diamonds","harga":15000,"status":"Success","keterangan":"Pembelian berhasil","zone":"1234","nickname":"Player123"}}`
	d.call(t, "POST", url, body, bearer(good)...).want(t, 200, seedBody)
	d.call(t, "POST", url, body, bearer(strings.ToUpper(good))...).want(t, 200, seedBody)

	for name, tc := range map[string]struct {
		body    string
		headers []string
		status  int
		msg     string
	}{
		"no trx_id":               {`{}`, bearer(good), 400, "Transaction ID is required"},
		"empty trx_id":            {`{"trx_id":""}`, bearer(good), 400, "Transaction ID is required"},
		"unknown trx":             {`{"trx_id":"TRX_404"}`, bearer(seedHash(topupKeyGold, "TRX_404")), 404, "Transaction not found"},
		"no authorization":        {body, []string{"Content-Type", "application/json"}, 401, "Unauthorized"},
		"wrong hash":              {body, bearer(seedHash(topupKeyGold, "TRX_OTHER")), 401, "Invalid hash combination"},
		"another user's key":      {body, bearer(seedHash(topupKeyIPBound, "TRX_123456789")), 401, "Invalid hash combination"},
		"not hex":                 {body, bearer("zz"), 401, "Invalid hash combination"},
		"not whitelisted":         {body, append(bearer(good), "X-Forwarded-For", "198.51.100.9"), 403, "IP belum di whitelist"},
		"two authorization lines": {body, append(bearer(good), "Authorization", "Bearer "+good), 401, "Unauthorized"},
	} {
		t.Run(name, func(t *testing.T) {
			d.call(t, "POST", url, tc.body, tc.headers...).want(t, tc.status, reseller(tc.status, tc.msg))
		})
	}

	// 30 per minute per user; the two above took 2.
	for i := 2; i < 30; i++ {
		if r := d.call(t, "POST", url, body, bearer(good)...); r.status != 200 {
			t.Fatalf("request %d: %d %s", i+1, r.status, r.body)
		}
	}
	r := d.call(t, "POST", url, body, bearer(good)...)
	r.want(t, 429, reseller(429, "Too many requests"))
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
}

// order is a signed order request.
type order struct {
	key, ref, product, price, reqTime string
	body                              string
}

func (o order) send(t *testing.T, d *demo, extra ...string) response {
	t.Helper()
	body := o.body
	if body == "" {
		body = `{"user_id":"123456","zone":"1234","produk_id":"` + o.product + `","ref_id":"` + o.ref + `"}`
	}
	h := []string{"Content-Type", "application/json"}
	if o.key != "" {
		h = append(h, "X-API-Key", o.key, "Authorization", "Bearer "+seedHash(o.key, o.ref, o.price))
	}
	if o.reqTime != "" {
		h = append(h, "X-Request-Time", o.reqTime)
	}
	return d.call(t, "POST", d.base+"/topup/order", body, append(h, extra...)...)
}

func TestTopupOrder(t *testing.T) {
	clock := newFakeClock()
	d := startDemo(t, config{now: clock.Now})
	now := func() string { return strconv.FormatInt(clock.Now().Unix(), 10) }
	gold := func(ref string) order {
		return order{key: topupKeyGold, ref: ref, product: "1", price: "14500", reqTime: now()}
	}

	r := gold("REF_1").send(t, d)
	if r.status != 200 || r.field(t, "status") != "success" || r.field(t, "message") != "Order created successfully" ||
		r.field(t, "data.status") != "Pending" || r.field(t, "data.harga") != 14500.0 || r.field(t, "data.produk") != "Mobile Legends Diamonds" ||
		r.field(t, "data.user_id") != "123456" || r.field(t, "data.zone") != "1234" || !strings.HasPrefix(r.field(t, "data.order_id").(string), "INV-") {
		t.Fatalf("order: %d %s", r.status, r.body)
	}
	// The new order's status, for its owner.
	id := r.field(t, "data.order_id").(string)
	st := d.call(t, "POST", d.base+"/topup/status", `{"trx_id":"`+id+`"}`, "Authorization", "Bearer "+seedHash(topupKeyGold, id))
	if st.status != 200 || st.field(t, "data.status") != "Pending" {
		t.Errorf("status of the new order: %d %s", st.status, st.body)
	}
	// Milliseconds and RFC 3339 are accepted too.
	ms := gold("REF_MS")
	ms.reqTime = strconv.FormatInt(clock.Now().UnixMilli(), 10)
	if r := ms.send(t, d); r.status != 200 {
		t.Errorf("milliseconds: %d %s", r.status, r.body)
	}
	rfc := gold("REF_RFC")
	rfc.reqTime = clock.Now().UTC().Format(time.RFC3339)
	if r := rfc.send(t, d); r.status != 200 {
		t.Errorf("RFC 3339: %d %s", r.status, r.body)
	}

	old := gold("REF_OLD")
	old.reqTime = strconv.FormatInt(clock.Now().Add(-5*time.Minute-time.Second).Unix(), 10)
	future := gold("REF_FUTURE")
	future.reqTime = strconv.FormatInt(clock.Now().Add(5*time.Minute+time.Second).Unix(), 10)
	garbled := gold("REF_GARBLED")
	garbled.reqTime = "yesterday"
	regular := order{key: topupKeyIPBound, ref: "REF_R", product: "1", price: "15000", reqTime: now()}
	wrongPrice := gold("REF_PRICE")
	wrongPrice.price = "15000" // the regular price, not the gold one
	broke := order{key: topupKeyIPBound, ref: "REF_BROKE", product: "2", price: "16000", reqTime: now()}
	for name, tc := range map[string]struct {
		o      order
		extra  []string
		status int
		msg    string
	}{
		"no headers":                {order{ref: "X", product: "1"}, nil, 401, "Unauthorized: Missing required headers"},
		"no X-Request-Time":         {order{key: topupKeyGold, ref: "X", product: "1", price: "14500"}, nil, 401, "Unauthorized: Missing required headers"},
		"no X-API-Key":              {order{ref: "X", product: "1", reqTime: now()}, []string{"Authorization", "Bearer " + seedHash(topupKeyGold, "X", "14500")}, 401, "Unauthorized: Missing required headers"},
		"expired":                   {old, nil, 400, "Request expired"},
		"from the future":           {future, nil, 400, "Request expired"},
		"bad time format":           {garbled, nil, 400, "Invalid X-Request-Time format"},
		"unknown key":               {order{key: "topup_nope", ref: "X", product: "1", price: "14500", reqTime: now()}, nil, 401, "Invalid API key"},
		"not whitelisted":           {gold("X"), []string{"X-Forwarded-For", "198.51.100.9"}, 403, "IP belum di whitelist"},
		"not the registered IP":     {regular, []string{"X-Forwarded-For", "203.0.113.99"}, 403, "IP address not authorized"},
		"product not found":         {order{key: topupKeyGold, ref: "X", product: "99", price: "0", reqTime: now()}, nil, 404, "Product not found"},
		"product not available":     {order{key: topupKeyGold, ref: "X", product: "3", price: "11500", reqTime: now()}, nil, 400, "Product is not available"},
		"hash over the wrong price": {wrongPrice, nil, 401, "Invalid hash combination"},
		"insufficient balance":      {broke, []string{"X-Forwarded-For", "203.0.113.7"}, 400, "Saldo tidak cukup"},
	} {
		t.Run(name, func(t *testing.T) {
			tc.o.send(t, d, tc.extra...).want(t, tc.status, reseller(tc.status, tc.msg))
		})
	}
	// A reused ref_id is 409 and creates nothing: the balance is unchanged.
	gold("REF_1").send(t, d).want(t, 409, reseller(409, "ref_id already used"))
	// The regular key, from its registered IP, is authenticated but its
	// balance (10,000) covers no active product.
	regular.send(t, d, "X-Forwarded-For", "203.0.113.7").want(t, 400, reseller(400, "Saldo tidak cukup"))
}

// TestTopupOrderLimits: 30 orders per minute per user, 100 per minute per IP.
func TestTopupOrderLimits(t *testing.T) {
	clock := newFakeClock()
	d := startDemo(t, config{now: clock.Now})
	ts := strconv.FormatInt(clock.Now().Unix(), 10)
	n := 0
	send := func(ip string) response {
		n++
		o := order{key: topupKeyGold, ref: "L" + strconv.Itoa(n), product: "1", price: "14500", reqTime: ts}
		return o.send(t, d, "X-Forwarded-For", ip)
	}
	for i := 0; i < 30; i++ {
		if r := send("203.0.113.60"); r.status != 200 {
			t.Fatalf("order %d: %d %s", i+1, r.status, r.body)
		}
	}
	send("203.0.113.61").want(t, 429, reseller(429, "Too many requests")) // per user, whatever the IP

	// Per IP: 100, whoever sends. Unsigned requests count against the IP
	// (the limit runs before authentication) and are refused as such.
	clock.Advance(time.Minute)
	for i := 0; i < 100; i++ {
		r := d.call(t, "POST", d.base+"/topup/order", `{}`, "X-Forwarded-For", "203.0.113.70")
		if r.status != 401 {
			t.Fatalf("unsigned %d: %d", i+1, r.status)
		}
	}
	r := d.call(t, "POST", d.base+"/topup/order", `{}`, "X-Forwarded-For", "203.0.113.70")
	r.want(t, 429, reseller(429, "Too many requests"))
}
