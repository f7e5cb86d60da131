package apiguard

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"time"
)

// defaultReplayCapacity is the capacity of a MemoryReplayStore unless
// WithCapacity says otherwise, and of the store RequestID makes when given
// none.
const defaultReplayCapacity = 100_000

// MemoryReplayStore is the in-memory ReplayStore. It holds at most its
// capacity of ids (WithCapacity), each for its ttl, in about 100 bytes
// apiece (ids are kept as 128-bit digests of namespace and id, whatever
// their length).
//
// When it is full it refuses new ids with ErrStoreFull rather than
// forget ids still inside their ttl: forgetting them would let a client
// flush the store and replay. An id removed by Forget keeps its place
// toward the capacity until its ttl runs out. Size the capacity for the
// ids of one retention at peak traffic.
//
// Expired ids are dropped as new ones arrive; it starts no goroutine and
// needs no Close. The zero value holds up to 100,000 ids and reads time
// from time.Now. It is safe for concurrent use.
type MemoryReplayStore struct {
	mu   sync.Mutex
	seen map[replayKey]int64 // expiry, in Unix nanoseconds
	q    []replayItem        // min-heap by expiry; may hold forgotten ids
	max  int
	now  func() time.Time
}

type replayKey [16]byte

type replayItem struct {
	key     replayKey
	expires int64
}

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
		m.seen = make(map[replayKey]int64)
	}
	m.expire(now)
	if _, ok := m.seen[k]; ok {
		return false, nil
	}
	if len(m.q) >= m.capacity() {
		return false, ErrStoreFull
	}
	m.seen[k] = expires
	m.push(replayItem{k, expires})
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

// Forget implements ReplayStore.
func (m *MemoryReplayStore) Forget(_ context.Context, namespace, id string) error {
	k := keyOf(namespace, id)
	m.mu.Lock()
	delete(m.seen, k)
	m.mu.Unlock()
	return nil
}

// Len returns the number of ids held, forgotten ones still inside their ttl
// included.
func (m *MemoryReplayStore) Len() int {
	now := m.clock().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(now)
	return len(m.q)
}

// expire drops the ids whose time ran out by now.
func (m *MemoryReplayStore) expire(now int64) {
	for len(m.q) > 0 && m.q[0].expires <= now {
		it := m.pop()
		// The map holds the id under another expiry if it was forgotten
		// and recorded again; that record is still live.
		if exp, ok := m.seen[it.key]; ok && exp == it.expires {
			delete(m.seen, it.key)
		}
	}
}

func (m *MemoryReplayStore) push(it replayItem) {
	m.q = append(m.q, it)
	for i := len(m.q) - 1; i > 0; {
		p := (i - 1) / 2
		if m.q[p].expires <= m.q[i].expires {
			break
		}
		m.q[p], m.q[i] = m.q[i], m.q[p]
		i = p
	}
}

func (m *MemoryReplayStore) pop() replayItem {
	top := m.q[0]
	n := len(m.q) - 1
	m.q[0] = m.q[n]
	m.q = m.q[:n]
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < n && m.q[l].expires < m.q[small].expires {
			small = l
		}
		if l+1 < n && m.q[l+1].expires < m.q[small].expires {
			small = l + 1
		}
		if small == i {
			break
		}
		m.q[i], m.q[small] = m.q[small], m.q[i]
		i = small
	}
	return top
}

var _ ReplayStore = (*MemoryReplayStore)(nil)
