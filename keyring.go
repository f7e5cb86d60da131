package apiguard

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/apiguard/apiguard/internal/wire"
)

// maxRingKeys caps the keys of a KeyRing: enough for a signing key, the one
// it replaced and a few published ahead of use.
const maxRingKeys = 16

// A SigningKey is an ES256 (ECDSA P-256) key that signs or verifies
// session tokens, with the key id ("kid") that names it in token headers
// and in the JWKS. A SigningKey made from a private key signs and verifies;
// one made from a public key only verifies. A SigningKey is immutable and
// safe for concurrent use.
type SigningKey struct {
	id   string
	priv *ecdsa.PrivateKey // nil for a verification key
	pub  *ecdsa.PublicKey
	x, y string // base64url coordinates, for the JWKS
}

// GenerateSigningKey returns a new P-256 signing key named id. An empty id
// gets the key's RFC 7638 thumbprint.
func GenerateSigningKey(id string) (*SigningKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("apiguard: generating a signing key: %w", err)
	}
	return newSigningKey(id, priv, &priv.PublicKey)
}

// ParseSigningKey returns the key in the first PEM block of data, named id (an
// empty id gets the key's RFC 7638 thumbprint, so every service that loads
// the same key names it alike). The block is a P-256 private key, as "EC
// PRIVATE KEY" (SEC 1) or "PRIVATE KEY" (PKCS #8), which signs and verifies,
// or a P-256 public key, as "PUBLIC KEY" (PKIX), which only verifies. Other
// blocks, curves and key types are refused.
func ParseSigningKey(data []byte, id string) (*SigningKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("apiguard: no PEM block in signing key data")
	}
	switch block.Type {
	case "EC PRIVATE KEY":
		priv, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("apiguard: signing key: %w", err)
		}
		return newSigningKey(id, priv, &priv.PublicKey)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("apiguard: signing key: %w", err)
		}
		priv, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("apiguard: signing key is a %T, want an ECDSA P-256 key", k)
		}
		return newSigningKey(id, priv, &priv.PublicKey)
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("apiguard: signing key: %w", err)
		}
		pub, ok := k.(*ecdsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("apiguard: signing key is a %T, want an ECDSA P-256 key", k)
		}
		return newSigningKey(id, nil, pub)
	}
	return nil, fmt.Errorf("apiguard: PEM block %q is not a signing key", block.Type)
}

func newSigningKey(id string, priv *ecdsa.PrivateKey, pub *ecdsa.PublicKey) (*SigningKey, error) {
	if pub.Curve != elliptic.P256() {
		return nil, errors.New("apiguard: signing keys are ECDSA P-256 (ES256)")
	}
	point, err := pub.Bytes() // 0x04 || X || Y
	if err != nil || len(point) != 65 {
		return nil, errors.New("apiguard: invalid P-256 public key")
	}
	k := &SigningKey{
		priv: priv,
		pub:  pub,
		x:    base64.RawURLEncoding.EncodeToString(point[1:33]),
		y:    base64.RawURLEncoding.EncodeToString(point[33:]),
	}
	if id == "" {
		// RFC 7638: the digest of the required members in lexical order.
		sum := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + k.x + `","y":"` + k.y + `"}`))
		id = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if !keyIDOK(id) {
		return nil, fmt.Errorf("apiguard: signing key id %q: want 1 to 128 printable ASCII characters without spaces", id)
	}
	k.id = id
	return k, nil
}

// keyIDOK reports whether id is a usable key id.
func keyIDOK(id string) bool { return len(id) <= 128 && wire.ValidCredential(id) }

// ID returns the key id, sent as "kid" in the header of the tokens the key
// signs.
func (k *SigningKey) ID() string { return k.id }

// canSign reports whether k holds a private key.
func (k *SigningKey) canSign() bool { return k.priv != nil }

