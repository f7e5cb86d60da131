// Command soak is a bounded load and soak run against the demo gateway
// (cmd/apiguard-demo) on loopback:
//
//	go run ./cmd/apiguard-demo/soak -duration 60s
//	go run ./cmd/apiguard-demo/soak -spawn ./apiguard-demo -- -token-ttl 5m
//
// It drives every API of the demo with a fixed number of workers (-workers)
// under a ceiling of requests a second (-rate) for -duration: valid
// requests of every scheme (MockPay's Bearer keys, the reseller's Bearer
// key and hash signatures with request time and ref_id, Midtrans' Basic
// and client key, the client system's login and token exchanges, 88Pay's
// token and session calls through client.Session), and hostile ones
// (wrong, unknown and live keys, bad hashes, expired request times,
// replayed ref_ids and request ids, reused refresh tokens, forged tokens,
// malformed Authorization headers, oversize headers and bodies, plain HTTP
// to an HTTPS-only API) whose refusals are expected. Every kind of request
// declares the statuses the demo's contract (DEMO.md, the seeds) gives it;
// any other, a transport error, or a 429 without Retry-After is
// unexpected. The mix keeps under the demo's rate limits by budgets of its
// own and by spreading requests over addresses in X-Forwarded-For (which
// the demo trusts from loopback), so 429s are not expected; they are
// counted all the same.
//
// Before the load, right after it and after -settle (with the generator's
// connections closed), it reads the demo process's goroutines and heap
// from the admin listener's /metrics?gc=1, which collects garbage first.
// It fails when goroutines after settling exceed those before by more than
// -goroutine-slack, or when the heap in use by live objects (HeapAlloc)
// after settling exceeds that before by more than the state the run left
// in the demo's stores (entries of apiguard's stores by /metrics, payments
// and orders by the generator's count) at 1 KiB an entry, plus
// -heap-slack. 1 KiB is at least twice what any of those stores documents
// an entry to cost at its bound (a tracked session, the largest, about
// 400 bytes), which covers a map's room to grow; -heap-slack covers what
// the first requests of each kind allocate once for good (TLS, metric
// series, buffers).
//
// It prints a report (requests, statuses and latency percentiles per kind
// and overall, each median also as a multiple of that of the demo's
// unguarded GET /healthz in the same run; goroutines, heap and store
// entries before, after and settled) and exits 1 on an unexpected status or growth, 2 on a usage
// or setup error.
//
// With -spawn BIN it starts the demo binary BIN itself, on free loopback
// ports, with the arguments after "--", and stops it at the end; otherwise
// it drives the demo at -addr, -tls-addr and -admin-addr. A demo keeps
// what runs leave in it: the reseller's gold balance pays for 68 orders in
// the demo's life (a run places at most 60) and 88Pay issues 100 tokens an
// hour, so give each run a fresh demo, as -spawn and scripts/soak.sh do.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/apiguard/apiguard/client"
)

// config is what the flags set.
type config struct {
	addr, tlsAddr, adminAddr string
	spawn                    string   // the demo binary to start, if any
	demoArgs                 []string // its extra arguments
	duration, settle         time.Duration
	workers                  int
	rate                     float64
	timeout                  time.Duration
	goroutineSlack           int
	heapSlack                int64 // bytes
}

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "the demo's plain HTTP address")
	flag.StringVar(&cfg.tlsAddr, "tls-addr", "127.0.0.1:8443", "the demo's HTTPS address; empty: 88Pay through the plain address with X-Forwarded-Proto: https")
	flag.StringVar(&cfg.adminAddr, "admin-addr", "127.0.0.1:9090", "the demo's admin address (runtime figures at /metrics)")
	flag.StringVar(&cfg.spawn, "spawn", "", "start this demo binary on free loopback ports (arguments after --) instead of using -addr, -tls-addr and -admin-addr")
	flag.DurationVar(&cfg.duration, "duration", 60*time.Second, "how long the load lasts")
	flag.DurationVar(&cfg.settle, "settle", 5*time.Second, "how long to wait after the load, connections closed, before the last figures")
	flag.IntVar(&cfg.workers, "workers", 8, "concurrent workers, each sending one request at a time")
	flag.Float64Var(&cfg.rate, "rate", 200, "the most requests a second, all workers together")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "timeout of one request")
	flag.IntVar(&cfg.goroutineSlack, "goroutine-slack", 5, "goroutines allowed after settling beyond those before the load")
	heapSlackMiB := flag.Float64("heap-slack", 1, "MiB of heap allowed after settling beyond the state the run left in the demo")
	flag.Parse()
	cfg.heapSlack = int64(*heapSlackMiB * (1 << 20))
	cfg.demoArgs = flag.Args()
	if cfg.workers < 1 || cfg.rate <= 0 || cfg.duration <= 0 || cfg.settle < 0 || (cfg.spawn == "" && len(cfg.demoArgs) > 0) {
		fmt.Fprintln(os.Stderr, "soak: -workers and -rate must be positive, -duration positive, -settle not negative; arguments only with -spawn")
		os.Exit(2)
	}
	os.Exit(run(context.Background(), cfg, os.Stdout))
}

