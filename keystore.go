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
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Environment says whether a key belongs to the sandbox or to live traffic.
// Sandbox and live keys never cross: a Guard set to one refuses keys of the
// other (and keys of no known environment) as invalid.
type Environment uint8

const (
	// AnyEnvironment is the zero value: a key of no known environment, or
	// a Guard that accepts every environment.
	AnyEnvironment Environment = iota
	Sandbox
	Live
)

// String returns "sandbox", "live" or "any".
func (e Environment) String() string {
	switch e {
	case Sandbox:
		return "sandbox"
	case Live:
		return "live"
	}
	return "any"
}

// EnvironmentOf tells a key's environment from its prefix, as payment APIs
// mark them: "sandbox_", "sk_test_", "pk_test_", "SB-" or a "_test_" part
// mean Sandbox; "live_", "sk_live_", "pk_live_" or a "_live_" part mean
// Live; anything else is AnyEnvironment.
func EnvironmentOf(key string) Environment {
	switch {
	case strings.HasPrefix(key, "sandbox_"), strings.HasPrefix(key, "SB-"), strings.HasPrefix(key, "sk_test_"),
		strings.HasPrefix(key, "pk_test_"), strings.Contains(key, "_test_"):
		return Sandbox
	case strings.HasPrefix(key, "live_"), strings.HasPrefix(key, "sk_live_"), strings.HasPrefix(key, "pk_live_"),
		strings.Contains(key, "_live_"):
		return Live
	}
	return AnyEnvironment
}

// KeyKind separates secret server keys from publishable client keys.
type KeyKind uint8

const (
	// ServerKey is a secret key for back-end calls (the zero value).
	ServerKey KeyKind = iota
	// PublishableKey is a client key that front-end code may expose
	// (Midtrans' client_key). It never authorizes a server-key route, and
	// a server key never authorizes a client-key route.
	PublishableKey
)

// Client is the authenticated caller of a request, found in its context with
// ClientFrom. Handlers use ID to keep each client's data apart.
//
// A Client returned by a KeyStore or ClientFrom is shared: treat it as read
// only.
type Client struct {
	ID     string         // the account, merchant or user the key belongs to
	KeyID  string         // the id of the key that matched (never the key)
	Scopes []string       // permissions, such as "payment:create"
	Role   string         // a role, such as "gold" (prices vary by role)
	Env    Environment    // sandbox or live
	IPs    []netip.Prefix // registered addresses; empty means any address
	Kind   KeyKind        // server or publishable key
}

// HasScope reports whether c holds scope.
func (c *Client) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

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
// most its capacity of keys, and is safe for concurrent use.
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
	secret   string // "" unless KeepSecret
}

// ErrStoreFull is returned by MemoryKeyStore.Add when the store holds its
// capacity of keys.
var ErrStoreFull = errors.New("apiguard: key store full")

// MemoryKeyStoreOption configures a MemoryKeyStore.
type MemoryKeyStoreOption func(*MemoryKeyStore)

// MaxKeys sets the capacity of a MemoryKeyStore. The default is 100,000.
func MaxKeys(n int) MemoryKeyStoreOption { return func(s *MemoryKeyStore) { s.max = n } }

// KeyStoreClock sets the clock a MemoryKeyStore checks expiry with. The
// default is time.Now.
func KeyStoreClock(now func() time.Time) MemoryKeyStoreOption {
	return func(s *MemoryKeyStore) { s.now = now }
}

// NewMemoryKeyStore returns an empty MemoryKeyStore. It fails if the
// capacity is not positive or the clock is nil.
func NewMemoryKeyStore(opts ...MemoryKeyStoreOption) (*MemoryKeyStore, error) {
	s := &MemoryKeyStore{
		byDigest: make(map[[sha256.Size]byte]*keyEntry),
		byID:     make(map[string]*keyEntry),
		secrets:  make(map[string][]string),
		max:      100_000,
		now:      time.Now,
	}
	for _, o := range opts {
		o(s)
	}
	if s.max <= 0 {
		return nil, fmt.Errorf("apiguard: MaxKeys must be positive, got %d", s.max)
	}
	if s.now == nil {
		return nil, errors.New("apiguard: KeyStoreClock needs a clock")
	}
	return s, nil
}

