package main

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestBuckets: every duration falls in a bucket whose range holds it, no
// wider than 1/64 of the values it holds, and buckets follow each other
// without gap or overlap.
func TestBuckets(t *testing.T) {
	vals := []int64{0, 1, 63, 64, 65, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<20 + 1, 123456789, 1<<40 - 1}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		vals = append(vals, r.Int64N(1<<40))
	}
	for _, v := range vals {
		i := bucketOf(v)
		lower := int64(0)
		if i > 0 {
			lower = upperOf(i-1) + 1
		}
		if v < lower || v > upperOf(i) {
			t.Fatalf("%d ns in bucket %d, which holds [%d, %d]", v, i, lower, upperOf(i))
		}
		if width := upperOf(i) - lower + 1; width > 1 && float64(width) > float64(lower)/64 {
			t.Fatalf("bucket %d of %d ns holds [%d, %d], wider than 1/64", i, v, lower, upperOf(i))
		}
	}
	if got := bucketOf(1 << 50); got != histBuckets-1 {
		t.Errorf("2^50 ns in bucket %d, want the last, %d", got, histBuckets-1)
	}
}

// TestQuantiles: percentiles by nearest rank, never below the true value,
// at most 1/64 above it, exact where the buckets are (below 128 ns), and
// the exact maximum.
func TestQuantiles(t *testing.T) {
	var h histogram
	if h.quantile(.5) != 0 {
		t.Error("a quantile of no samples is not 0")
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, i := range r.Perm(1000) {
		h.add(time.Duration(i+1) * time.Microsecond) // 1µs .. 1000µs
	}
	for _, q := range []float64{.01, .5, .9, .99, .999, 1} {
		want := time.Duration(math.Ceil(q*1000)) * time.Microsecond
		got := h.quantile(q)
		if got < want || float64(got) > float64(want)*(1+1.0/64) {
			t.Errorf("p%v = %v, want %v (at most 1/64 more)", q*100, got, want)
		}
	}
	if h.max != time.Millisecond || h.quantile(1) != time.Millisecond {
		t.Errorf("max %v, p100 %v, want 1ms", h.max, h.quantile(1))
	}

	var small histogram
	for _, d := range []time.Duration{5, 1, 4, 2, 3} {
		small.add(d)
	}
	for q, want := range map[float64]time.Duration{.2: 1, .21: 2, .5: 3, .8: 4, .9: 5} {
		if got := small.quantile(q); got != want {
			t.Errorf("p%v of 1..5ns = %v, want %v", q*100, got, want)
		}
	}

	var merged histogram
	merged.merge(&h)
	merged.merge(&small)
	if merged.n != 1005 || merged.max != time.Millisecond || merged.quantile(.001) != 2 {
		t.Errorf("merged: n %d, max %v, p0.1 %v; want 1005, 1ms, 2ns", merged.n, merged.max, merged.quantile(.001))
	}
}

// TestBookkeeping: statuses are counted per op; a status outside the op's
// expected set, or a transport error (0), is unexpected; 429s and
// transport errors are totalled; the table marks unexpected statuses and
// shows the first few unexpected answers, cut short.
func TestBookkeeping(t *testing.T) {
	rec := newRecorder()
	a := rec.op("a", 200, 409)
	b := rec.op("b", 401, 429)
	rec.op("unused", 200)
	for _, s := range []int{200, 200, 409, 200} {
		a.record(s, time.Millisecond, "")
	}
	a.record(500, 2*time.Millisecond, strings.Repeat("e", 300))
	a.record(0, 3*time.Millisecond, "connection refused")
	b.record(429, 2*time.Millisecond, "")
	b.record(401, 2*time.Millisecond, "")
	b.record(403, 2*time.Millisecond, "forbidden")
	b.record(404, 2*time.Millisecond, "x")
	b.record(405, 2*time.Millisecond, "y")

	if got := rec.count("a", 200); got != 3 {
		t.Errorf("a 200: %d, want 3", got)
	}
	if a.unexpected != 2 || b.unexpected != 3 {
		t.Errorf("unexpected a %d, b %d; want 2, 3", a.unexpected, b.unexpected)
	}
	tot := rec.totals()
	if tot.requests != 11 || tot.success != 3 || tot.unexpected != 5 || tot.limited != 1 || tot.errors != 1 || tot.hist.n != 11 || tot.hist.max != 3*time.Millisecond {
		t.Errorf("totals: %d requests, %d 2xx, %d unexpected, %d limited, %d errors, %d timed, max %v; want 11, 3, 5, 1, 1, 11, 3ms",
			tot.requests, tot.success, tot.unexpected, tot.limited, tot.errors, tot.hist.n, tot.hist.max)
	}
	if len(b.examples) != maxExamples {
		t.Errorf("b keeps %d examples, want %d", len(b.examples), maxExamples)
	}
	var out bytes.Buffer
	rec.writeTable(&out, "b")
	table := out.String()
	for _, want := range []string{"200:3 409:1 !500:1", "!0:1", "200,409", "!403:1 !404:1 !405:1 429:1", "unexpected: a: 500 " + strings.Repeat("e", 200) + "...\n"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	// a's median (1ms) is half b's (2ms), the baseline; a's maximum is
	// 3ms.
	if !strings.Contains(table, "     3.00     0.50\n") || !strings.Contains(table, "     2.00     1.00\n") {
		t.Errorf("table lacks a's median as a multiple of b's, 0.50, or b's, 1.00:\n%s", table)
	}
	if strings.Contains(table, "unused") {
		t.Errorf("table shows an op that sent nothing:\n%s", table)
	}
	if !strings.Contains(table, "all                                     11") {
		t.Errorf("table's total line is not 11 requests:\n%s", table)
	}
}

// TestVerdict: the report fails on an unexpected status, on no request at
// all, on goroutines over the slack, and on heap over the state left in
// the stores at each store's cost plus the slack, and passes at each
// bound.
func TestVerdict(t *testing.T) {
	const mib = 1 << 20
	before := figures{goroutines: 10, heapAlloc: 4 * mib, stores: map[string]float64{"clientsys.request_ids": 10, "topup.order_per_ip": 50}}
	settled := func(goroutines, heap float64) figures {
		return figures{goroutines: goroutines, heapAlloc: heap,
			stores: map[string]float64{"clientsys.request_ids": 110, "topup.order_per_ip": 40, "unknown.store": 5}}
	}
	// 100 request ids at 240 bytes, 5 entries of an unknown store at 1 KiB
	// (the 10 limiter keys gone count for nothing), 20 payments at 220 and
	// 2 orders at 600.
	bound := 4*mib + 100*240 + 5*1024 + 20*220 + 2*600 + 0.5*mib
	cfg := config{goroutineSlack: 5, heapSlack: mib / 2}
	for _, c := range []struct {
		name       string
		unexpected bool
		requests   bool
		settled    figures
		want       int
	}{
		{"at the bounds", false, true, settled(15, bound), 0},
		{"an unexpected status", true, true, settled(10, 4*mib), 1},
		{"no request", false, false, settled(10, 4*mib), 1},
		{"a goroutine more", false, true, settled(16, 4*mib), 1},
		{"a byte more", false, true, settled(10, bound+1), 1},
	} {
		g := &gen{rec: newRecorder(), plain: "http://x"}
		o := g.rec.op("k", 200)
		if c.requests {
			o.record(200, time.Millisecond, "")
		}
		if c.unexpected {
			o.record(500, time.Millisecond, "")
		}
		g.madePayments.Store(20)
		g.madeOrders.Store(2)
		var out bytes.Buffer
		if got := report(&out, cfg, g, time.Second, before, c.settled, c.settled); got != c.want {
			t.Errorf("%s: exit %d, want %d\n%s", c.name, got, c.want, out.String())
		}
	}
}
