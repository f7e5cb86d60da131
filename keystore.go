package apiguard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A KeyStore finds the client that owns an API key. Implementations must be
// safe for concurrent use.
type KeyStore interface {
	// Lookup returns the client owning the live key key. When no live key
	// matches (unknown, revoked or expired) it returns an error matching
	// ErrInvalidKey; any other error is a backend failure, answered 503
	// (the guard fails closed). It must take the same time for an unknown
	// key as for a wrong one.
	Lookup(ctx context.Context, key string) (*Client, error)

	// Secrets returns the live keys, in plaintext, of the client with the
	// given ID, for schemes in which the key is never sent (a digest made
	// with it is). Only keys stored for that purpose are returned. An
	// unknown client has no secrets: an empty slice and a nil error.
	Secrets(ctx context.Context, clientID string) ([]Secret, error)
}

// Secret is a key in plaintext with the client it stands for.
type Secret struct {
	Key    string
	Client *Client
}

// KeySpec describes a key to add to a MemoryKeyStore.
type KeySpec struct {
	// Key is the secret as callers present it. Only its SHA-256 digest is
	// kept unless KeepSecret is set.
	Key string
	// Client is the identity the key stands for. Client.ID is required. An
	// empty Client.KeyID gets a random one; a zero Client.Env is taken from
	// the key's prefix (EnvironmentOf).
	Client Client
	// NotAfter, when set, is when the key stops working: a rotated key keeps
	// working through its overlap (88Pay's 24 hours) and then stops.
	NotAfter time.Time
	// KeepSecret keeps the key in plaintext, for hash schemes that need it
	// (KeyStore.Secrets).
	KeepSecret bool
}

// MemoryKeyStore is the in-memory KeyStore. It keeps the SHA-256 digest of
// each key (and the plaintext only for keys added with KeepSecret), holds at
// most its capacity of keys (WithCapacity; Add fails with ErrStoreFull
// beyond it), and is safe for concurrent use. The zero MemoryKeyStore is
// not usable; make one with NewMemoryKeyStore.
//
// Its memory holds no pointer per key, so that a store of a million keys
// costs the garbage collector no more than a store of one: a key with ids
// of about ten bytes costs about 250 bytes, in tables the collector does
// not scan. Lists of scopes and of registered IPs are kept once however many keys
// share them. The Clients of the 1,024 keys last looked up (at most) are
// kept too, so that a key looked up again costs no allocation. A Client
// that Lookup or Secrets returns may be shared with other calls, and its
// Scopes and IPs with other keys' Clients: callers must not modify them.
type MemoryKeyStore struct {
	mu       sync.RWMutex
	seed     maphash.Seed
	byDigest map[[sha256.Size]byte]uint32 // digest of the key -> slot
	byID     map[uint64]uint32            // hash of the key id -> first slot of the chain by nextID
	secrets  map[uint64]uint32            // hash of the client id -> first slot of its KeepSecret keys, by nextSecret
	slots    []keySlot
	free     []uint32 // slots to reuse
	text     arena
	scopes   interned[string]
	ips      interned[netip.Prefix]
	recent   [recentClients]atomic.Pointer[recentClient]
	max      int
	now      func() time.Time
}

// keySlot is a stored key: its digest, when it stops, and its client,
// whose strings lie in one block of the arena (ID, key id, role, then the
// plaintext of a KeepSecret key). It holds no pointer.
type keySlot struct {
	digest             [sha256.Size]byte
	sec                int64 // NotAfter, when flags has slotExpires
	nsec               int32
	block              span
	idLen, keyIDLen    uint32
	roleLen            uint32
	scopes, ips        uint32 // lists in the store's interned tables
	nextID, nextSecret uint32 // the next slot of the same chain, or noSlot
	gen                uint32 // counts the keys the slot has held
	env                Environment
	flags              uint8
}

const (
	slotUsed        = 1 << iota
	slotExpires     // the key stops at sec, nsec
	slotRevoked     // the stop was set by Revoke
	slotPublishable // Client.Publishable
	slotSecret      // the plaintext is kept
)

// recentClients is how many Clients of keys looked up a MemoryKeyStore
// keeps, by slot.
const recentClients = 1024

// recentClient is the Client of the key slot held in its generation gen.
type recentClient struct {
	slot, gen uint32
	client    *Client
}

// noSlot ends a chain of slots.
const noSlot = ^uint32(0)

// defaultKeyStoreCapacity is the capacity of a MemoryKeyStore unless
// WithCapacity says otherwise.
const defaultKeyStoreCapacity = 100_000

