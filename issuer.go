package apiguard

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/apiguard/apiguard/internal/wire"
)

// Issue returns a new access token for c in a new session (88Pay's token
// endpoint; Issuer calls it): TokenSet.AccessToken, ExpiresIn and
// SessionID "sess_<uuid v4>". It keeps no state. It fails if c has no ID,
// if c is of another environment than the Sessions' (WithEnvironment) with
// ErrInvalidKey, if the ring has no signing key, or if c's id, scopes and
// role would make a token longer than the 4096 bytes verification accepts.
func (s *Sessions) Issue(c *Client) (*TokenSet, error) {
	g, err := s.newGrant(c)
	if err != nil {
		return nil, err
	}
	tok, life, err := s.sign(g, AccessToken, "")
	if err != nil {
		return nil, err
	}
	return &TokenSet{AccessToken: tok, ExpiresIn: int64(life / time.Second), SessionID: g.sid}, nil
}

// Issuer returns the handler of 88Pay's token endpoint, POST
// /api/auth/token. It asks g who the caller is (g's Scheme: MerchantKey for
// 88Pay, which checks x-api-key and x-merchant-id; g's environment refuses
// keys of the other one) and answers with the body 88Pay documents:
//
//	{"status":"Success","code":200,"message":"Token generated successfully",
//	 "data":{"access_token":"eyJ...","expires_in":60,"session_id":"sess_53a2cfc4-441e-4554-b560-4e008784d98e"}}
//
// with Cache-Control: no-store. A refusal is rendered by g (with
// WithDialect(Pay88()): 401 "Invalid API key or merchant ID"). The identity
// is resolved once per request, shared with g's other wrappers.
//
// The handler applies no rate limit: wrap it, as every call site should,
// with the issuance limits (88Pay: 10 per minute and 100 per hour per
// merchant), whose refusals are 429 "Rate limit exceeded" with Retry-After.
// Key them by the identity g establishes (ByClient()), not by the
// x-merchant-id header: a key taken from an unauthenticated header lets
// anyone use up a merchant's tokens, and fill the limiter with junk keys. Mount it on POST
// only. Issuer fails if g is nil or has no Scheme, or if the Sessions'
// ring has no signing key.
func (s *Sessions) Issuer(g *Guard) (http.Handler, error) {
	if g == nil || g.scheme == nil {
		return nil, errors.New("apiguard: Issuer needs a Guard with a Scheme")
	}
	if _, ok := g.scheme.(*tokenScheme); ok {
		return nil, errors.New("apiguard: Issuer needs a Guard that checks credentials, not session tokens")
	}
	if s.ring == nil || s.ring.signer() == nil {
		return nil, fmt.Errorf("apiguard: Issuer: %w", errNoSigningKey)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, r := begin(r)
		c, err := g.identify(st, r)
		if err != nil {
			g.deny(w, r, st, err, "issuer")
			return
		}
		set, err := s.Issue(c)
		if err != nil {
			g.deny(w, r, st, err, "issuer")
			return
		}
		body, _ := json.Marshal(pay88Success{
			Status: "Success", Code: http.StatusOK, Message: "Token generated successfully",
			Data: pay88Token{set.AccessToken, set.ExpiresIn, set.SessionID},
		}) // strings and numbers only: cannot fail
		writeTokenJSON(w, body)
	}), nil
}

type pay88Success struct {
	Status  string     `json:"status"`
	Code    int        `json:"code"`
	Message string     `json:"message"`
	Data    pay88Token `json:"data"`
}

type pay88Token struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	SessionID   string `json:"session_id"`
}

// writeTokenJSON writes a 200 token response, never to be cached (RFC 6749
// section 5.1).
func writeTokenJSON(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// MerchantKey returns the Scheme of 88Pay's first layer: the secret key in
// x-api-key and the merchant id in x-merchant-id. The key is looked up in
// keys and must be a server key (not Client.Publishable) whose Client.ID is
// the merchant id; the ids are compared in constant time, and an unknown
// key takes the same path as a key of another merchant. Neither header is ErrMissingKey; one of them
// missing, empty, repeated or malformed, an unknown, expired, revoked or
// publishable key, or a key of another merchant is ErrInvalidKey (88Pay:
// "Invalid API key or merchant ID"); a KeyStore failure is ErrUnavailable.
func MerchantKey(keys KeyStore) Scheme { return &merchantScheme{keys: keys} }

type merchantScheme struct{ keys KeyStore }

func (m *merchantScheme) Validate() error {
	if err := checkKeyStore("MerchantKey", m.keys); err != nil {
		return err
	}
	return nil
}

// noMerchant stands in for the merchant of an unknown key.
const noMerchant = "\x00unknown merchant\x00"

// Authenticate implements Scheme.
func (m *merchantScheme) Authenticate(r *http.Request) (*Client, error) {
	keys, ids := r.Header[hdrAPIKey], r.Header[hdrMerchantID]
	if len(keys) == 0 && len(ids) == 0 {
		return nil, ErrMissingKey
	}
	if len(keys) != 1 || len(ids) != 1 || !wire.ValidCredential(keys[0]) || !wire.ValidCredential(ids[0]) {
		return nil, errMalformedKey
	}
	c, err := timedLookup(r, m.keys, keys[0])
	if err != nil && !errors.Is(err, ErrInvalidKey) {
		return nil, fmt.Errorf("%w: key store: %w", errKeyStoreFailed, err)
	}
	owner := noMerchant
	if err == nil && c != nil {
		owner = c.ID
	}
	same := equalStrings(owner, ids[0])
	switch {
	case err != nil:
		return nil, withCause(ErrInvalidKey, err)
	case c == nil:
		return nil, errUnknownKey
	case !same:
		return nil, errMerchantMismatch
	case c.Publishable:
		return nil, errPublishableKey
	}
	return c, nil
}

var _ Scheme = (*merchantScheme)(nil)
