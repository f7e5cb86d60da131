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
	"slices"
	"strings"
	"sync"
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
// most its capacity of keys (WithCapacity), and is safe for concurrent use.
// The zero MemoryKeyStore is not usable; make one with NewMemoryKeyStore.
type MemoryKeyStore struct {
	mu       sync.RWMutex
	byDigest map[[sha256.Size]byte]*keyEntry
	byID     map[string]*keyEntry
	secrets  map[string][]string // client id -> key ids of its KeepSecret keys
	max      int
	now      func() time.Time
}

type keyEntry struct {
	digest   [sha256.Size]byte
	client   *Client
	notAfter time.Time
	revoked  bool   // notAfter was set by Revoke
	secret   string // "" unless KeepSecret
}

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
		byDigest: make(map[[sha256.Size]byte]*keyEntry),
		byID:     make(map[string]*keyEntry),
		secrets:  make(map[string][]string),
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
	c.Scopes = slices.Clone(c.Scopes)
	c.IPs = slices.Clone(c.IPs)
	if c.KeyID == "" {
		var b [8]byte
		rand.Read(b[:])
		c.KeyID = "key_" + hex.EncodeToString(b[:])
	}
	if c.Env == AnyEnvironment {
		c.Env = EnvironmentOf(spec.Key)
	}
	e := &keyEntry{digest: sha256.Sum256([]byte(spec.Key)), client: &c, notAfter: spec.NotAfter}
	if spec.KeepSecret {
		e.secret = spec.Key
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.byDigest[e.digest] != nil:
		return errors.New("apiguard: key already stored")
	case s.byID[c.KeyID] != nil:
		return fmt.Errorf("apiguard: key id %q already stored", c.KeyID)
	case len(s.byID) >= s.max:
		return ErrStoreFull
	}
	s.byDigest[e.digest] = e
	s.byID[c.KeyID] = e
	if e.secret != "" {
		s.secrets[c.ID] = append(s.secrets[c.ID], c.KeyID)
	}
	return nil
}

// Revoke makes the key with id keyID stop working at at: a rotated key
// keeps working through its overlap (88Pay's 24 hours) and then stops. A
// zero at revokes the key now, and removes it from the store. Revoke
// reports whether the key was stored.
func (s *MemoryKeyStore) Revoke(keyID string, at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byID[keyID]
	if e == nil {
		return false
	}
	if !at.IsZero() {
		// Entries are read without the lock by callers holding their
		// client, so replace rather than modify.
		ne := *e
		ne.notAfter = at
		ne.revoked = true
		s.byDigest[e.digest] = &ne
		s.byID[keyID] = &ne
		return true
	}
	delete(s.byID, keyID)
	delete(s.byDigest, e.digest)
	if e.secret != "" {
		ids := slices.DeleteFunc(s.secrets[e.client.ID], func(id string) bool { return id == keyID })
		if len(ids) == 0 {
			delete(s.secrets, e.client.ID)
		} else {
			s.secrets[e.client.ID] = ids
		}
	}
	return true
}

// len returns the number of keys stored, expired ones included.
func (s *MemoryKeyStore) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID)
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

// missEntry stands in for an unknown key so that an unknown key and a wrong
// one take the same path.
var missEntry = &keyEntry{digest: [sha256.Size]byte{0xff}}

// Lookup implements KeyStore.
func (s *MemoryKeyStore) Lookup(_ context.Context, key string) (*Client, error) {
	d := digestKey(key)
	s.mu.RLock()
	e, ok := s.byDigest[d]
	s.mu.RUnlock()
	if !ok {
		e = missEntry
	}
	match := subtle.ConstantTimeCompare(e.digest[:], d[:]) == 1
	switch {
	case !match || !ok:
		return nil, errUnknownKey
	case !e.notAfter.IsZero() && !s.now().Before(e.notAfter) && e.revoked:
		return nil, errRevokedKey
	case !e.notAfter.IsZero() && !s.now().Before(e.notAfter):
		return nil, errExpiredKey
	}
	return e.client, nil
}

// Secrets implements KeyStore. It looks at the client's own keys only.
func (s *MemoryKeyStore) Secrets(_ context.Context, clientID string) ([]Secret, error) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := s.secrets[clientID]
	out := make([]Secret, 0, len(ids))
	for _, id := range ids {
		if e := s.byID[id]; e != nil && (e.notAfter.IsZero() || now.Before(e.notAfter)) {
			out = append(out, Secret{Key: e.secret, Client: e.client})
		}
	}
	// Give callers a stable order.
	slices.SortFunc(out, func(a, b Secret) int { return strings.Compare(a.Client.KeyID, b.Client.KeyID) })
	return out, nil
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