// NewMemoryKeyStore returns an empty MemoryKeyStore. Its options are
// WithCapacity (the most keys it holds, 100,000 by default; Add fails with
// ErrStoreFull past it) and WithClock (the clock it checks expiry with,
// time.Now by default). It fails if an option is out of range or does not
// apply to it.
func NewMemoryKeyStore(opts ...Option) (*MemoryKeyStore, error) {
	c, err := configure(toKeyStore, opts)
	if err != nil {
		return nil, err
	}
	return &MemoryKeyStore{
		seed:     maphash.MakeSeed(),
		byDigest: make(map[[sha256.Size]byte]uint32),
		byID:     make(map[uint64]uint32),
		secrets:  make(map[uint64]uint32),
		scopes:   newInterned(scopesKey),
		ips:      newInterned(ipsKey),
		max:      c.capacityOr(defaultKeyStoreCapacity),
		now:      c.clock(),
	}, nil
}

// Add stores a key. It fails if the key or client id is empty, if the key or
// key id is already stored, or if the store is full.
func (s *MemoryKeyStore) Add(spec KeySpec) error {
	if spec.Key == "" || spec.Client.ID == "" {
		return errors.New("apiguard: a key needs a secret and a client id")
	}
	c := spec.Client
	for _, p := range c.IPs {
		if err := checkPrefix(p); err != nil {
			return fmt.Errorf("apiguard: the registered IPs of key %q: %w", c.KeyID, err)
		}
	}
	if c.KeyID == "" {
		var b [8]byte
		rand.Read(b[:])
		c.KeyID = "key_" + hex.EncodeToString(b[:])
	}
	if c.Env == AnyEnvironment {
		c.Env = EnvironmentOf(spec.Key)
	}
	sl := keySlot{
		digest: sha256.Sum256([]byte(spec.Key)),
		idLen:  uint32(len(c.ID)), keyIDLen: uint32(len(c.KeyID)), roleLen: uint32(len(c.Role)),
		env: c.Env, flags: slotUsed,
	}
	if !spec.NotAfter.IsZero() {
		sl.sec, sl.nsec, sl.flags = spec.NotAfter.Unix(), int32(spec.NotAfter.Nanosecond()), sl.flags|slotExpires
	}
	if c.Publishable {
		sl.flags |= slotPublishable
	}
	secret := ""
	if spec.KeepSecret {
		secret, sl.flags = spec.Key, sl.flags|slotSecret
	}
	idHash, clientHash := maphash.String(s.seed, c.KeyID), maphash.String(s.seed, c.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byDigest[sl.digest]; ok {
		return errors.New("apiguard: key already stored")
	}
	if s.findID(idHash, c.KeyID) != noSlot {
		return fmt.Errorf("apiguard: key id %q already stored", c.KeyID)
	}
	if len(s.byDigest) >= s.max {
		return ErrStoreFull
	}
	sl.block = s.text.add(c.ID, c.KeyID, c.Role, secret)
	sl.scopes, sl.ips = s.scopes.add(c.Scopes), s.ips.add(c.IPs)
	var i uint32
	if n := len(s.free); n > 0 {
		i, s.free = s.free[n-1], s.free[:n-1]
		sl.gen = s.slots[i].gen + 1
	} else {
		i = uint32(len(s.slots))
		s.slots = append(s.slots, keySlot{})
	}
	sl.nextID = s.head(s.byID, idHash)
	s.byID[idHash] = i
	sl.nextSecret = noSlot
	if spec.KeepSecret {
		sl.nextSecret = s.head(s.secrets, clientHash)
		s.secrets[clientHash] = i
	}
	s.slots[i] = sl
	s.byDigest[sl.digest] = i
	return nil
}

// head returns the first slot of the chain of h in m, or noSlot.
func (s *MemoryKeyStore) head(m map[uint64]uint32, h uint64) uint32 {
	if i, ok := m[h]; ok {
		return i
	}
	return noSlot
}

// findID returns the slot of the key id keyID, whose hash is h, or noSlot.
func (s *MemoryKeyStore) findID(h uint64, keyID string) uint32 {
	for i := s.head(s.byID, h); i != noSlot; i = s.slots[i].nextID {
		if s.keyID(&s.slots[i]) == keyID {
			return i
		}
	}
	return noSlot
}

// unlink removes slot i from the chain of h in m, next giving each slot's
// successor.
func (s *MemoryKeyStore) unlink(m map[uint64]uint32, h uint64, i uint32, next func(*keySlot) *uint32) {
	p := s.head(m, h)
	if p == i {
		if n := *next(&s.slots[i]); n != noSlot {
			m[h] = n
		} else {
			delete(m, h)
		}
		return
	}
	for p != noSlot {
		np := next(&s.slots[p])
		if *np == i {
			*np = *next(&s.slots[i])
			return
		}
		p = *np
	}
}

// Revoke makes the key with id keyID stop working at at: a rotated key
// keeps working through its overlap (88Pay's 24 hours) and then stops. A
// zero at revokes the key now, and removes it from the store. Revoke
// reports whether the key was stored.
func (s *MemoryKeyStore) Revoke(keyID string, at time.Time) bool {
	h := maphash.String(s.seed, keyID)
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.findID(h, keyID)
	if i == noSlot {
		return false
	}
	sl := &s.slots[i]
	if !at.IsZero() {
		sl.sec, sl.nsec = at.Unix(), int32(at.Nanosecond())
		sl.flags |= slotExpires | slotRevoked
		return true
	}
	s.unlink(s.byID, h, i, func(sl *keySlot) *uint32 { return &sl.nextID })
	if sl.flags&slotSecret != 0 {
		s.unlink(s.secrets, maphash.String(s.seed, s.clientID(sl)), i, func(sl *keySlot) *uint32 { return &sl.nextSecret })
	}
	delete(s.byDigest, sl.digest)
	s.scopes.drop(sl.scopes)
	s.ips.drop(sl.ips)
	s.text.drop(sl.block)
	*sl = keySlot{gen: sl.gen}
	s.free = append(s.free, i)
	if s.text.wasteful() {
		s.compact()
	}
	return true
}

// compact copies the live blocks of the arena into a new one, leaving the
// old one to the strings of clients already handed out.
func (s *MemoryKeyStore) compact() {
	var fresh arena
	for i := range s.slots {
		if sl := &s.slots[i]; sl.flags&slotUsed != 0 {
			sl.block = fresh.add(s.text.get(sl.block))
		}
	}
	s.text = fresh
}

// The strings of a slot, read with the lock held.
func (s *MemoryKeyStore) clientID(sl *keySlot) string { return s.text.get(sl.block)[:sl.idLen] }
func (s *MemoryKeyStore) keyID(sl *keySlot) string {
	return s.text.get(sl.block)[sl.idLen : sl.idLen+sl.keyIDLen]
}

// client returns a new Client of slot sl, with the lock held.
func (s *MemoryKeyStore) client(sl *keySlot) (*Client, string) {
	b := s.text.get(sl.block)
	a, k, r := sl.idLen, sl.idLen+sl.keyIDLen, sl.idLen+sl.keyIDLen+sl.roleLen
	return &Client{
		ID:          b[:a],
		KeyID:       b[a:k],
		Role:        b[k:r],
		Scopes:      s.scopes.vals[sl.scopes],
		Env:         sl.env,
		IPs:         s.ips.vals[sl.ips],
		Publishable: sl.flags&slotPublishable != 0,
	}, b[r:]
}

// recentClient returns the Client of slot i, sl, from the recent Clients
// or made anew and kept there, with the lock held (to read).
func (s *MemoryKeyStore) recentClient(i uint32, sl *keySlot) *Client {
	r := &s.recent[i%recentClients]
	if rc := r.Load(); rc != nil && rc.slot == i && rc.gen == sl.gen {
		return rc.client
	}
	c, _ := s.client(sl)
	r.Store(&recentClient{slot: i, gen: sl.gen, client: c})
	return c
}

// stopped reports whether sl has stopped working at now, with the lock
// held.
func (sl *keySlot) stopped(now time.Time) bool {
	return sl.flags&slotExpires != 0 && !now.Before(time.Unix(sl.sec, int64(sl.nsec)))
}

// len returns the number of keys stored, expired ones included.
func (s *MemoryKeyStore) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byDigest)
}

