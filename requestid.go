package apiguard

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/apiguard/apiguard/internal/wire"
)

// Reasons of the client-system headers of seed 003 (x-app-key and
// x-request-id). The missing and invalid app key also match ErrMissingKey
// and ErrInvalidKey, as a Scheme's errors must.
var (
	// ErrMissingAppKey: the request carries no x-app-key (401).
	ErrMissingAppKey error = &reason{"apiguard: missing app key", http.StatusUnauthorized, CodeMissingAppKey, Message{"Header wajib tidak ada: x-app-key", "Missing required header: x-app-key"}}
	// ErrInvalidAppKey: the x-app-key is unknown, revoked, not a
	// publishable key, malformed or sent twice (401).
	ErrInvalidAppKey error = &reason{"apiguard: invalid app key", http.StatusUnauthorized, CodeInvalidAppKey, Message{"x-app-key tidak valid", "Invalid x-app-key"}}
	// ErrInvalidRequestID: the x-request-id is malformed or sent twice (400).
	ErrInvalidRequestID error = &reason{"apiguard: invalid request id", http.StatusBadRequest, CodeInvalidRequestID, Message{"x-request-id tidak valid", "Invalid x-request-id"}}
)

// Stable machine codes of the reasons above.
const (
	CodeMissingAppKey    = "missing_app_key"
	CodeInvalidAppKey    = "invalid_app_key"
	CodeInvalidRequestID = "invalid_request_id"
)

// The app key errors as a Scheme returns them: the reason first, so that
// it decides the status and text, and the generic key reason after it.
var (
	errNoAppKey  = fmt.Errorf("%w: %w", ErrMissingAppKey, ErrMissingKey)
	errBadAppKey = fmt.Errorf("%w: %w", ErrInvalidAppKey, ErrInvalidKey)
)

// ErrReplayStoreFull is returned by MemoryReplayStore.Seen when the store
// holds its capacity of ids still inside their retention. RequestID answers
// it, as any store failure, with 503 (ErrUnavailable).
var ErrReplayStoreFull = errors.New("apiguard: replay store full")

// A ReplayStore remembers request ids for a while, so that RequestID can
// refuse one seen before. MemoryReplayStore is the in-process store; a
// shared store (Redis) lets several replicas refuse each other's replays.
//
// Implementations must be safe for concurrent use.
type ReplayStore interface {
	// Seen records id in namespace for ttl and reports whether it was
	// fresh: true if the id was not held in that namespace (never recorded,
	// expired or forgotten), false if it was. The check and the record are
	// one atomic step, so of several concurrent calls with one id exactly
	// one is fresh. Namespaces keep ids apart: one id in two namespaces is
	// two ids. ttl is positive.
	//
	// An error is a backend failure (or a store that is full): nothing is
	// known of the id, and RequestID refuses the request with 503.
	Seen(ctx context.Context, namespace, id string, ttl time.Duration) (fresh bool, err error)

	// Forget removes id from namespace, so that it is fresh again. RequestID
	// calls it for an id it recorded when a later check refuses the same
	// request, so that the refusal does not use the id up. Forgetting an id
	// that is not held is not an error. On an error the id stays recorded
	// until its ttl runs out.
	Forget(ctx context.Context, namespace, id string) error
}

// maxRequestIDLen caps the length of a request id.
const maxRequestIDLen = 128

