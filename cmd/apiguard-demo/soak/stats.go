package main

import (
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// histogram counts durations in buckets no wider than 1/64 of the values
// they hold (exact below 128 ns), so that a percentile read from it is at
// most 1.6% above the true one, in a fixed 18 KiB whatever the number of
// samples. Durations of 2⁴⁰ ns (about 18 minutes) and more share the last
// bucket; the maximum is kept exactly.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
}

const (
	subBits     = 6 // 64 buckets per power of two
	sub         = 1 << subBits
	maxExp      = 40 // the last bucket starts at 2⁴⁰ ns
	histBuckets = (maxExp - subBits + 2) * sub
)

// bucketOf returns the bucket of a duration of ns nanoseconds.
func bucketOf(ns int64) int {
	if ns < sub {
		return int(max(ns, 0))
	}
	e := bits.Len64(uint64(ns)) - 1
	if e > maxExp {
		return histBuckets - 1
	}
	return (e-subBits+1)*sub + int(uint64(ns)>>(e-subBits)&(sub-1))
}

// upperOf returns the largest duration, in nanoseconds, that falls in
// bucket i.
func upperOf(i int) int64 {
	if i < sub {
		return int64(i)
	}
	block, m := i/sub, int64(i%sub)
	shift := block - 1 // the bucket's width is 1<<shift
	return (sub+m)<<shift + 1<<shift - 1
}

func (h *histogram) add(d time.Duration) {
	h.counts[bucketOf(int64(d))]++
	h.n++
	h.max = max(h.max, d)
}

// merge adds the samples of o to h.
func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0 < q <= 1) by the nearest-rank
// definition, the smallest sample with at least q of the samples at or
// below it, as the upper end of its bucket (never above the maximum): at
// most 1/64 above the true value, never below it. It returns 0 when there
// are no samples.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(upperOf(i)), h.max)
		}
	}
	return h.max
}

// op is one kind of request the generator sends, the statuses it expects
// of it, and what it got. Status 0 stands for a transport error (no
// answer), which is never expected.
type op struct {
	name   string
	expect []int

	mu         sync.Mutex
	statuses   map[int]uint64
	hist       histogram
	unexpected uint64
	examples   []string // the first few unexpected answers
}

// maxExamples is how many unexpected answers an op keeps for the report.
const maxExamples = 3

// expected reports whether status is among the op's expected ones.
func (o *op) expected(status int) bool { return slices.Contains(o.expect, status) }

// record counts one request that was answered status (0: a transport
// error, err) after d; detail (a body or an error) is kept when the status
// is unexpected.
func (o *op) record(status int, d time.Duration, detail string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.statuses == nil {
		o.statuses = map[int]uint64{}
	}
	o.statuses[status]++
	o.hist.add(d)
	if !o.expected(status) {
		o.unexpected++
		if len(o.examples) < maxExamples {
			if len(detail) > 200 {
				detail = detail[:200] + "..."
			}
			o.examples = append(o.examples, fmt.Sprintf("%d %s", status, detail))
		}
	}
}

// recorder holds the ops of a run, in the order they were declared.
type recorder struct {
	ops    []*op
	byName map[string]*op
}

func newRecorder() *recorder { return &recorder{byName: map[string]*op{}} }

// op declares a kind of request and the statuses it expects; it panics on
// a name declared twice or an empty expectation, both mistakes of the
// generator's own.
func (r *recorder) op(name string, expect ...int) *op {
	if _, dup := r.byName[name]; dup || len(expect) == 0 {
		panic("soak: op " + name + " declared twice or without an expected status")
	}
	o := &op{name: name, expect: expect}
	r.ops = append(r.ops, o)
	r.byName[name] = o
	return o
}

// totals is what a run's requests add up to.
type totals struct {
	requests, success, unexpected, limited, errors uint64
	hist                                           histogram
}

func (r *recorder) totals() totals {
	var t totals
	for _, o := range r.ops {
		o.mu.Lock()
		for s, n := range o.statuses {
			t.requests += n
			switch {
			case s >= 200 && s < 300:
				t.success += n
			case s == 429:
				t.limited += n
			case s == 0:
				t.errors += n
			}
		}
		t.unexpected += o.unexpected
		t.hist.merge(&o.hist)
		o.mu.Unlock()
	}
	return t
}

// count returns how many requests of op name were answered status.
func (r *recorder) count(name string, status int) uint64 {
	o := r.byName[name]
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.statuses[status]
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1e3, 'f', 2, 64) }

// writeTable writes a line per op that sent requests: its count, its
// statuses (an unexpected one marked "!"), the statuses it expects, its
// latency percentiles in milliseconds, and its median as a multiple of the
// median of the op named baseline (if it sent requests), measured in the
// same run; then the line of all requests.
func (r *recorder) writeTable(w io.Writer, baseline string) {
	var base time.Duration
	if b, ok := r.byName[baseline]; ok {
		b.mu.Lock()
		base = b.hist.quantile(.50)
		b.mu.Unlock()
	}
	fmt.Fprintf(w, "%-34s %7s  %-22s %-12s %8s %8s %8s %8s %8s\n", "kind", "n", "statuses", "expected", "p50 ms", "p90 ms", "p99 ms", "max ms", "p50/base")
	line := func(name string, n uint64, statuses, expect string, h *histogram) {
		ratio := "-"
		if base > 0 {
			ratio = strconv.FormatFloat(float64(h.quantile(.50))/float64(base), 'f', 2, 64)
		}
		fmt.Fprintf(w, "%-34s %7d  %-22s %-12s %8s %8s %8s %8s %8s\n", name, n, statuses, expect,
			ms(h.quantile(.50)), ms(h.quantile(.90)), ms(h.quantile(.99)), ms(h.max), ratio)
	}
	for _, o := range r.ops {
		o.mu.Lock()
		if o.hist.n > 0 {
			codes := make([]int, 0, len(o.statuses))
			for s := range o.statuses {
				codes = append(codes, s)
			}
			slices.Sort(codes)
			var parts []string
			for _, s := range codes {
				mark := ""
				if !o.expected(s) {
					mark = "!"
				}
				parts = append(parts, fmt.Sprintf("%s%d:%d", mark, s, o.statuses[s]))
			}
			exp := make([]string, len(o.expect))
			for i, s := range o.expect {
				exp[i] = strconv.Itoa(s)
			}
			line(o.name, o.hist.n, strings.Join(parts, " "), strings.Join(exp, ","), &o.hist)
		}
		o.mu.Unlock()
	}
	t := r.totals()
	line("all", t.requests, "", "", &t.hist)
	for _, o := range r.ops {
		o.mu.Lock()
		for _, e := range o.examples {
			fmt.Fprintf(w, "unexpected: %s: %s\n", o.name, e)
		}
		o.mu.Unlock()
	}
}
