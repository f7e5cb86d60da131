package main

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apiguard/apiguard/client"
)

// The demo's credentials (DEMO.md).
const (
	mockPayKeyA    = "sandbox_sk_test_demo_clientA_full"
	mockPayKeyB    = "sandbox_sk_test_demo_clientB_read"
	mockPayKeyLive = "live_sk_demo_clientA"

	topupKeyGold    = "topup_demo_key_gold"
	topupKeyIPBound = "topup_demo_key_ipbound"
	topupIPBound    = "203.0.113.7" // the ipbound key's registered IP
	topupTrx        = "TRX_123456789"
	topupGoldPrice1 = 14500 // product 1 for gold
	topupGoldFunds  = 1_000_000

	midtransServerKey = "SB-Mid-server-demo123456"
	midtransClientKey = "SB-Mid-client-demo123456"

	clientAppKey   = "demo-app-key"
	clientUser     = "demo"
	clientPassword = "demo-password"

	pay88Key      = "sk_test_a1b2c3d4e5f6g7h8"
	pay88LiveKey  = "sk_live_demo00000000"
	pay88Merchant = "MCH-COL-29ZTP4"
)

// kind is a unit of the mix: one request, or a short flow of them (a
// login and the calls made with its tokens), each recorded under an op.
type kind struct {
	name   string
	weight int
	// budget, if not nil, bounds how often the kind runs (cost tokens a
	// run): what keeps the mix under the demo's limits.
	budget *bucket
	cost   float64
	// quota, if not nil, bounds how many times it runs in all: what keeps
	// the state the run leaves in the demo (and the reseller balance it
	// spends) bounded.
	quota *quota
	run   func(g *gen)
}

// ready reports whether the kind may run now, and takes its share of
// budget and quota if so.
func (k *kind) ready() bool {
	if k.quota != nil && k.quota.left.Load() <= 0 {
		return false
	}
	if k.budget != nil && !k.budget.take(k.cost) {
		return false
	}
	return k.quota == nil || k.quota.take()
}

// gen is the load generator: the demo's addresses, its HTTP clients, the
// ops it records, and the state its flows share.
type gen struct {
	plain   string // http://host:port
	secure  string // https://host:port, or the plain base when 88Pay goes through X-Forwarded-Proto
	viaXFP  bool   // 88Pay requests go to the plain listener with X-Forwarded-Proto: https
	hc      *http.Client
	pay88   *client.Session
	pay88HC *http.Client
	timeout time.Duration

	rec        *recorder
	global     *bucket
	stop       chan struct{}
	kinds      []*kind
	weight     int
	free       []*kind // the kinds with neither budget nor quota
	freeWeight int

	runID    string
	seq      atomic.Uint64
	payments *ring // MockPay orders made by client A
	refs     *ring // reseller ref_ids ordered by the gold user
	// What the run left in the demo's own stores (not apiguard's, which
	// /metrics counts): MockPay payments and reseller orders.
	madePayments, madeOrders atomic.Int64

	topupIPs, clientIPs, hostileIPs *pool
	ops                             map[string]*op
}

// id returns an id unique to the run.
func (g *gen) id(prefix string) string {
	return prefix + g.runID + "-" + strconv.FormatUint(g.seq.Add(1), 10)
}