// Add stores a key. It fails if the key or client id is empty, if the key or
// key id is already stored, or if the store is full.
func (s *MemoryKeyStore) Add(spec KeySpec) error {
	if spec.Key == "" || spec.Client.ID == "" {
		return errors.New("apiguard: a key needs a secret and a client id")
	}
	c := spec.Client
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

// Expire makes the key with id keyID stop working at t, as after a rotation
// with an overlap. It reports whether the key was stored.
func (s *MemoryKeyStore) Expire(keyID string, t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byID[keyID]
	if e == nil {
		return false
	}
	// Entries are read without the lock by callers holding their client, so
	// replace rather than modify.
	ne := *e
	ne.notAfter = t
	s.byDigest[e.digest] = &ne
	s.byID[keyID] = &ne
	return true
}

// Revoke removes the key with id keyID at once. It reports whether the key
// was stored.
func (s *MemoryKeyStore) Revoke(keyID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byID[keyID]
	if e == nil {
		return false
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

// Len returns the number of keys stored, expired ones included.
func (s *MemoryKeyStore) Len() int {
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
	if !match || !ok || (!e.notAfter.IsZero() && !s.now().Before(e.notAfter)) {
		return nil, ErrInvalidKey
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

// CachedKeyStore puts a bounded LRU cache in front of a slow KeyStore (a
// database, a remote service). It caches found clients for a TTL and unknown
// keys for a shorter negative TTL, keyed by the key's SHA-256 digest (the
// plaintext is never held). Backend failures are not cached. Secrets is not
// cached.
//
// A key revoked in the backing store keeps working from the cache until its
// entry expires; call Forget after a revocation to stop it at once.
//
// It starts no goroutine: entries expire when read, and the LRU bound caps
// memory. It is safe for concurrent use.
type CachedKeyStore struct {
	next     KeyStore
	cache    *lru.Cache[[sha256.Size]byte, cacheEntry]
	ttl, neg time.Duration
	now      func() time.Time
}

type cacheEntry struct {
	client  *Client // nil: a cached miss
	expires time.Time
}

// CacheOption configures a CachedKeyStore.
type CacheOption func(*CachedKeyStore)

// CacheTTL sets how long found clients (positive) and unknown keys
// (negative) are cached. A negative TTL of zero disables negative caching.
// The defaults are 30 seconds and 5 seconds.
func CacheTTL(positive, negative time.Duration) CacheOption {
	return func(c *CachedKeyStore) { c.ttl, c.neg = positive, negative }
}

// CacheClock sets the clock of a CachedKeyStore. The default is time.Now.
func CacheClock(now func() time.Time) CacheOption {
	return func(c *CachedKeyStore) { c.now = now }
}

// NewCachedKeyStore returns a CachedKeyStore over next holding at most size
// entries. It fails if next is nil, size is not positive, or a TTL is
// negative.
func NewCachedKeyStore(next KeyStore, size int, opts ...CacheOption) (*CachedKeyStore, error) {
	if next == nil {
		return nil, errors.New("apiguard: NewCachedKeyStore needs a KeyStore")
	}
	c := &CachedKeyStore{next: next, ttl: 30 * time.Second, neg: 5 * time.Second, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	if c.ttl <= 0 || c.neg < 0 || c.now == nil {
		return nil, errors.New("apiguard: CacheTTL needs a positive TTL and a non-negative negative TTL, CacheClock a clock")
	}
	cache, err := lru.New[[sha256.Size]byte, cacheEntry](size)
	if err != nil {
		return nil, fmt.Errorf("apiguard: cache size %d: %w", size, err)
	}
	c.cache = cache
	return c, nil
}

// Lookup implements KeyStore.
func (c *CachedKeyStore) Lookup(ctx context.Context, key string) (*Client, error) {
	d := digestKey(key)
	now := c.now()
	if e, ok := c.cache.Get(d); ok && now.Before(e.expires) {
		if e.client == nil {
			return nil, ErrInvalidKey
		}
		return e.client, nil
	}
	client, err := c.next.Lookup(ctx, key)
	switch {
	case err == nil:
		c.cache.Add(d, cacheEntry{client, now.Add(c.ttl)})
	case errors.Is(err, ErrInvalidKey) && c.neg > 0:
		c.cache.Add(d, cacheEntry{nil, now.Add(c.neg)})
	}
	return client, err
}

// Secrets implements KeyStore by asking the backing store.
func (c *CachedKeyStore) Secrets(ctx context.Context, clientID string) ([]Secret, error) {
	return c.next.Secrets(ctx, clientID)
}

// Forget drops key from the cache, so that a revocation takes effect at once.
func (c *CachedKeyStore) Forget(key string) {
	c.cache.Remove(sha256.Sum256([]byte(key)))
}

// Len returns the number of cached entries.
func (c *CachedKeyStore) Len() int { return c.cache.Len() }

var (
	_ KeyStore = (*MemoryKeyStore)(nil)
	_ KeyStore = (*CachedKeyStore)(nil)
)
