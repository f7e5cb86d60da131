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
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/apiguard/apiguard/internal/wire"
	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"
)

// Session tokens: 88Pay's second layer and the access, refresh and user
// tokens of the client-system API.

// A TokenKind says what a session token may be used for. The kind is a
// claim of the token; a token presented where another kind is expected is
// refused.
type TokenKind uint8

const (
	// AccessToken authenticates regular API calls.
	AccessToken TokenKind = iota + 1
	// RefreshToken only mints access tokens (Sessions.Exchange).
	RefreshToken
	// UserToken only mints refresh tokens (Sessions.Exchange) and
	// marks user-specific calls (the x-user-token header of UserScheme).
	UserToken
)

var kindNames = [...]string{AccessToken: "access", RefreshToken: "refresh", UserToken: "user"}

// String returns "access", "refresh" or "user".
func (k TokenKind) String() string {
	if k >= AccessToken && k <= UserToken {
		return kindNames[k]
	}
	return "TokenKind(" + strconv.Itoa(int(k)) + ")"
}

// Header names of the session schemes, in canonical form.
const (
	hdrAuthorization = "Authorization"
	hdrSessionID     = "X-Session-Id"
	hdrUserToken     = "X-User-Token"
	hdrAPIKey        = "X-Api-Key"
	hdrMerchantID    = "X-Merchant-Id"
)

// maxTokenLen caps a token, issued or presented (wire.MaxTokenLen, 4096
// bytes): issuance and verification agree on it.
const maxTokenLen = wire.MaxTokenLen

var (
	// Causes wrapped with ErrInvalidToken, for logs.
	errNoToken        = errors.New("no bearer token")
	errWrongKind      = errors.New("token of another kind")
	errClaims         = errors.New("token claims incomplete or out of bounds")
	errWrongEnv       = errors.New("token of another environment")
	errRevoked        = errors.New("token revoked")
	errSessionID      = errors.New("session id is not the token's")
	errUnknownSession = errors.New("session unknown, expired or evicted")
	errUnknownKeyID   = errors.New("signing key id missing or unknown")
	errCrit           = errors.New("token has critical header extensions")

	errNoSigningKey = errors.New("apiguard: the key ring only verifies: it has no signing key")
)

// Sessions issues and verifies session tokens: ES256 JWTs signed with the
// signing key of a KeyRing, each bound to a session id and of one kind
// (access, refresh or user).
//
// Its two uses:
//
//   - 88Pay's two layers: Issuer answers POST /api/auth/token,
//     exchanging the credentials a Guard checks (MerchantKey: x-api-key and
//     x-merchant-id) for a 60-second access token and a new session id
//     "sess_<uuid>"; SessionScheme then authenticates calls carrying
//     `Authorization: Bearer <token>` and `x-session-id`.
//   - The client-system API: Login issues a user token, a refresh
//     token and an access token sharing one session; Exchange trades a
//     refresh token for an access token and the next refresh token, and the
//     user token for a new refresh token; AccessScheme and UserScheme
//     authenticate calls.
//
// Tokens carry "iss" and "aud" (the API's name, see NewSessions), "sub"
// (the client id: merchant or user), "sid" (the session), "jti" (the token
// id), "kind", "iat", "exp", and the client's environment, scopes and role.
// Verification accepts only ES256 with the key named by the token's "kid";
// requires the API's iss and aud, exp, iat, sub, sid and jti; refuses a
// token whose exp is past, whose nbf or iat is in the future (each with the
// leeway), whose lifetime exceeds the one its kind is issued with, of the
// wrong kind, of another environment, with critical header extensions, or
// revoked. Any such token is ErrInvalidToken. The client a Scheme returns
// has the token's subject as ID and the token id as KeyID (no credential
// reaches logs); its IPs are empty.
//
// What Sessions remember (the sessions Login starts, their live refresh
// tokens, revocations) lives in a SessionStore: in memory by default, or
// shared by every replica of a server (WithSessionStore). Every token
// verified asks the store whether it is revoked; when the store fails, the
// token is refused with 503 (ErrUnavailable), never accepted. In memory,
// operators' revocations (RevokeSession, RevokeSubject) are bounded by a
// tenth of the capacity (WithCapacity), until the tokens they concern have
// expired; no user's doing takes room among them.
// Refresh tokens rotate: each session has one live refresh token, and
// presenting any other of its refresh tokens revokes the whole session
// (ErrRefreshTokenReused), a revocation held with the session. Sessions
// issued by Login are tracked up to the capacity, and 16 per user (see
// Login for what happens at either bound); a session no longer tracked
// can no longer mint tokens (the user logs in again) but its tokens keep
// verifying until they expire.
//
// Use one Sessions (and one KeyRing) per API: tokens of one are not meant
// for another. Make Sessions with NewSessions; they are safe for
// concurrent use.
type Sessions struct {
	name      string // the API's: every token's iss and aud
	ring      *KeyRing
	now       func() time.Time
	leeway    time.Duration
	lifetimes [UserToken + 1]time.Duration
	env       Environment

	parser   *jwt.Parser
	keyfunc  jwt.Keyfunc
	claims   sync.Pool // of *tokenClaims
	verified *lru.Cache[[sha256.Size]byte, *verifiedToken]

	store SessionStore
	mem   *memorySessions // the store, when it is the default
}