// RequestID returns a wrapper that requires a unique request id in the
// x-request-id header (seed 003). Ids are kept per client, the one g's
// Scheme establishes (with the AppKey Scheme, per client system), so one
// client cannot use up another's ids. Each id is recorded in store for
// retention; a zero or negative retention means the default, 10 minutes,
// twice the default RequestTime window, so that any request RequestTime
// still accepts is also still remembered. A nil store means a new
// MemoryReplayStore of 100,000 ids on g's clock, for this wrapper alone:
// give wrappers one store to share ids across routes.
//
// It refuses a request without an id with 400 (ErrMissingRequestID), an id
// that is not 1 to 128 printable ASCII characters without spaces, or sent
// in several headers, with 400 (ErrInvalidRequestID), and an id the client
// used within its retention with 409 (ErrDuplicateRequestID). Of
// concurrent requests with one id, exactly one goes through. When the
// store fails, or is full, the request is refused with 503 (ErrUnavailable):
// the wrapper fails closed, it never lets an id through unchecked.
//
// An id is used up only by a request that goes on to the handler: when a
// later wrapper of the stack refuses the request, the id is forgotten again,
// so a corrected retry with the same id goes through whatever the order of
// the stack.
//
// It needs the caller's identity and resolves it as RequireScope does:
// where g cannot establish one it refuses with 401 before looking at the id.
func (g *Guard) RequestID(store ReplayStore, retention time.Duration) Middleware {
	if retention <= 0 {
		retention = 10 * time.Minute
	}
	if store == nil {
		store = &MemoryReplayStore{now: g.now}
	}
	// Two wrappers on one store recognize the ids each other recorded for
	// the same request. A store whose type cannot be compared with ==
	// (which would panic) gets an identity of this wrapper's own.
	var same any = store
	if !reflect.TypeOf(store).Comparable() {
		same = new(byte)
	}
	return g.wrap(func(s *state, r *http.Request) error {
		c, err := g.identify(s, r)
		if err != nil {
			return err
		}
		vs := r.Header["X-Request-Id"]
		switch {
		case len(vs) == 0 || len(vs) == 1 && vs[0] == "":
			return ErrMissingRequestID
		case len(vs) > 1 || len(vs[0]) > maxRequestIDLen || !wire.ValidCredential(vs[0]):
			return ErrInvalidRequestID
		}
		h := heldID{store, same, c.ID, vs[0]}
		for _, x := range s.held {
			if x.same == same && x.namespace == h.namespace && x.id == h.id {
				return nil // an outer wrapper on the same store recorded it
			}
		}
		fresh, err := store.Seen(r.Context(), h.namespace, h.id, retention)
		switch {
		case err != nil:
			return fmt.Errorf("%w: replay store: %w", ErrUnavailable, err)
		case !fresh:
			return ErrDuplicateRequestID
		}
		s.held = append(s.held, h)
		return nil
	})
}

// heldID is a request id a request recorded.
type heldID struct {
	store         ReplayStore
	same          any // the store, or a stand-in when it is not comparable
	namespace, id string
}

// release forgets the request ids the request recorded: it is being
// refused, and its ids must not be used up by the refusal.
func (s *state) release() {
	if len(s.held) == 0 {
		return
	}
	ctx := context.WithoutCancel(s)
	for _, h := range s.held {
		h.store.Forget(ctx, h.namespace, h.id) // on failure the id stays used: closed
	}
	s.held = nil
}

// defaultReplayCapacity is the capacity of the store RequestID makes when
// given none.
const defaultReplayCapacity = 100_000

// MemoryReplayStore is the in-memory ReplayStore. It holds at most its
// capacity of ids, each for its ttl, in about 100 bytes apiece (ids are
// kept as 128-bit digests of namespace and id, whatever their length).
//
// When it is full it refuses new ids with ErrReplayStoreFull rather than
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

// NewMemoryReplayStore returns an empty MemoryReplayStore holding at most
// size ids, reading time from now (time.Now if nil). It fails if size is not
// positive.
func NewMemoryReplayStore(size int, now func() time.Time) (*MemoryReplayStore, error) {
	if size <= 0 {
		return nil, fmt.Errorf("apiguard: replay store size must be positive, got %d", size)
	}
	return &MemoryReplayStore{max: size, now: now}, nil
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
		return false, ErrReplayStoreFull
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

// AppKey returns the Scheme of seed 003's x-app-key header: the public key
// that identifies the client system calling. The key is looked up in keys
// and must be a PublishableKey (a secret server key sent in a header meant
// for a public one is refused).
//
// No x-app-key is ErrMissingAppKey; an unknown, revoked, expired or server
// key, a malformed one (control characters, spaces, over 1024 bytes), or
// several x-app-key headers is ErrInvalidAppKey; both are 401, and match
// ErrMissingKey and ErrInvalidKey too. A KeyStore failure is ErrUnavailable.
// AppKey has no WWW-Authenticate challenge; set one with WithChallenge.
func AppKey(keys KeyStore) Scheme { return &appKeyScheme{keys} }

type appKeyScheme struct{ keys KeyStore }

func (a *appKeyScheme) validate() error {
	if a.keys == nil {
		return errors.New("apiguard: AppKey needs a KeyStore")
	}
	return nil
}

func (a *appKeyScheme) Authenticate(r *http.Request) (*Client, error) {
	vs := r.Header["X-App-Key"]
	switch {
	case len(vs) == 0 || len(vs) == 1 && vs[0] == "":
		return nil, errNoAppKey
	case len(vs) > 1 || !wire.ValidCredential(vs[0]):
		return nil, errBadAppKey
	}
	c, err := lookupKey(r, a.keys, vs[0], PublishableKey)
	if errors.Is(err, ErrInvalidKey) {
		return nil, errBadAppKey
	}
	return c, err
}

var _ ReplayStore = (*MemoryReplayStore)(nil)
