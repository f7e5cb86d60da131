package main

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// bucket is a token bucket: perSecond tokens a second, at most burst held,
// full at start.
type bucket struct {
	mu        sync.Mutex
	perSecond float64
	burst     float64
	tokens    float64
	last      time.Time
}

func newBucket(perSecond, burst float64) *bucket {
	return &bucket{perSecond: perSecond, burst: burst, tokens: burst, last: time.Now()}
}

// perMinute returns a bucket of n tokens a minute, holding at most a
// tenth of them (at least one).
func perMinute(n float64) *bucket { return newBucket(n/60, max(1, n/10)) }

func (b *bucket) refill(now time.Time) {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.perSecond)
	b.last = now
}

// take takes n tokens if the bucket holds them.
func (b *bucket) take(n float64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(time.Now())
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// wait takes a token, waiting for one as long as needed, unless stop is
// closed first (false).
func (b *bucket) wait(stop <-chan struct{}) bool {
	for {
		b.mu.Lock()
		now := time.Now()
		b.refill(now)
		if b.tokens >= 1 {
			b.tokens--
			b.mu.Unlock()
			return true
		}
		d := time.Duration((1 - b.tokens) / b.perSecond * float64(time.Second))
		b.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-stop:
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// quota is a number of uses for a whole run.
type quota struct {
	left atomic.Int64
}

func newQuota(n int64) *quota {
	q := &quota{}
	q.left.Store(n)
	return q
}

// take uses one, if any is left.
func (q *quota) take() bool {
	if q.left.Add(-1) >= 0 {
		return true
	}
	q.left.Add(1)
	return false
}

// ring keeps the last values put in it, up to its size, for requests that
// need something an earlier one made (an order to read, a ref_id to
// replay).
type ring struct {
	mu   sync.Mutex
	vals []string
	next int
}

func newRing(size int) *ring { return &ring{vals: make([]string, 0, size)} }

func (r *ring) put(v string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.vals) < cap(r.vals) {
		r.vals = append(r.vals, v)
		return
	}
	r.vals[r.next] = v
	r.next = (r.next + 1) % len(r.vals)
}

// pick returns the value numbered i modulo the number held, or false if
// none is held.
func (r *ring) pick(i uint64) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.vals) == 0 {
		return "", false
	}
	return r.vals[i%uint64(len(r.vals))], true
}

// pool hands out addresses of a fixed list in turn, so that requests
// spread evenly over them.
type pool struct {
	addrs []string
	n     atomic.Uint64
}

// newPool returns a pool of the n addresses prefix+first, prefix+first+1,
// ...
func newPool(prefix string, first, n int) *pool {
	p := &pool{}
	for i := range n {
		p.addrs = append(p.addrs, prefix+strconv.Itoa(first+i))
	}
	return p
}

func (p *pool) next() string { return p.addrs[(p.n.Add(1)-1)%uint64(len(p.addrs))] }