// maxUserSessions is how many sessions of one user Sessions track.
const maxUserSessions = 16

// defaultSessionCapacity is the number of session families Sessions
// track unless WithCapacity says otherwise; they hold a tenth as many
// revocations.
const defaultSessionCapacity = 100_000

// NewSessions returns the Sessions of the API named name, signing and
// verifying with ring (a ring without a signing key makes Sessions that
// only verify). The name is every token's issuer ("iss") and audience
// ("aud"), and verification refuses a token of another name: tokens are
// bound to the API that minted them, so a key of another API in the ring,
// or one ring shared by two APIs, opens nothing here. Give each API its own
// name, the same on every replica, such as the base URL of its tokens'
// endpoint ("https://api.example.com/88pay"): 1 to 256 printable ASCII
// characters without spaces. Its options:
//
//   - WithClock: give it the clock of the Guards that use the Sessions
//     (time.Now by default).
//   - WithEnvironment: give it the environment of those Guards
//     (AnyEnvironment by default: tokens are issued to every client and
//     stamped with its environment).
//   - WithLeeway: 1 second by default.
//   - WithTokenLifetime: 60 seconds for access tokens, 24 hours for
//     refresh tokens and 7 days for user tokens by default.
//   - WithCapacity: how many sessions issued by Login the memory store
//     tracks for refresh-token rotation, 100,000 by default (16 per user;
//     see Login for what happens past either). A tenth as many operators'
//     revocations (at least 1) are held at once; a revocation is dropped
//     once every token it concerns has expired, and when the list is full
//     of revocations still in force a new one fails with ErrStoreFull.
//   - WithSessionStore: keep sessions and revocations in another
//     SessionStore, such as one shared by every replica (WithCapacity
//     then does not apply).
//
// It fails if ring is nil, or if an option is out of range or does not
// apply to it.
func NewSessions(name string, ring *KeyRing, opts ...Option) (*Sessions, error) {
	if len(name) > 256 || !wire.ValidCredential(name) {
		return nil, errors.New("apiguard: NewSessions needs the API's name: 1 to 256 printable ASCII characters without spaces")
	}
	if ring == nil || ring.state.Load() == nil {
		return nil, errors.New("apiguard: NewSessions needs a KeyRing from NewKeyRing")
	}
	c, err := configure(toSessions, opts)
	if err != nil {
		return nil, err
	}
	if c.sessions != nil && c.capacity != 0 {
		return nil, errors.New("apiguard: NewSessions: WithCapacity bounds the memory store; a store given with WithSessionStore has its own bounds")
	}
	s := &Sessions{
		name:      name,
		ring:      ring,
		now:       c.clock(),
		leeway:    time.Second,
		lifetimes: [...]time.Duration{0, 60 * time.Second, 24 * time.Hour, 7 * 24 * time.Hour},
		env:       c.env,
		store:     c.sessions,
	}
	if s.store == nil {
		s.mem = newMemorySessions(c.capacityOr(defaultSessionCapacity))
		s.store = s.mem
	}
	if c.leewaySet {
		s.leeway = c.leeway
	}
	for k, d := range c.lifetimes {
		if d != 0 {
			s.lifetimes[k] = d
		}
	}
	s.claims.New = func() any { return new(tokenClaims) }
	s.verified, _ = lru.New[[sha256.Size]byte, *verifiedToken](verifiedCapacity) // a positive size: no error
	s.keyfunc = s.key
	s.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(name),
		jwt.WithAudience(name),
		jwt.WithLeeway(s.leeway),
		jwt.WithTimeFunc(s.now),
		jwt.WithStrictDecoding(), // one encoding per token: no malleable padding bits
	)
	return s, nil
}