// digestKey returns the SHA-256 digest of key without allocating for keys
// of common lengths.
func digestKey(key string) [sha256.Size]byte {
	var buf [128]byte
	if len(key) <= len(buf) {
		n := copy(buf[:], key)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(key))
}

// missDigest stands in for the digest of an unknown key so that an unknown
// key and a wrong one take the same path.
var missDigest = [sha256.Size]byte{0xff}

// Lookup implements KeyStore.
func (s *MemoryKeyStore) Lookup(_ context.Context, key string) (*Client, error) {
	d := digestKey(key)
	var c *Client
	var stopped, revoked bool
	s.mu.RLock()
	i, ok := s.byDigest[d]
	stored := &missDigest
	if ok {
		sl := &s.slots[i]
		stored = &sl.digest
		if sl.flags&slotExpires != 0 {
			stopped, revoked = sl.stopped(s.now()), sl.flags&slotRevoked != 0
		}
		if !stopped {
			c = s.recentClient(i, sl)
		}
	}
	match := subtle.ConstantTimeCompare(stored[:], d[:]) == 1
	s.mu.RUnlock()
	switch {
	case !match || !ok:
		return nil, errUnknownKey
	case stopped && revoked:
		return nil, errRevokedKey
	case stopped:
		return nil, errExpiredKey
	}
	return c, nil
}

