package apiguard

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"time"
)

// defaultReplayCapacity is the capacity of a MemoryReplayStore unless
// WithCapacity says otherwise, and of the store RequestID makes when given
// none.
const defaultReplayCapacity = 100_000

// MemoryReplayStore is the in-memory ReplayStore. It holds at most its
// capacity of ids (WithCapacity), each for its ttl, and at most an eighth
// of its capacity (at least 1) in any one namespace: RequestID's
// namespace is the client, so one client's ids, however many it sends,
// take at most its share, and it takes eight clients at their share to
// fill the store. A namespace's share is that of its part before the first
// NUL byte: RequestID keeps a publishable client's ids per client and
// caller's address ("client\x00ip:..."), and they all count in the client's
// one share, so the callers of a public key, from however many addresses,
// fill at most that client's eighth (a caller that fills it gets 503 for
// new ids, and so do the client's other callers, until ids expire; limit
// such callers by IP in front of RequestID).
//
// It never forgets an id inside its ttl to make room: forgetting one would
// let a client flush the store and replay. So when a namespace holds its
// share, a new id in that namespace is refused with ErrStoreFull (RequestID
// answers 503) until one of its ids expires or is forgotten, while other
// namespaces go on as before; when the store holds its capacity, new ids
// of every namespace are refused alike. An id removed by Forget (RequestID
// forgets the id of a request a later check refused) frees its place at
// once. Size the capacity for eight times the ids one client sends in a
// retention at peak.
//
// At its bound the store uses about 100 bytes an id, 120 at most (ids are
// kept as 128-bit digests of namespace and id, whatever their length):
// about 10 MB for the default 100,000.
//
// Expired ids are dropped as new ones arrive; it starts no goroutine and
// needs no Close. The zero value holds up to 100,000 ids and reads time
// from time.Now. It is safe for concurrent use.
type MemoryReplayStore struct {
	mu   sync.Mutex
	seed maphash.Seed
	seen map[replayKey]replayEntry
	per  map[uint64]int32        // live ids per namespace (by a keyed hash of it)
	q    expiryQueue[replayItem] // min-heap by expiry; may hold forgotten ids
	max  int
	now  func() time.Time
}

type replayKey [16]byte

type replayEntry struct {
	expires int64 // Unix nanoseconds
	ns      uint64
}

type replayItem struct {
	key     replayKey
	expires int64
}

func (it replayItem) expiry() int64 { return it.expires }

// replayShares is how many namespaces at their share fill a
// MemoryReplayStore.
const replayShares = 8

// NewMemoryReplayStore returns an empty MemoryReplayStore. Its options are
// WithCapacity (the most ids it holds, 100,000 by default) and WithClock
// (time.Now by default). It fails if an option is out of range or does not
// apply to it.
func NewMemoryReplayStore(opts ...Option) (*MemoryReplayStore, error) {
	c, err := configure(toReplayStore, opts)
	if err != nil {
		return nil, err
	}
	return &MemoryReplayStore{max: c.capacityOr(defaultReplayCapacity), now: c.clock()}, nil
}

// keyOf digests namespace and id, length-prefixed so that no two pairs
// share an input.
func keyOf(namespace, id string) replayKey {
	var buf [256]byte
	b := binary.BigEndian.AppendUint64(buf[:0], uint64(len(namespace)))
	b = append(append(b, namespace...), id...)
	sum := sha256.Sum256(b)
	return replayKey(sum[:16])
}

// Seen implements ReplayStore.
func (m *MemoryReplayStore) Seen(_ context.Context, namespace, id string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("apiguard: replay ttl must be positive, got %v", ttl)
	}
	k := keyOf(namespace, id)
	now := m.clock().UnixNano()
	expires := now + int64(ttl)
	if expires < now {
		expires = math.MaxInt64
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = make(map[replayKey]replayEntry)
		m.per = make(map[uint64]int32)
		m.seed = maphash.MakeSeed()
	}
	m.expire(now)
	if _, ok := m.seen[k]; ok {
		return false, nil
	}
	share, _, _ := strings.Cut(namespace, "\x00")
	ns := maphash.String(m.seed, share)
	capacity := m.capacity()
	if len(m.seen) >= capacity || int(m.per[ns]) >= max(capacity/replayShares, 1) {
		return false, ErrStoreFull
	}
	m.seen[k] = replayEntry{expires, ns}
	m.per[ns]++
	m.q.push(replayItem{k, expires})
	return true, nil
}

func (m *MemoryReplayStore) capacity() int {
	if m.max == 0 {
		return defaultReplayCapacity
	}
	return m.max
}

func (m *MemoryReplayStore) clock() time.Time {
	if m.now == nil {
		return time.Now()
	}
	return m.now()
}

// Forget implements ReplayStore. The id's place is free at once.
func (m *MemoryReplayStore) Forget(_ context.Context, namespace, id string) error {
	k := keyOf(namespace, id)
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.seen[k]; ok {
		m.drop(k, e)
		// The heap keeps the forgotten id's item until its expiry; rebuild
		// it when such items are as many as the live ones, so that it holds
		// at most twice the capacity, whatever is forgotten.
		if len(m.q) > 2*len(m.seen)+64 {
			m.q = m.q[:0]
			for k, e := range m.seen {
				m.q.push(replayItem{k, e.expires})
			}
		}
	}
	return nil
}

// drop removes the id k, held as e.
func (m *MemoryReplayStore) drop(k replayKey, e replayEntry) {
	delete(m.seen, k)
	if m.per[e.ns]--; m.per[e.ns] <= 0 {
		delete(m.per, e.ns)
	}
}

// len returns the number of ids held (those still inside their ttl).
func (m *MemoryReplayStore) len() int {
	now := m.clock().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(now)
	return len(m.seen)
}

// expire drops the ids whose time ran out by now.
//
// An id is held through the instant its ttl ends, inclusive, as
// RequestTime's window is: a request RequestTime still accepts at that
// instant must still find its id (TestReplayAtTheEdgeOfTheWindow).
func (m *MemoryReplayStore) expire(now int64) {
	for m.q.due(now - 1) { // expires < now
		it := m.q.pop()
		// The map holds the id under another expiry if it was forgotten
		// and recorded again; that record is still live.
		if e, ok := m.seen[it.key]; ok && e.expires == it.expires {
			m.drop(it.key, e)
		}
	}
}

var _ ReplayStore = (*MemoryReplayStore)(nil)