// maxLifetime is the longest any token of s lives.
func (s *Sessions) maxLifetime() time.Duration {
	return max(s.lifetimes[AccessToken], s.lifetimes[RefreshToken], s.lifetimes[UserToken])
}

// tokenClaims is the claims set of a session token. Its dates are values,
// not pointers, so decoding allocates nothing for them; a zero date is an
// absent claim. Instances are pooled: reset before use.
type tokenClaims struct {
	Issuer    string          `json:"iss"`
	Audience  string          `json:"aud"` // one string: a token with a list is refused
	Subject   string          `json:"sub"`
	SessionID string          `json:"sid"`
	ID        string          `json:"jti"`
	Kind      string          `json:"kind"`
	Env       string          `json:"env,omitempty"`
	Scope     string          `json:"scope,omitempty"`
	Role      string          `json:"role,omitempty"`
	IssuedAt  jwt.NumericDate `json:"iat,omitzero"`
	ExpiresAt jwt.NumericDate `json:"exp,omitzero"`
	NotBefore jwt.NumericDate `json:"nbf,omitzero"`
}

func date(d *jwt.NumericDate) *jwt.NumericDate {
	if d.IsZero() {
		return nil
	}
	return d
}

func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return date(&c.ExpiresAt), nil }
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return date(&c.IssuedAt), nil }
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error)      { return date(&c.NotBefore), nil }
func (c *tokenClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *tokenClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c *tokenClaims) GetAudience() (jwt.ClaimStrings, error) {
	if c.Audience == "" {
		return nil, nil
	}
	return jwt.ClaimStrings{c.Audience}, nil
}

func (s *Sessions) getClaims() *tokenClaims {
	c := s.claims.Get().(*tokenClaims)
	*c = tokenClaims{} // decoding leaves absent members as they were
	return c
}

func (s *Sessions) putClaims(c *tokenClaims) { s.claims.Put(c) }

// client returns the client the claims describe.
func (c *tokenClaims) client() *Client {
	cl := &Client{ID: c.Subject, KeyID: c.ID, Role: c.Role, Env: envOf(c.Env)}
	if c.Scope != "" {
		cl.Scopes = strings.Fields(c.Scope)
	}
	return cl
}

func envOf(s string) Environment {
	switch s {
	case "sandbox":
		return Sandbox
	case "live":
		return Live
	}
	return AnyEnvironment
}

// key is the parser's Keyfunc: the public key the token's kid names, and
// nothing else (no kid, no key; never a key carried by the token).
func (s *Sessions) key(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errCrit
	}
	kid, _ := t.Header["kid"].(string)
	if pub := s.ring.verifier(kid); pub != nil {
		return pub, nil
	}
	return nil, errUnknownKeyID
}