// newRunID returns 8 random hex digits, so that runs against one demo do
// not collide.
func newRunID() string {
	var b [4]byte
	crand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// req builds a request; headers alternate name, value.
func req(method, url, body string, headers ...string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequest(method, url, rd)
	if err != nil {
		panic(err) // the generator's own URLs
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

// errStopped is returned by do once the run is over.
var errStopped = errors.New("soak: stopped")

// do sends r through hc (g.hc if nil) within the global rate, reads the
// answer whole (at most 1 MiB kept) and records it under o. It returns the
// status and the body; a transport error is recorded as status 0.
func (g *gen) do(o *op, r *http.Request, hc *http.Client) (int, []byte, error) {
	if !g.global.wait(g.stop) {
		return 0, nil, errStopped
	}
	if hc == nil {
		hc = g.hc
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	start := time.Now()
	resp, err := hc.Do(r.WithContext(ctx))
	if err != nil {
		o.record(0, time.Since(start), err.Error())
		return 0, nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		o.record(0, d, err.Error())
		return 0, nil, err
	}
	detail := string(body)
	if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
		// Every 429 of the demo carries Retry-After (DEMO.md): one
		// without is recorded as no answer.
		o.record(0, d, "429 without Retry-After: "+detail)
		return 0, body, nil
	}
	o.record(resp.StatusCode, d, detail)
	return resp.StatusCode, body, nil
}

// sign signs r with s, which must not fail on the generator's requests.
func sign(s client.Signer, r *http.Request) *http.Request {
	if err := s.Sign(r); err != nil {
		panic(err)
	}
	return r
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// pay88URL returns the URL of an 88Pay path on the listener 88Pay needs.
func (g *gen) pay88URL(path string) string { return g.secure + "/88pay" + path }

// pay88Headers returns the headers that make a request HTTPS to the demo
// when it goes through the plain listener.
func (g *gen) pay88Headers(h ...string) []string {
	if g.viaXFP {
		h = append(h, "X-Forwarded-Proto", "https")
	}
	return h
}

// recordingTransport records every request it carries, under the op its
// path names, when its body is closed: what the 88Pay Session sends on its
// own (token requests, retries) is counted as what the demo answered.
type recordingTransport struct {
	g    *gen
	base http.RoundTripper
}

func (t *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	o := t.g.ops["pay88.charge"]
	if strings.HasSuffix(r.URL.Path, "/api/auth/token") {
		o = t.g.ops["pay88.token.session"]
	}
	if t.g.viaXFP {
		r = r.Clone(r.Context())
		r.Header.Set("X-Forwarded-Proto", "https")
	}
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		o.record(0, time.Since(start), err.Error())
		return nil, err
	}
	resp.Body = &recordedBody{ReadCloser: resp.Body, o: o, status: resp.StatusCode, start: start}
	return resp, nil
}

func (t *recordingTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

type recordedBody struct {
	io.ReadCloser
	o      *op
	status int
	start  time.Time
	done   atomic.Bool
}

func (b *recordedBody) Close() error {
	if b.done.CompareAndSwap(false, true) {
		b.o.record(b.status, time.Since(b.start), "")
	}
	return b.ReadCloser.Close()
}

// declareOps declares every op of the mix with the statuses the demo's
// contract (DEMO.md and the seeds) gives it.
func (g *gen) declareOps() {
	r := g.rec
	for _, d := range []struct {
		name   string
		expect []int
	}{
		// The baseline: the demo's unguarded route.
		{"baseline.healthz", []int{200}},
		// MockPay: no limits.
		{"mockpay.create", []int{200}},
		{"mockpay.get", []int{200}},
		{"mockpay.get.other-client", []int{404}},
		{"mockpay.create.duplicate", []int{409}},
		{"mockpay.create.no-key", []int{401}},
		{"mockpay.create.unknown-key", []int{401}},
		{"mockpay.create.live-key", []int{401}},
		{"mockpay.create.no-scope", []int{403}},
		{"mockpay.create.malformed-auth", []int{401}},
		{"mockpay.create.two-auth", []int{401}},
		{"mockpay.create.bad-json", []int{400}},
		{"mockpay.create.oversize-header", []int{431}},
		// Reseller: budgets under its per-IP and per-user limits.
		{"topup.product", []int{200}},
		{"topup.product.wrong-key", []int{401}},
		{"topup.product.not-whitelisted", []int{403}},
		{"topup.product.ipbound-wrong-ip", []int{403}},
		{"topup.status", []int{200}},
		{"topup.status.bad-hash", []int{401}},
		{"topup.status.no-auth", []int{401}},
		{"topup.status.unknown-trx", []int{404}},
		{"topup.status.missing-trx", []int{400}},
		{"topup.status.oversize-body", []int{413}},
		{"topup.order", []int{200}},
		{"topup.order.replayed-ref", []int{409}},
		{"topup.order.no-balance", []int{400}},
		{"topup.order.expired-time", []int{400}},
		{"topup.order.bad-hash", []int{401}},
		{"topup.order.no-time", []int{401}},
		{"topup.order.unknown-product", []int{404}},
		// Midtrans: no limits.
		{"midtrans.snap", []int{201}},
		{"midtrans.snap.client-key", []int{401}},
		{"midtrans.snap.malformed-basic", []int{401}},
		{"midtrans.snap.not-json", []int{415}},
		{"midtrans.snap.not-acceptable", []int{406}},
		{"midtrans.token", []int{200}},
		{"midtrans.token.server-key", []int{401}},
		// Client system: budgets under 120 a minute per IP and the store
		// of request ids.
		{"client.login", []int{200}},
		{"client.me", []int{200}},
		{"client.access-token", []int{200}},
		{"client.refresh-token", []int{200}},
		{"client.login.bad-password", []int{401}},
		{"client.login.wrong-app-key", []int{401}},
		{"client.login.no-request-id", []int{400}},
		{"client.login.replayed-request-id", []int{409}},
		{"client.me.wrong-kind", []int{401}},
		{"client.access-token.reused-refresh", []int{401}},
		// 88Pay: the Session's tokens and charges, and refusals. Failed
		// credentials may meet a failed-attempt limit (issue 17, item 4).
		{"pay88.token.session", []int{200}},
		{"pay88.charge", []int{200}},
		{"pay88.token", []int{200}},
		{"pay88.token.wrong-key", []int{401, 429}},
		{"pay88.token.live-key", []int{401, 429}},
		{"pay88.token.plain-http", []int{403}},
		{"pay88.charge.no-session-id", []int{400}},
		{"pay88.charge.forged-token", []int{401}},
		{"pay88.charge.other-session", []int{401}},
	} {
		r.op(d.name, d.expect...)
	}
	g.ops = r.byName
}

// declareKinds builds the mix. Weights are relative (valid requests 4 to
// 16, each hostile kind 1, so that most answers are 2xx); budgets are per
// minute and sized under the demo's limits with room to spare (DEMO.md):
//
//   - /topup/product: 20 a minute per IP, spread over 64 whitelisted
//     addresses (X-Forwarded-For from loopback, which the demo trusts):
//     600 a minute in all, about 9 per address;
//   - /topup/status: 30 a minute per user, and only the gold user owns a
//     transaction: 20 a minute;
//   - /topup/order: 100 a minute per IP (64 addresses) and 30 per user:
//     the gold user's orders and replays 20 a minute, and at most 60 orders
//     in a run (its balance pays for 68); the ipbound user (one address)
//     10 a minute; refused orders 300 a minute, about 5 per address;
//   - /client: 120 a minute per IP (64 addresses), and every request id is
//     held 10 minutes in a store of which one app may fill an eighth
//     (12,500): logins 60 a minute (a user keeps 16 sessions), each with
//     up to 3 calls; refresh-token reuse, which revokes a session and holds
//     its place a minute, 3 a minute; refused calls 240 a minute. So at most
//     about 490 requests a minute (8 per address) and 4,900 ids held;
//   - /88pay token: 10 a minute and 100 an hour per merchant: explicit
//     token requests 1 a minute, besides the Session's own (one per token
//     lifetime less 10 s); failed credentials 30 a minute over 64
//     addresses.
//
// MockPay and Midtrans have no limits; new MockPay orders are bounded at
// 10,000 a run (the demo keeps 100,000).
func (g *gen) declareKinds() {
	productBudget := perMinute(600)
	statusBudget := perMinute(20)
	orderGold := perMinute(20)
	orderHostile := perMinute(300)
	orderIPBound := perMinute(10)
	clientRefused := perMinute(240)
	logins := perMinute(60)
	reuse := perMinute(3)
	pay88Tokens := perMinute(1)
	pay88Failed := perMinute(30)

	o := g.ops
	add := func(k *kind) {
		if k.cost == 0 {
			k.cost = 1
		}
		g.kinds = append(g.kinds, k)
		g.weight += k.weight
	}
	// The baseline: a round trip to the demo without apiguard, against
	// which the report sets the medians of the guarded routes.
	add(&kind{name: "baseline.healthz", weight: 4, run: func(g *gen) {
		g.do(o["baseline.healthz"], req("GET", g.plain+"/healthz", ""), nil)
	}})

	// MockPay.
	bearerA := must(client.Bearer(mockPayKeyA))
	bearerB := must(client.Bearer(mockPayKeyB))
	create := func(auth client.Signer, orderID string, headers ...string) *http.Request {
		r := req("POST", g.plain+"/mockpay/api/v1/payment/create",
			`{"order_id":"`+orderID+`","amount":100000}`, append([]string{"Content-Type", "application/json"}, headers...)...)
		if auth != nil {
			sign(auth, r)
		}
		return r
	}
	add(&kind{name: "mockpay.create", weight: 16, quota: newQuota(10_000), run: func(g *gen) {
		id := g.id("SOAK-")
		if s, _, _ := g.do(o["mockpay.create"], create(bearerA, id), nil); s == 200 {
			g.payments.put(id)
			g.madePayments.Add(1)
		}
	}})
	add(&kind{name: "mockpay.get", weight: 16, run: func(g *gen) {
		if id, ok := g.payments.pick(rand.Uint64()); ok {
			g.do(o["mockpay.get"], sign(bearerA, req("GET", g.plain+"/mockpay/api/v1/payment/"+id, "")), nil)
		}
	}})
	add(&kind{name: "mockpay.get.other-client", weight: 1, run: func(g *gen) {
		if id, ok := g.payments.pick(rand.Uint64()); ok {
			g.do(o["mockpay.get.other-client"], sign(bearerB, req("GET", g.plain+"/mockpay/api/v1/payment/"+id, "")), nil)
		}
	}})
	add(&kind{name: "mockpay.create.duplicate", weight: 1, run: func(g *gen) {
		if id, ok := g.payments.pick(rand.Uint64()); ok {
			g.do(o["mockpay.create.duplicate"], create(bearerA, id), nil)
		}
	}})
	hostile := func(name string, mk func() *http.Request) {
		add(&kind{name: name, weight: 1, run: func(g *gen) { g.do(o[name], mk(), nil) }})
	}
	hostile("mockpay.create.no-key", func() *http.Request { return create(nil, g.id("SOAK-")) })
	hostile("mockpay.create.unknown-key", func() *http.Request {
		return create(nil, g.id("SOAK-"), "Authorization", "Bearer sandbox_sk_test_"+g.id("guess"))
	})
	hostile("mockpay.create.live-key", func() *http.Request { return create(must(client.Bearer(mockPayKeyLive)), g.id("SOAK-")) })
	hostile("mockpay.create.no-scope", func() *http.Request { return create(bearerB, g.id("SOAK-")) })
	// (Two spaces after "Bearer" are no mistake: RFC 9110 allows one or
	// more.)
	malformed := []string{"Bearer", "Bearer ", "Bearer\t" + mockPayKeyA, "Basic " + mockPayKeyA, "Bearer " + mockPayKeyA + " x", mockPayKeyA, "Bearer " + strings.Repeat("k", 2000)}
	hostile("mockpay.create.malformed-auth", func() *http.Request {
		return create(nil, g.id("SOAK-"), "Authorization", malformed[rand.IntN(len(malformed))])
	})
	hostile("mockpay.create.two-auth", func() *http.Request {
		return create(nil, g.id("SOAK-"), "Authorization", "Bearer "+mockPayKeyA, "Authorization", "Bearer "+mockPayKeyB)
	})
	hostile("mockpay.create.bad-json", func() *http.Request {
		return sign(bearerA, req("POST", g.plain+"/mockpay/api/v1/payment/create", `{"order_id":`, "Content-Type", "application/json"))
	})
	pad := strings.Repeat("p", 100<<10) // over the demo's 64 KiB of headers
	hostile("mockpay.create.oversize-header", func() *http.Request { return create(bearerA, g.id("SOAK-"), "X-Pad", pad) })

	// Reseller.
	product := func(key, ip string) *http.Request {
		return req("GET", g.plain+"/topup/product", "", "Authorization", "Bearer "+key, "X-Forwarded-For", ip)
	}
	add(&kind{name: "topup.product", weight: 8, budget: productBudget, run: func(g *gen) {
		g.do(o["topup.product"], product(topupKeyGold, g.topupIPs.next()), nil)
	}})
	add(&kind{name: "topup.product.wrong-key", weight: 1, budget: productBudget, run: func(g *gen) {
		g.do(o["topup.product.wrong-key"], product("topup_"+g.id("guess"), g.topupIPs.next()), nil)
	}})
	hostile("topup.product.not-whitelisted", func() *http.Request { return product(topupKeyGold, g.hostileIPs.next()) })
	add(&kind{name: "topup.product.ipbound-wrong-ip", weight: 1, budget: productBudget, run: func(g *gen) {
		g.do(o["topup.product.ipbound-wrong-ip"], product(topupKeyIPBound, g.topupIPs.next()), nil)
	}})

	statusGold := must(client.StatusHash(topupKeyGold))
	statusWrong := must(client.StatusHash("topup_demo_key_wrong"))
	status := func(s client.Signer, body string) *http.Request {
		r := req("POST", g.plain+"/topup/status", body, "Content-Type", "application/json")
		if s != nil {
			sign(s, r)
		}
		return r
	}
	add(&kind{name: "topup.status", weight: 4, budget: statusBudget, run: func(g *gen) {
		g.do(o["topup.status"], status(statusGold, `{"trx_id":"`+topupTrx+`"}`), nil)
	}})
	hostile("topup.status.bad-hash", func() *http.Request { return status(statusWrong, `{"trx_id":"`+topupTrx+`"}`) })
	hostile("topup.status.no-auth", func() *http.Request { return status(nil, `{"trx_id":"`+topupTrx+`"}`) })
	hostile("topup.status.unknown-trx", func() *http.Request { return status(statusGold, `{"trx_id":"`+g.id("TRX_")+`"}`) })
	hostile("topup.status.missing-trx", func() *http.Request { return status(statusGold, `{"trx_id":""}`) })
	big := `{"trx_id":"` + topupTrx + `","pad":"` + strings.Repeat("x", 2<<20) + `"}`
	hostile("topup.status.oversize-body", func() *http.Request {
		return req("POST", g.plain+"/topup/status", big, "Content-Type", "application/json", "Authorization", "Bearer "+strings.Repeat("0", 64))
	})

	orderGoldS := must(client.OrderHash(topupKeyGold))
	orderIPBoundS := must(client.OrderHash(topupKeyIPBound))
	orderExpired := must(client.OrderHash(topupKeyGold, client.WithClock(func() time.Time { return time.Now().Add(-10 * time.Minute) })))
	order := func(s client.Signer, price int64, produk, ref, ip string, headers ...string) *http.Request {
		r := req("POST", g.plain+"/topup/order", `{"user_id":"12345678","zone":"1234","produk_id":"`+produk+`","ref_id":"`+ref+`"}`,
			append([]string{"Content-Type", "application/json", "X-Forwarded-For", ip}, headers...)...)
		r = r.WithContext(client.WithPrice(r.Context(), price))
		if s != nil {
			sign(s, r)
		}
		return r
	}
	add(&kind{name: "topup.order", weight: 4, budget: orderGold, quota: newQuota((topupGoldFunds / topupGoldPrice1) - 8), run: func(g *gen) {
		ref := g.id("REF-")
		if s, _, _ := g.do(o["topup.order"], order(orderGoldS, topupGoldPrice1, "1", ref, g.topupIPs.next()), nil); s == 200 {
			g.refs.put(ref)
			g.madeOrders.Add(1)
		}
	}})
	add(&kind{name: "topup.order.replayed-ref", weight: 1, budget: orderGold, run: func(g *gen) {
		if ref, ok := g.refs.pick(rand.Uint64()); ok {
			g.do(o["topup.order.replayed-ref"], order(orderGoldS, topupGoldPrice1, "1", ref, g.topupIPs.next()), nil)
		}
	}})
	add(&kind{name: "topup.order.no-balance", weight: 1, budget: orderIPBound, run: func(g *gen) {
		g.do(o["topup.order.no-balance"], order(orderIPBoundS, 15000, "1", g.id("REF-"), topupIPBound), nil)
	}})
	hostileOrder := func(name string, mk func() *http.Request) {
		add(&kind{name: name, weight: 1, budget: orderHostile, run: func(g *gen) { g.do(o[name], mk(), nil) }})
	}
	hostileOrder("topup.order.expired-time", func() *http.Request {
		return order(orderExpired, topupGoldPrice1, "1", g.id("REF-"), g.topupIPs.next())
	})
	hostileOrder("topup.order.bad-hash", func() *http.Request {
		return order(orderGoldS, topupGoldPrice1+1, "1", g.id("REF-"), g.topupIPs.next())
	})
	hostileOrder("topup.order.no-time", func() *http.Request {
		r := order(orderGoldS, topupGoldPrice1, "1", g.id("REF-"), g.topupIPs.next())
		r.Header.Del("X-Request-Time")
		return r
	})
	hostileOrder("topup.order.unknown-product", func() *http.Request {
		return order(orderGoldS, topupGoldPrice1, "99", g.id("REF-"), g.topupIPs.next())
	})

	// Midtrans.
	basic := must(client.Basic(midtransServerKey))
	basicClient := must(client.Basic(midtransClientKey))
	snap := func(s client.Signer, headers ...string) *http.Request {
		body := `{"transaction_details":{"order_id":"` + g.id("ORDER-") + `","gross_amount":10000}}`
		r := req("POST", g.plain+"/midtrans/snap/v1/transactions", body, headers...)
		if s != nil {
			sign(s, r)
		}
		return r
	}
	jsonHeaders := []string{"Content-Type", "application/json", "Accept", "application/json"}
	add(&kind{name: "midtrans.snap", weight: 12, run: func(g *gen) { g.do(o["midtrans.snap"], snap(basic, jsonHeaders...), nil) }})
	hostile("midtrans.snap.client-key", func() *http.Request { return snap(basicClient, jsonHeaders...) })
	hostile("midtrans.snap.malformed-basic", func() *http.Request {
		bad := []string{"Basic !!!", "Basic " + base64.StdEncoding.EncodeToString([]byte(midtransServerKey)), "Basic", "Bearer " + midtransServerKey}
		return snap(nil, append([]string{"Authorization", bad[rand.IntN(len(bad))]}, jsonHeaders...)...)
	})
	hostile("midtrans.snap.not-json", func() *http.Request {
		return snap(basic, "Content-Type", "text/plain", "Accept", "application/json")
	})
	hostile("midtrans.snap.not-acceptable", func() *http.Request {
		return snap(basic, "Content-Type", "application/json", "Accept", "text/html")
	})
	card := func(key string) *http.Request {
		q := url.Values{"client_key": {key}, "card_number": {"4811111111111114"}, "card_exp_month": {"12"}, "card_exp_year": {"2030"}, "card_cvv": {"123"}}
		return req("GET", g.plain+"/midtrans/v2/token?"+q.Encode(), "")
	}
	add(&kind{name: "midtrans.token", weight: 12, run: func(g *gen) { g.do(o["midtrans.token"], card(midtransClientKey), nil) }})
	hostile("midtrans.token.server-key", func() *http.Request { return card(midtransServerKey) })

	// Client system.
	call := func(method, path, body, ip string, headers ...string) *http.Request {
		h := append([]string{"x-app-key", clientAppKey, "x-request-id", g.id("req-"), "X-Forwarded-For", ip, "Content-Type", "application/json"}, headers...)
		if rand.IntN(2) == 0 {
			h = append(h, "x-language", "en")
		}
		return req(method, g.plain+"/client"+path, body, h...)
	}
	creds := `{"username":"` + clientUser + `","password":"` + clientPassword + `"}`
	login := func(g *gen, ip string) (tokens, bool) {
		s, body, _ := g.do(o["client.login"], call("POST", "/auth/login", creds, ip), nil)
		var t tokens
		return t, s == 200 && json2(body, &t)
	}
	add(&kind{name: "client.session-flow", weight: 8, budget: logins, run: func(g *gen) {
		ip := g.clientIPs.next()
		t, ok := login(g, ip)
		if !ok {
			return
		}
		g.do(o["client.me"], call("GET", "/me", "", ip, "Authorization", "Bearer "+t.AccessToken, "x-user-token", t.UserToken), nil)
		g.do(o["client.access-token"], call("POST", "/auth/access-token", "", ip, "Authorization", "Bearer "+t.RefreshToken), nil)
		g.do(o["client.refresh-token"], call("POST", "/auth/refresh-token", "", ip, "Authorization", "Bearer "+t.UserToken), nil)
	}})
	add(&kind{name: "client.access-token.reused-refresh", weight: 1, budget: reuse, run: func(g *gen) {
		ip := g.clientIPs.next()
		t, ok := login(g, ip)
		if !ok {
			return
		}
		g.do(o["client.access-token"], call("POST", "/auth/access-token", "", ip, "Authorization", "Bearer "+t.RefreshToken), nil)
		g.do(o["client.access-token.reused-refresh"], call("POST", "/auth/access-token", "", ip, "Authorization", "Bearer "+t.RefreshToken), nil)
	}})
	add(&kind{name: "client.me.wrong-kind", weight: 1, budget: logins, run: func(g *gen) {
		ip := g.clientIPs.next()
		if t, ok := login(g, ip); ok {
			g.do(o["client.me.wrong-kind"], call("GET", "/me", "", ip, "Authorization", "Bearer "+t.RefreshToken, "x-user-token", t.UserToken), nil)
		}
	}})
	clientHostile := func(name string, mk func(ip string) *http.Request) {
		add(&kind{name: name, weight: 1, budget: clientRefused, run: func(g *gen) { g.do(o[name], mk(g.clientIPs.next()), nil) }})
	}
	clientHostile("client.login.bad-password", func(ip string) *http.Request {
		return call("POST", "/auth/login", `{"username":"`+clientUser+`","password":"`+g.id("guess")+`"}`, ip)
	})
	clientHostile("client.login.wrong-app-key", func(ip string) *http.Request {
		r := call("POST", "/auth/login", creds, ip)
		r.Header.Set("x-app-key", g.id("app-"))
		return r
	})
	clientHostile("client.login.no-request-id", func(ip string) *http.Request {
		r := call("POST", "/auth/login", creds, ip)
		r.Header.Del("x-request-id")
		return r
	})
	add(&kind{name: "client.login.replayed-request-id", weight: 1, budget: clientRefused, cost: 2, run: func(g *gen) {
		// A first request with a fresh id (a bad password, so that no
		// session is made), then its replay.
		ip := g.clientIPs.next()
		r := call("POST", "/auth/login", `{"username":"`+clientUser+`","password":"x"}`, ip)
		id := r.Header.Get("x-request-id")
		if s, _, _ := g.do(o["client.login.bad-password"], r, nil); s != 401 {
			return
		}
		r = call("POST", "/auth/login", creds, ip)
		r.Header.Set("x-request-id", id)
		g.do(o["client.login.replayed-request-id"], r, nil)
	}})

	// 88Pay.
	charge := func(token, sid string) *http.Request {
		h := []string{"Content-Type", "application/json"}
		if token != "" {
			h = append(h, "Authorization", "Bearer "+token)
		}
		if sid != "" {
			h = append(h, "x-session-id", sid)
		}
		return req("POST", g.pay88URL("/api/transactions/charges"),
			`{"flow":"PAYIN","method_code":"QRIS","amount":10000,"currency":"IDR","country":"ID"}`, g.pay88Headers(h...)...)
	}
	add(&kind{name: "pay88.charge", weight: 12, run: func(g *gen) {
		// Through the Session, whose transport records both its token
		// requests and the charges.
		if !g.global.wait(g.stop) {
			return
		}
		r := req("POST", g.pay88URL("/api/transactions/charges"),
			`{"flow":"PAYIN","method_code":"QRIS","amount":10000,"currency":"IDR","country":"ID"}`, "Content-Type", "application/json")
		ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
		defer cancel()
		resp, err := g.pay88HC.Do(r.WithContext(ctx))
		if err != nil {
			var te *client.TokenError
			if !errors.As(err, &te) {
				o["pay88.charge"].record(0, 0, err.Error())
			}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}})
	tokenReq := func(key, merchant, base string, headers ...string) *http.Request {
		return req("POST", base+"/88pay/api/auth/token", "", append([]string{"x-api-key", key, "x-merchant-id", merchant}, headers...)...)
	}
	add(&kind{name: "pay88.token", weight: 1, budget: pay88Tokens, run: func(g *gen) {
		g.do(o["pay88.token"], tokenReq(pay88Key, pay88Merchant, g.secure, g.pay88Headers()...), nil)
	}})
	pay88Hostile := func(name string, mk func() *http.Request) {
		add(&kind{name: name, weight: 1, budget: pay88Failed, run: func(g *gen) { g.do(o[name], mk(), nil) }})
	}
	pay88Hostile("pay88.token.wrong-key", func() *http.Request {
		return tokenReq("sk_test_"+g.id("guess"), pay88Merchant, g.secure, g.pay88Headers("X-Forwarded-For", g.hostileIPs.next())...)
	})
	pay88Hostile("pay88.token.live-key", func() *http.Request {
		return tokenReq(pay88LiveKey, pay88Merchant, g.secure, g.pay88Headers("X-Forwarded-For", g.hostileIPs.next())...)
	})
	hostile("pay88.token.plain-http", func() *http.Request { return tokenReq(pay88Key, pay88Merchant, g.plain) })
	withToken := func(name string, mk func(t client.Token) *http.Request) {
		add(&kind{name: name, weight: 1, run: func(g *gen) {
			ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
			defer cancel()
			if t, err := g.pay88.Token(ctx); err == nil {
				g.do(o[name], mk(t), nil)
			}
		}})
	}
	withToken("pay88.charge.no-session-id", func(t client.Token) *http.Request { return charge(t.AccessToken, "") })
	withToken("pay88.charge.forged-token", func(t client.Token) *http.Request {
		return charge(forge(t.AccessToken), t.SessionID)
	})
	withToken("pay88.charge.other-session", func(t client.Token) *http.Request {
		return charge(t.AccessToken, "sess_"+uuid())
	})
}

// tokens is the client system's login answer.
type tokens struct {
	UserToken    string `json:"user_token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

func json2(body []byte, v any) bool { return json.Unmarshal(body, v) == nil }

// forge returns the token with one character of its signature changed.
func forge(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	if i < 0 || i+1 >= len(tok) {
		return tok + "x"
	}
	b := []byte(tok)
	if b[i+1] == 'A' {
		b[i+1] = 'B'
	} else {
		b[i+1] = 'A'
	}
	return string(b)
}

func uuid() string {
	var b [16]byte
	crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