// run runs the soak and writes its report to out; it returns the exit
// code: 0 if all went as expected, 1 on an unexpected status or growth, 2
// if the run could not be made.
func run(ctx context.Context, cfg config, out io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintln(out, "soak:", err)
		return 2
	}
	if cfg.spawn != "" {
		d, err := spawn(cfg.spawn, cfg.demoArgs)
		if err != nil {
			return fail(err)
		}
		cfg.addr, cfg.tlsAddr, cfg.adminAddr = d.plain, d.tls, d.admin
		defer func() {
			if err := d.stop(); err != nil {
				fmt.Fprintf(out, "soak: the demo's exit: %v\n%s", err, d.log())
			}
		}()
	}
	admin := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, // the demo's certificate is self-signed, on loopback
		MaxIdleConnsPerHost: cfg.workers * 2,
		MaxIdleConns:        cfg.workers * 4,
	}
	g := &gen{
		plain:   "http://" + cfg.addr,
		secure:  "https://" + cfg.tlsAddr,
		hc:      &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		timeout: cfg.timeout,
		rec:     newRecorder(),
		global:  newBucket(cfg.rate, max(1, cfg.rate/10)),
		stop:    make(chan struct{}),
		runID:   newRunID(),

		payments:   newRing(1024),
		refs:       newRing(64),
		topupIPs:   newPool("203.0.113.", 100, 64),
		clientIPs:  newPool("198.18.0.", 1, 64),
		hostileIPs: newPool("198.51.100.", 1, 64),
	}
	if cfg.tlsAddr == "" {
		g.secure, g.viaXFP = g.plain, true
	}
	g.declareOps()
	session, err := client.NewSession(g.pay88URL("/api/auth/token"), pay88Key, pay88Merchant, &recordingTransport{g: g, base: tr},
		client.WithRetry429(0, time.Second))
	if err != nil {
		return fail(err)
	}
	g.pay88, g.pay88HC = session, &http.Client{Transport: session}
	g.declareKinds()
	for _, k := range g.kinds {
		if k.budget == nil && k.quota == nil {
			g.free = append(g.free, k)
			g.freeWeight += k.weight
		}
	}

	before, err := scrape(admin, cfg.adminAddr, true)
	if err != nil {
		return fail(err)
	}

	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.workers {
		wg.Go(func() {
			for {
				select {
				case <-g.stop:
					return
				default:
				}
				g.pick().run(g)
			}
		})
	}
	select {
	case <-time.After(cfg.duration):
	case <-ctx.Done():
	}
	close(g.stop)
	wg.Wait()
	elapsed := time.Since(start)

	after, err := scrape(admin, cfg.adminAddr, true)
	if err != nil {
		return fail(err)
	}
	tr.CloseIdleConnections()
	select {
	case <-time.After(cfg.settle):
	case <-ctx.Done():
	}
	settled, err := scrape(admin, cfg.adminAddr, true)
	if err != nil {
		return fail(err)
	}

	return report(out, cfg, g, elapsed, before, after, settled)
}

// pick chooses a kind at random by weight among those ready to run;
// after a few kinds that are not, it chooses among the kinds with neither
// budget nor quota, which always are.
func (g *gen) pick() *kind {
	for range 16 {
		if k := choose(g.kinds, g.weight); k.ready() {
			return k
		}
	}
	return choose(g.free, g.freeWeight)
}

// choose returns one of kinds at random by weight; total is the sum of
// their weights.
func choose(kinds []*kind, total int) *kind {
	n := rand.IntN(total)
	for _, k := range kinds {
		if n -= k.weight; n < 0 {
			return k
		}
	}
	panic("soak: weights do not add up")
}