// verify parses raw into c and checks it is a valid token of kind.
func (s *Sessions) verify(ctx context.Context, raw string, kind TokenKind, c *tokenClaims) error {
	if err := s.parse(raw, c); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Kind != kindNames[kind] {
		return fmt.Errorf("%w: %w", ErrInvalidToken, errWrongKind)
	}
	if c.Subject == "" || c.SessionID == "" || c.ID == "" || c.IssuedAt.IsZero() ||
		c.ExpiresAt.Sub(c.IssuedAt.Time) > s.lifetimes[kind] {
		return fmt.Errorf("%w: %w", ErrInvalidToken, errClaims)
	}
	if env := envOf(c.Env); (env == AnyEnvironment && c.Env != "") || (s.env != AnyEnvironment && env != s.env) {
		return fmt.Errorf("%w: %w", ErrInvalidToken, errWrongEnv)
	}
	revoked, err := s.store.Revoked(ctx, c.SessionID, c.Subject, c.IssuedAt.Time, s.now())
	switch {
	case err != nil:
		return storeError(err)
	case revoked:
		return fmt.Errorf("%w: %w", ErrInvalidToken, errRevoked)
	}
	return nil
}

// verifiedCapacity is how many tokens Sessions remember as verified.
const verifiedCapacity = 8192

// verifiedToken is a token whose signature and claims were checked: what a
// later verification of the same token needs again.
type verifiedToken struct {
	ring   *ringState // the key ring it was verified with
	claims tokenClaims
}

// parse parses raw into c, checking its signature with the ring's keys and
// its dates with the clock. A token whose signature was verified before,
// with the ring as it is now, is not verified again (ECDSA is most of the
// cost of a request): its claims are remembered, by the SHA-256 digest of
// the token, and only its dates are checked, as the parser checks them.
// Everything else verify checks (kind, claims, environment, revocation)
// is checked on every call. A change of the ring (a key added, rotated or
// removed) forgets every remembered token, so a removed key's tokens are
// refused at once. At most verifiedCapacity tokens are remembered, the
// least recently used dropped first: a caller with many valid tokens can
// only make others' verifications full ones again. A remembered token
// takes about 300 bytes beside its claims.
func (s *Sessions) parse(raw string, c *tokenClaims) error {
	key := sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw))) // read only: no copy of the token per request
	st := s.ring.state.Load()
	if v, ok := s.verified.Get(key); ok && v.ring == st {
		*c = v.claims
		if err := s.checkDates(c); err != nil {
			s.verified.Remove(key)
			return err
		}
		return nil
	}
	if _, err := s.parser.ParseWithClaims(raw, c, s.keyfunc); err != nil {
		return err
	}
	s.verified.Add(key, &verifiedToken{ring: st, claims: *c})
	return nil
}

// checkDates checks a remembered token's dates as the parser does: exp
// required and not past, iat and nbf not in the future, each with the
// leeway.
func (s *Sessions) checkDates(c *tokenClaims) error {
	now := s.now()
	switch {
	case c.ExpiresAt.IsZero():
		return fmt.Errorf("%w: %w", jwt.ErrTokenRequiredClaimMissing, errClaims)
	case !now.Before(c.ExpiresAt.Add(s.leeway)):
		return fmt.Errorf("%w: %w", jwt.ErrTokenInvalidClaims, jwt.ErrTokenExpired)
	case !c.IssuedAt.IsZero() && now.Before(c.IssuedAt.Add(-s.leeway)):
		return fmt.Errorf("%w: %w", jwt.ErrTokenInvalidClaims, jwt.ErrTokenUsedBeforeIssued)
	case !c.NotBefore.IsZero() && now.Before(c.NotBefore.Add(-s.leeway)):
		return fmt.Errorf("%w: %w", jwt.ErrTokenInvalidClaims, jwt.ErrTokenNotValidYet)
	}
	return nil
}