// PrivatePEM returns the private key as a PKCS #8 "PRIVATE KEY" PEM block,
// to store a generated key. It fails for a verification key.
func (k *SigningKey) PrivatePEM() ([]byte, error) {
	if k.priv == nil {
		return nil, errors.New("apiguard: signing key has no private key")
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// PublicPEM returns the public key as a PKIX "PUBLIC KEY" PEM block, for
// services that only verify tokens.
func (k *SigningKey) PublicPEM() ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k.pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// A KeyRing holds the key that signs new tokens and every key that verifies
// them, so that the signing key can rotate without cutting tokens still
// alive: Add publishes a key ahead of use, Rotate makes a key the signing
// key (the previous one goes on verifying), Remove retires a key, and the
// tokens it signed stop verifying at once.
//
// A token is verified only with the key its "kid" header names; a token
// without a kid, or naming a key not in the ring, is refused. A KeyRing
// holds at most 16 keys. Make one with NewKeyRing; it is safe for
// concurrent use, and verification reads it without locking.
type KeyRing struct {
	mu    sync.Mutex // serializes changes
	state atomic.Pointer[ringState]
}

// ringState is an immutable snapshot of a KeyRing.
type ringState struct {
	signing *SigningKey
	keys    map[string]*SigningKey
	order   []*SigningKey // keys in the order they were added, for the JWKS
	jwks    []byte
}

// NewKeyRing returns a KeyRing that signs with signing and verifies with it
// and with others (earlier signing keys, or the public keys of another
// issuer). A nil signing key makes a ring that only verifies, with others
// (Sessions.Issuer refuses such a ring). It fails if there is no key at all
// (a nil signing key and no others), if signing cannot sign, if two keys
// share an id, or if there are more than 16 keys.
func NewKeyRing(signing *SigningKey, others ...*SigningKey) (*KeyRing, error) {
	st := &ringState{keys: make(map[string]*SigningKey)}
	if signing != nil {
		if !signing.canSign() {
			return nil, fmt.Errorf("apiguard: signing key %q has no private key to sign with", signing.id)
		}
		st.signing = signing
		if err := st.add(signing); err != nil {
			return nil, err
		}
	}
	for _, k := range others {
		if err := st.add(k); err != nil {
			return nil, err
		}
	}
	if len(st.order) == 0 {
		return nil, errors.New("apiguard: NewKeyRing needs a key: a nil signing key and no others")
	}
	kr := &KeyRing{}
	kr.publish(st)
	return kr, nil
}

func (st *ringState) add(k *SigningKey) error {
	switch {
	case k == nil:
		return errors.New("apiguard: nil signing key")
	case st.keys[k.id] != nil:
		return fmt.Errorf("apiguard: signing key id %q is already in the ring", k.id)
	case len(st.order) >= maxRingKeys:
		return fmt.Errorf("apiguard: a key ring holds at most %d keys; remove one first", maxRingKeys)
	}
	st.keys[k.id] = k
	st.order = append(st.order, k)
	return nil
}

func (st *ringState) clone() *ringState {
	c := &ringState{signing: st.signing, keys: make(map[string]*SigningKey, len(st.keys)+1)}
	for id, k := range st.keys {
		c.keys[id] = k
	}
	c.order = append([]*SigningKey(nil), st.order...)
	return c
}

// publish renders the JWKS of st and makes st the ring's state.
func (kr *KeyRing) publish(st *ringState) {
	type jwk struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Y   string `json:"y"`
		Kid string `json:"kid"`
		Use string `json:"use"`
		Alg string `json:"alg"`
	}
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(st.order))}
	for _, k := range st.order {
		set.Keys = append(set.Keys, jwk{"EC", "P-256", k.x, k.y, k.id, "sig", "ES256"})
	}
	st.jwks, _ = json.Marshal(set) // strings only: cannot fail
	kr.state.Store(st)
}

// Add makes k verify tokens, without signing with it: publish a new key in
// the JWKS this way before Rotate makes it sign, so that verifiers that
// cache the JWKS know it by then. It fails if the id is taken or the ring
// is full.
func (kr *KeyRing) Add(k *SigningKey) error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	st := kr.state.Load().clone()
	if err := st.add(k); err != nil {
		return err
	}
	kr.publish(st)
	return nil
}

// Rotate makes k the signing key. The previous signing key goes on
// verifying the tokens it signed until Remove retires it (once the longest
// token lifetime has passed). k may already be in the ring (see Add). It
// fails if k cannot sign, if another key of the ring has k's id, or if the
// ring is full.
func (kr *KeyRing) Rotate(k *SigningKey) error {
	if k == nil || !k.canSign() {
		return errors.New("apiguard: Rotate needs a signing key with a private key")
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	st := kr.state.Load().clone()
	if cur := st.keys[k.id]; cur != k {
		if cur != nil {
			return fmt.Errorf("apiguard: signing key id %q is already in the ring", k.id)
		}
		if err := st.add(k); err != nil {
			return err
		}
	}
	st.signing = k
	kr.publish(st)
	return nil
}

// Remove retires the key with id id: tokens it signed stop verifying at
// once. The signing key cannot be removed (Rotate first). Remove reports
// whether it removed a key.
func (kr *KeyRing) Remove(id string) bool {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	st := kr.state.Load()
	k := st.keys[id]
	if k == nil || k == st.signing {
		return false
	}
	st = st.clone()
	delete(st.keys, id)
	for i, o := range st.order {
		if o == k {
			st.order = append(st.order[:i], st.order[i+1:]...)
			break
		}
	}
	kr.publish(st)
	return true
}

// SigningKeyID returns the id of the signing key, or "" for a ring that
// only verifies.
func (kr *KeyRing) SigningKeyID() string {
	if k := kr.state.Load().signing; k != nil {
		return k.id
	}
	return ""
}

// signer returns the signing key, or nil.
func (kr *KeyRing) signer() *SigningKey { return kr.state.Load().signing }

// verifier returns the public key named id, or nil.
func (kr *KeyRing) verifier(id string) *ecdsa.PublicKey {
	if k := kr.state.Load().keys[id]; k != nil {
		return k.pub
	}
	return nil
}

// JWKS returns a handler that publishes the ring's public keys as a JSON Web
// Key Set (RFC 7517), as application/jwk-set+json, cacheable for five
// minutes: {"keys":[{"kty":"EC","crv":"P-256","x":...,"y":...,"kid":...,
// "use":"sig","alg":"ES256"}]}. Mount it on GET only; it answers every
// request it is given. It follows Add, Rotate and Remove at once.
func (kr *KeyRing) JWKS() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		body := kr.state.Load().jwks
		h := w.Header()
		h.Set("Content-Type", "application/jwk-set+json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("X-Content-Type-Options", "nosniff")
		w.Write(body)
	})
}