// entryCost is what the growth check allows an entry of one of apiguard's
// stores of the demo, by the store's name: twice what the store's type
// documents an entry to cost at its bound (MemoryReplayStore 120 bytes,
// MemoryLimiter 170, a session of Sessions 400), for a map's room to grow;
// 1 KiB for a store this table does not know.
func entryCost(store string) float64 {
	switch {
	case store == "clientsys.request_ids":
		return 2 * 120
	case store == "clientsys.sessions":
		return 2 * 400
	case strings.HasPrefix(store, "topup."), store == "clientsys.per_ip", store == "pay88.issuance":
		return 2 * 170
	}
	return 1 << 10
}

// The demo's own stores document no cost: a MockPay payment is a map
// entry of a 72-byte slot and the order id's string (32 bytes), about 110
// bytes, and a reseller order two entries of about 300 bytes in all.
// Twice that, as for apiguard's stores.
const paymentCost, orderCost = 2 * 110, 2 * 300

// report writes the run's figures and judges them; it returns the exit
// code.
func report(out io.Writer, cfg config, g *gen, elapsed time.Duration, before, after, settled figures) int {
	t := g.rec.totals()
	fmt.Fprintf(out, "soak: %s of load against %s (admin %s), %d workers, at most %.0f requests/s\n",
		elapsed.Round(time.Millisecond), g.plain, cfg.adminAddr, cfg.workers, cfg.rate)
	fmt.Fprintf(out, "requests: %d (%.1f/s), 2xx: %d (%.1f%%), unexpected: %d, transport errors: %d, 429: %d\n\n",
		t.requests, float64(t.requests)/elapsed.Seconds(), t.success, 100*float64(t.success)/max(1, float64(t.requests)),
		t.unexpected, t.errors, t.limited)
	g.rec.writeTable(out, "baseline.healthz")

	const mib = 1 << 20
	fmt.Fprintf(out, "\ndemo process (after a forced GC)   %12s %12s %12s\n", "before", "after", "settled")
	fmt.Fprintf(out, "goroutines                         %12.0f %12.0f %12.0f\n", before.goroutines, after.goroutines, settled.goroutines)
	fmt.Fprintf(out, "heap in use (HeapInuse, MiB)       %12.2f %12.2f %12.2f\n", before.heapInuse/mib, after.heapInuse/mib, settled.heapInuse/mib)
	fmt.Fprintf(out, "heap live (HeapAlloc, MiB)         %12.2f %12.2f %12.2f\n", before.heapAlloc/mib, after.heapAlloc/mib, settled.heapAlloc/mib)
	fmt.Fprintf(out, "entries in apiguard's stores       %12.0f %12.0f %12.0f\n", before.storeEntries(), after.storeEntries(), settled.storeEntries())

	// What the run left in the demo: new entries of apiguard's stores
	// (counted by store, none counted below zero), and the payments and
	// orders of the demo's own stores, each at its cost.
	var added, allowed float64
	for name, n := range settled.stores {
		d := max(0, n-before.stores[name])
		added += d
		allowed += d * entryCost(name)
	}
	payments, orders := float64(g.madePayments.Load()), float64(g.madeOrders.Load())
	added += payments + orders
	allowed += payments*paymentCost + orders*orderCost
	heapBound := before.heapAlloc + allowed + float64(cfg.heapSlack)
	goroutineBound := before.goroutines + float64(cfg.goroutineSlack)

	code := 0
	verdict := func(ok bool) string {
		if ok {
			return "ok"
		}
		code = 1
		return "FAIL"
	}
	fmt.Fprintf(out, "\nunexpected statuses: %d: %s\n", t.unexpected, verdict(t.unexpected == 0 && t.requests > 0))
	fmt.Fprintf(out, "goroutines settled %.0f, bound %.0f (before + %d): %s\n",
		settled.goroutines, goroutineBound, cfg.goroutineSlack, verdict(settled.goroutines <= goroutineBound))
	fmt.Fprintf(out, "heap live settled %.2f MiB (%+.2f MiB), bound %.2f MiB (before + %.2f MiB for the %.0f entries the run left in the stores + %.2f MiB): %s\n",
		settled.heapAlloc/mib, (settled.heapAlloc-before.heapAlloc)/mib, heapBound/mib, allowed/mib, added, float64(cfg.heapSlack)/mib,
		verdict(settled.heapAlloc <= heapBound))
	if code != 0 {
		fmt.Fprintln(out, "soak: FAIL")
	} else {
		fmt.Fprintln(out, "soak: ok")
	}
	return code
}