// Secrets implements KeyStore. It looks at the client's own keys only.
func (s *MemoryKeyStore) Secrets(_ context.Context, clientID string) ([]Secret, error) {
	now := s.now()
	h := maphash.String(s.seed, clientID)
	s.mu.RLock()
	var out []Secret
	for i := s.head(s.secrets, h); i != noSlot; i = s.slots[i].nextSecret {
		sl := &s.slots[i]
		if s.clientID(sl) != clientID || sl.stopped(now) {
			continue
		}
		c, key := s.client(sl)
		out = append(out, Secret{Key: key, Client: c})
	}
	s.mu.RUnlock()
	if out == nil {
		out = []Secret{}
	}
	// Give callers a stable order.
	slices.SortFunc(out, func(a, b Secret) int { return strings.Compare(a.Client.KeyID, b.Client.KeyID) })
	return out, nil
}

// An arena holds strings in chunks that the garbage collector does not
// scan: a string handed out points into a chunk, and keeps it alive. Bytes
// once written are never written again, so strings handed out never
// change; freed blocks are reclaimed by copying the live ones into a new
// arena once they are the greater part (see wasteful).
type arena struct {
	chunks     []*strings.Builder
	live, dead int
}

// span is a block of an arena.
type span struct{ chunk, off, n uint32 }

// arenaChunk is the size of an arena's chunks; a longer block has a chunk
// of its own.
const arenaChunk = 64 << 10

// add writes parts one after the other as one block.
func (a *arena) add(parts ...string) span {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var b *strings.Builder
	if k := len(a.chunks); k > 0 && a.chunks[k-1].Cap()-a.chunks[k-1].Len() >= n {
		b = a.chunks[k-1]
	} else {
		// A full chunk is never grown, which would move its bytes.
		b = new(strings.Builder)
		b.Grow(max(n, arenaChunk))
		a.chunks = append(a.chunks, b)
	}
	sp := span{chunk: uint32(len(a.chunks) - 1), off: uint32(b.Len()), n: uint32(n)}
	for _, p := range parts {
		b.WriteString(p)
	}
	a.live += n
	return sp
}

// get returns the block of sp.
func (a *arena) get(sp span) string {
	return a.chunks[sp.chunk].String()[sp.off : sp.off+sp.n]
}

// drop frees the block of sp.
func (a *arena) drop(sp span) {
	a.live -= int(sp.n)
	a.dead += int(sp.n)
}

// wasteful reports whether freed blocks are most of the arena.
func (a *arena) wasteful() bool { return a.dead > arenaChunk && a.dead > a.live }

// interned holds lists shared by keys: each distinct list once, counted by
// the keys that hold it, and dropped with the last. List 0 is the empty
// list.
type interned[T any] struct {
	key   func([]T) string
	index map[string]uint32
	vals  [][]T
	refs  []int
	free  []uint32
}

func newInterned[T any](key func([]T) string) interned[T] {
	return interned[T]{key: key, index: map[string]uint32{}, vals: [][]T{nil}, refs: []int{0}}
}

// add returns the list equal to l, holding it once more.
func (t *interned[T]) add(l []T) uint32 {
	if len(l) == 0 {
		return 0
	}
	k := t.key(l)
	i, ok := t.index[k]
	if !ok {
		l = slices.Clip(slices.Clone(l))
		if n := len(t.free); n > 0 {
			i, t.free = t.free[n-1], t.free[:n-1]
			t.vals[i], t.refs[i] = l, 0
		} else {
			i = uint32(len(t.vals))
			t.vals, t.refs = append(t.vals, l), append(t.refs, 0)
		}
		t.index[k] = i
	}
	t.refs[i]++
	return i
}

// drop holds list i once less.
func (t *interned[T]) drop(i uint32) {
	if i == 0 {
		return
	}
	if t.refs[i]--; t.refs[i] == 0 {
		delete(t.index, t.key(t.vals[i]))
		t.vals[i] = nil
		t.free = append(t.free, i)
	}
}

// scopesKey and ipsKey give the lists of scopes and of prefixes a key in
// which no two lists meet.
func scopesKey(l []string) string {
	var b []byte
	for _, sc := range l {
		b = strconv.AppendInt(b, int64(len(sc)), 10)
		b = append(b, ':')
		b = append(b, sc...)
	}
	return string(b)
}

func ipsKey(l []netip.Prefix) string {
	var b []byte
	for _, p := range l {
		b = p.AppendTo(b)
		b = append(b, ',')
	}
	return string(b)
}

// GenerateKey returns a new key: prefix followed by 43 characters of
// base64url holding 256 bits from crypto/rand, such as
// "sandbox_sk_test_Q3b...". The prefix may hold only letters, digits, '_'
// and '-', so the key is safe in headers, URLs and Basic credentials.
func GenerateKey(prefix string) (string, error) {
	for _, r := range prefix {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return "", fmt.Errorf("apiguard: key prefix %q holds %q", prefix, r)
		}
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

var _ KeyStore = (*MemoryKeyStore)(nil)