// bearerToken returns the token of the request's one Authorization header.
func bearerToken(h http.Header) (string, error) {
	vs := h[hdrAuthorization]
	if len(vs) != 1 {
		return "", fmt.Errorf("%w: %w", ErrInvalidToken, errNoToken)
	}
	return presentedToken(vs[0], true)
}

// presentedToken checks a token as presented, with its "Bearer " prefix if
// bearer is set.
func presentedToken(v string, bearer bool) (string, error) {
	if bearer {
		var ok bool
		if v, ok = cutScheme(v, "Bearer"); !ok {
			return "", fmt.Errorf("%w: %w", ErrInvalidToken, errNoToken)
		}
	}
	if !wire.ValidToken(v) {
		return "", fmt.Errorf("%w: %w", ErrInvalidToken, errNoToken)
	}
	return v, nil
}

// equalStrings reports whether a and b are equal, in time that depends on
// their lengths only.
func equalStrings(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := 0; i < len(a); i++ {
		v |= a[i] ^ b[i]
	}
	return subtle.ConstantTimeByteEq(v, 0) == 1
}

// SessionScheme returns the Scheme of 88Pay's calls: an access token in
// `Authorization: Bearer <token>` and its session id in x-session-id.
//
// The session header is checked first, since it needs no cryptography: a
// request without it (or with it empty) is ErrMissingSessionID (400
// "Missing required header: x-session-id"), whatever its Authorization, as
// 88Pay's troubleshooting guide shows. Then a missing, malformed, forged,
// expired, not yet valid, revoked or wrong-kind token, several
// Authorization or x-session-id headers, or a session id that is not the
// token's (compared in constant time) is ErrInvalidToken (401
// "Unauthorized").
func (s *Sessions) SessionScheme() Scheme { return &tokenScheme{s: s, session: true} }

// AccessScheme returns the Scheme of the client-system API's regular calls: an
// access token in `Authorization: Bearer <token>`. A missing, invalid or
// wrong-kind token is ErrInvalidToken.
func (s *Sessions) AccessScheme() Scheme { return &tokenScheme{s: s} }

// UserScheme returns the Scheme of the client-system API's user-specific calls:
// an access token in `Authorization: Bearer <token>` and a user token of the
// same session in x-user-token. A missing or invalid token of either kind, or
// tokens of two sessions, is ErrInvalidToken.
func (s *Sessions) UserScheme() Scheme { return &tokenScheme{s: s, user: true} }

type tokenScheme struct {
	s       *Sessions
	session bool // x-session-id required
	user    bool // x-user-token required
}

func (t *tokenScheme) Validate() error {
	if t.s == nil || t.s.parser == nil {
		return errors.New("apiguard: session scheme needs Sessions from NewSessions")
	}
	return nil
}

// Challenge gives the WWW-Authenticate value of 401 responses.
func (t *tokenScheme) Challenge() string { return "Bearer" }

// Authenticate implements Scheme.
func (t *tokenScheme) Authenticate(r *http.Request) (*Client, error) {
	h := r.Header
	var sid string
	if t.session {
		vs := h[hdrSessionID]
		switch {
		case len(vs) == 0 || len(vs) == 1 && vs[0] == "":
			return nil, ErrMissingSessionID
		case len(vs) > 1:
			return nil, fmt.Errorf("%w: %w", ErrInvalidToken, errSessionID)
		}
		sid = vs[0]
	}
	raw, err := bearerToken(h)
	if err != nil {
		return nil, err
	}
	c := t.s.getClaims()
	defer t.s.putClaims(c)
	if err := t.s.verify(r.Context(), raw, AccessToken, c); err != nil {
		return nil, err
	}
	if t.session && !equalStrings(c.SessionID, sid) {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, errSessionID)
	}
	if t.user {
		vs := h[hdrUserToken]
		if len(vs) != 1 {
			return nil, fmt.Errorf("%w: %w", ErrInvalidToken, errNoToken)
		}
		raw, err := presentedToken(vs[0], false)
		if err != nil {
			return nil, err
		}
		u := t.s.getClaims()
		defer t.s.putClaims(u)
		if err := t.s.verify(r.Context(), raw, UserToken, u); err != nil {
			return nil, err
		}
		if !equalStrings(u.SessionID, c.SessionID) || u.Subject != c.Subject {
			return nil, fmt.Errorf("%w: %w", ErrInvalidToken, errSessionID)
		}
	}
	return c.client(), nil
}

