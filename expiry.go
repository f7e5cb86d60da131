package apiguard

// expiring is an entry of an expiryQueue: it says when it expires, in Unix
// nanoseconds.
type expiring interface{ expiry() int64 }

// expiryQueue is a min-heap of entries by expiry, for the stores that drop
// what has expired (request ids, session families). It may hold entries
// their store has removed since; the store skips those as it pops them, and
// rebuilds the queue when they outnumber the live ones.
type expiryQueue[T expiring] []T

// due reports whether the earliest entry expires at or before t.
func (q expiryQueue[T]) due(t int64) bool { return len(q) > 0 && q[0].expiry() <= t }

func (q *expiryQueue[T]) push(it T) {
	h := append(*q, it)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if h[p].expiry() <= h[i].expiry() {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
	*q = h
}

func (q *expiryQueue[T]) pop() T {
	h := *q
	top, n := h[0], len(h)-1
	var zero T
	h[0], h[n] = h[n], zero // the zero lets go of what the entry held
	h = h[:n]
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < n && h[l].expiry() < h[small].expiry() {
			small = l
		}
		if l+1 < n && h[l+1].expiry() < h[small].expiry() {
			small = l + 1
		}
		if small == i {
			break
		}
		h[i], h[small] = h[small], h[i]
		i = small
	}
	*q = h
	return top
}