// TokenSet is what Sessions issue. Its JSON form holds the tokens issued
// and expires_in, the access token's lifetime in seconds, each only when
// set: Login's {"user_token":...,"access_token":...,"refresh_token":...,
// "expires_in":60}.
type TokenSet struct {
	UserToken    string `json:"user_token,omitempty"`
	AccessToken  string `json:"access_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresIn    int64  `json:"expires_in,omitempty"`
	// SessionID is the session the tokens belong to: the value of 88Pay's
	// x-session-id, and what RevokeSession takes. It is left out of the
	// JSON form (88Pay's token response shows it as data.session_id).
	SessionID string `json:"-"`
}

// grant describes tokens to sign for one session.
type grant struct {
	iat   jwt.NumericDate
	end   time.Time // no token outlives it; zero for none
	sub   string
	sid   string
	env   string
	scope string
	role  string
}

func (s *Sessions) newGrant(c *Client) (*grant, error) {
	switch {
	case c == nil || c.ID == "":
		return nil, errors.New("apiguard: tokens need a client with an ID")
	case s.env != AnyEnvironment && c.Env != s.env:
		return nil, ErrInvalidKey
	}
	now := s.now()
	g := &grant{iat: *jwt.NewNumericDate(now), sub: c.ID, sid: newSessionID(), scope: strings.Join(c.Scopes, " "), role: c.Role}
	if c.Env != AnyEnvironment {
		g.env = c.Env.String()
	}
	return g, nil
}

// sign returns a new token of kind for g, with token id jti ("" for a new
// one), and its lifetime.
func (s *Sessions) sign(g *grant, kind TokenKind, jti string) (string, time.Duration, error) {
	key := s.ring.signer()
	if key == nil {
		return "", 0, errNoSigningKey
	}
	if jti == "" {
		jti = newTokenID()
	}
	life := s.lifetimes[kind]
	exp := g.iat.Add(life)
	if !g.end.IsZero() && exp.After(g.end) {
		exp = g.end
		life = exp.Sub(g.iat.Time)
	}
	c := &tokenClaims{
		Issuer: s.name, Audience: s.name,
		Subject: g.sub, SessionID: g.sid, ID: jti, Kind: kindNames[kind],
		Env: g.env, Scope: g.scope, Role: g.role,
		IssuedAt: g.iat, ExpiresAt: jwt.NumericDate{Time: exp},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = key.id
	raw, err := tok.SignedString(key.priv)
	if err == nil && len(raw) > maxTokenLen {
		// Verification would refuse it: fail now, not at every call.
		err = fmt.Errorf("apiguard: a token of %d bytes, over %d: the client's id, scopes or role are too long", len(raw), maxTokenLen)
	}
	return raw, life, err
}

// newSessionID returns "sess_" and a random (version 4) UUID.
func newSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // variant 10
	var out [5 + 36]byte
	copy(out[:], "sess_")
	hex.Encode(out[5:], b[0:4])
	out[13] = '-'
	hex.Encode(out[14:], b[4:6])
	out[18] = '-'
	hex.Encode(out[19:], b[6:8])
	out[23] = '-'
	hex.Encode(out[24:], b[8:10])
	out[28] = '-'
	hex.Encode(out[29:], b[10:])
	return string(out[:])
}

// newTokenID returns 128 random bits in base64url.
func newTokenID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var (
	_ Scheme     = (*tokenScheme)(nil)
	_ jwt.Claims = (*tokenClaims)(nil)
)
