package apiguard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apiguard/apiguard/internal/wire"
	"github.com/golang-jwt/jwt/v5"
	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Session tokens: 88Pay's second layer (seed 004) and the access, refresh
// and user tokens of the client-system API (seed 003).

// A TokenKind says what a session token may be used for. The kind is a
// claim of the token; a token presented where another kind is expected is
// refused.
type TokenKind uint8

const (
	// AccessToken authenticates regular API calls.
	AccessToken TokenKind = iota + 1
	// RefreshToken only mints access tokens (Sessions.ExchangeRefreshToken).
	RefreshToken
	// UserToken only mints refresh tokens (Sessions.ExchangeUserToken) and
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

// maxTokenLen caps a presented token; longer ones are refused unparsed.
const maxTokenLen = 4096

var (
	// ErrRefreshTokenReused is the cause, wrapped with ErrInvalidToken, of
	// the refusal of a refresh token that is not its session's latest: it
	// was used already, or replaced. The session is revoked. Clients see a
	// plain invalid token; a denial hook can match this to raise an alarm.
	ErrRefreshTokenReused = errors.New("apiguard: refresh token reused; session revoked")

	// ErrRevocationsFull is returned by Sessions.RevokeSession and
	// Sessions.RevokeSubject when the revocation list holds its capacity of
	// revocations still in force; the revocation did not take effect.
	ErrRevocationsFull = errors.New("apiguard: revocation list full")

	// ErrNoSigningKey is returned when tokens are to be issued with a key
	// ring that only verifies.
	ErrNoSigningKey = errors.New("apiguard: key ring has no signing key")

	// Causes wrapped with ErrInvalidToken, for logs.
	errNoToken        = errors.New("no bearer token")
	errWrongKind      = errors.New("token of another kind")
	errClaims         = errors.New("token claims incomplete or out of bounds")
	errWrongEnv       = errors.New("token of another environment")
	errRevoked        = errors.New("token revoked")
	errSessionID      = errors.New("session id is not the token's")
	errUnknownSession = errors.New("session unknown, expired or evicted")
	errUnknownKeyID   = errors.New("token key id missing or unknown")
	errCrit           = errors.New("token has critical header extensions")
)

// Sessions issues and verifies session tokens: ES256 JWTs signed with the
// signing key of a KeyRing, each bound to a session id and of one kind
// (access, refresh or user).
//
// Its two uses:
//
//   - 88Pay's two layers (seed 004): Issuer answers POST /api/auth/token,
//     exchanging the credentials a Guard checks (MerchantKey: x-api-key and
//     x-merchant-id) for a 60-second access token and a new session id
//     "sess_<uuid>"; SessionScheme then authenticates calls carrying
//     `Authorization: Bearer <token>` and `x-session-id`.
//   - The client-system API (seed 003): Login issues a user token, a refresh
//     token and an access token sharing one session;
//     ExchangeRefreshToken trades a refresh token for an access token and
//     the next refresh token; ExchangeUserToken trades the user token for a
//     new refresh token; AccessScheme and UserScheme authenticate calls.
//
// Tokens carry "sub" (the client id: merchant or user), "sid" (the
// session), "jti" (the token id), "kind", "iat", "exp", and the client's
// environment, scopes and role. Verification accepts only ES256 with the key
// named by the token's "kid"; requires exp, iat, sub, sid and jti; refuses a
// token whose exp or nbf is past, whose iat is in the future (each with the
// leeway), whose lifetime exceeds the one its kind is issued with, of the
// wrong kind, of another environment, with critical header extensions, or
// revoked. Any such token is ErrInvalidToken. The client a Scheme returns
// has the token's subject as ID and the token id as KeyID (no credential
// reaches logs); its IPs are empty.
//
// Revocation (RevokeSession, RevokeSubject) is held in memory, bounded by
// MaxRevocations, until the tokens it concerns have expired. Refresh tokens
// rotate: each session has one live refresh token, and presenting any other
// of its refresh tokens revokes the whole session (ErrRefreshTokenReused).
// Sessions issued by Login are tracked in a bounded LRU (MaxSessionFamilies);
// a session that falls out of it can no longer mint tokens (the user logs in
// again) but its tokens keep verifying until they expire.
//
// Use one Sessions (and one KeyRing) per API: tokens of one are not meant
// for another. Make Sessions with NewSessions; they are safe for
// concurrent use.
type Sessions struct {
	ring      *KeyRing
	now       func() time.Time
	leeway    time.Duration
	lifetimes [UserToken + 1]time.Duration
	env       Environment
	maxRevs   int
	maxFams   int

	parser  *jwt.Parser
	keyfunc jwt.Keyfunc
	claims  sync.Pool // of *tokenClaims

	revs revocations

	famMu    sync.Mutex
	families *simplelru.LRU[string, family]
}

// A SessionOption configures Sessions.
type SessionOption func(*Sessions)

// SessionClock sets the clock tokens are issued and verified with. Give it
// the clock of the Guards that use the Sessions. The default is time.Now.
func SessionClock(now func() time.Time) SessionOption {
	return func(s *Sessions) { s.now = now }
}

// SessionLeeway sets the clock skew tolerated between issuer and verifier: a
// token is accepted until its exp plus the leeway, and from its iat and nbf
// minus the leeway. It must be between 0 and one minute. Since iat is
// counted in whole seconds, a 60-second token issued at t is accepted until
// at most t+61s with the default of 1 second.
func SessionLeeway(d time.Duration) SessionOption {
	return func(s *Sessions) { s.leeway = d }
}

// TokenLifetime sets how long tokens of kind live, in whole seconds from one
// second to a year. Verification refuses a token of that kind whose exp is
// further from its iat. The defaults are 60 seconds for access tokens (the
// 88Pay seed), 24 hours for refresh tokens and 7 days for user tokens;
// refresh and access tokens never outlive their session's user token.
func TokenLifetime(kind TokenKind, d time.Duration) SessionOption {
	return func(s *Sessions) {
		if kind < AccessToken || kind > UserToken {
			s.lifetimes[0] = -1 // reported by NewSessions
			return
		}
		s.lifetimes[kind] = d
	}
}

// SessionEnvironment makes the Sessions issue tokens only to clients of
// env, and accept only tokens issued in env; a token of another environment
// is ErrInvalidToken ("Unauthorized" for 88Pay, as the seed says of a token
// used in the wrong environment). Give it the environment of the Guards
// that use the Sessions. The default, AnyEnvironment, issues to every
// client and stamps its environment in the token.
func SessionEnvironment(env Environment) SessionOption {
	return func(s *Sessions) { s.env = env }
}

// MaxRevocations sets how many revocations (of sessions and subjects) are
// held at once. A revocation is dropped once every token it concerns has
// expired; when the list is full of revocations still in force, a new one
// fails with ErrRevocationsFull. The default is 10,000.
func MaxRevocations(n int) SessionOption {
	return func(s *Sessions) { s.maxRevs = n }
}

// MaxSessionFamilies sets how many sessions issued by Login are tracked for
// refresh-token rotation. Past it, the least recently used session is
// forgotten and can no longer mint tokens. The default is 100,000.
func MaxSessionFamilies(n int) SessionOption {
	return func(s *Sessions) { s.maxFams = n }
}

// NewSessions returns Sessions that sign and verify with ring (a ring
// without a signing key makes Sessions that only verify). It fails if ring
// is nil or an option is out of range.
func NewSessions(ring *KeyRing, opts ...SessionOption) (*Sessions, error) {
	if ring == nil {
		return nil, errors.New("apiguard: NewSessions needs a KeyRing")
	}
	s := &Sessions{
		ring:      ring,
		now:       time.Now,
		leeway:    time.Second,
		lifetimes: [...]time.Duration{0, 60 * time.Second, 24 * time.Hour, 7 * 24 * time.Hour},
		maxRevs:   10_000,
		maxFams:   100_000,
	}
	for _, o := range opts {
		o(s)
	}
	switch {
	case s.now == nil:
		return nil, errors.New("apiguard: SessionClock needs a clock")
	case s.leeway < 0 || s.leeway > time.Minute:
		return nil, fmt.Errorf("apiguard: SessionLeeway %v is not between 0 and 1m", s.leeway)
	case s.lifetimes[0] != 0:
		return nil, errors.New("apiguard: TokenLifetime of an unknown token kind")
	case s.env > Live:
		return nil, fmt.Errorf("apiguard: unknown environment %d", s.env)
	case s.maxRevs <= 0:
		return nil, fmt.Errorf("apiguard: MaxRevocations must be positive, got %d", s.maxRevs)
	case s.maxFams <= 0:
		return nil, fmt.Errorf("apiguard: MaxSessionFamilies must be positive, got %d", s.maxFams)
	}
	for k := AccessToken; k <= UserToken; k++ {
		if d := s.lifetimes[k]; d < time.Second || d > 366*24*time.Hour || d%time.Second != 0 {
			return nil, fmt.Errorf("apiguard: %v token lifetime %v: want whole seconds from 1s to a year", k, d)
		}
	}
	s.families, _ = simplelru.NewLRU[string, family](s.maxFams, nil) // size checked above
	s.revs.sessions = make(map[string]time.Time)
	s.revs.subjects = make(map[string]subjectRevocation)
	s.claims.New = func() any { return new(tokenClaims) }
	s.keyfunc = s.key
	s.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
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
func (c *tokenClaims) GetIssuer() (string, error)                   { return "", nil }
func (c *tokenClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c *tokenClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

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
func (s *Sessions) verify(raw string, kind TokenKind, c *tokenClaims) error {
	if _, err := s.parser.ParseWithClaims(raw, c, s.keyfunc); err != nil {
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
	if s.revs.revoked(c, s.now) {
		return fmt.Errorf("%w: %w", ErrInvalidToken, errRevoked)
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
	if len(v) > maxTokenLen || !wire.ValidCredential(v) {
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
// the seed's troubleshooting shows. Then a missing, malformed, forged,
// expired, not yet valid, revoked or wrong-kind token, several
// Authorization or x-session-id headers, or a session id that is not the
// token's (compared in constant time) is ErrInvalidToken (401
// "Unauthorized").
func (s *Sessions) SessionScheme() Scheme { return &tokenScheme{s: s, session: true} }

// AccessScheme returns the Scheme of the client-system API's regular calls
// (seed 003): an access token in `Authorization: Bearer <token>`. A
// missing, invalid or wrong-kind token is ErrInvalidToken.
func (s *Sessions) AccessScheme() Scheme { return &tokenScheme{s: s} }

// UserScheme returns the Scheme of the client-system API's user-specific
// calls (seed 003): an access token in `Authorization: Bearer <token>` and
// a user token of the same session in x-user-token. A missing or invalid
// token of either kind, or tokens of two sessions, is ErrInvalidToken.
func (s *Sessions) UserScheme() Scheme { return &tokenScheme{s: s, user: true} }

type tokenScheme struct {
	s       *Sessions
	session bool // x-session-id required
	user    bool // x-user-token required
}

func (t *tokenScheme) validate() error {
	if t.s == nil || t.s.parser == nil {
		return errors.New("apiguard: session scheme needs Sessions from NewSessions")
	}
	return nil
}

// Challenge implements Challenger.
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
	if err := t.s.verify(raw, AccessToken, c); err != nil {
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
		if err := t.s.verify(raw, UserToken, u); err != nil {
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
		return "", 0, ErrNoSigningKey
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

// Issue returns a new access token for c in a new session (88Pay's token
// endpoint; Issuer calls it): TokenSet.AccessToken, ExpiresIn and
// SessionID "sess_<uuid v4>". It keeps no state. It fails if c has no ID,
// if c is of another environment than SessionEnvironment (ErrInvalidKey),
// if the ring cannot sign (ErrNoSigningKey), or if c's id, scopes and role
// would make a token longer than the 4096 bytes verification accepts.
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
// keys of the other one) and answers with the seed's body:
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
// Key them by the identity g establishes (KeyByClient), not by the
// x-merchant-id header: a key taken from an unauthenticated header lets
// anyone use up a merchant's tokens, and fill the limiter with junk keys. Mount it on POST
// only. Issuer fails if g is nil or has no Scheme.
func (s *Sessions) Issuer(g *Guard) (http.Handler, error) {
	if g == nil || g.scheme == nil {
		return nil, errors.New("apiguard: Issuer needs a Guard with a Scheme")
	}
	if _, ok := g.scheme.(*tokenScheme); ok {
		return nil, errors.New("apiguard: Issuer needs a Guard that checks credentials, not session tokens")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, r := begin(r)
		c, err := g.identify(st, r)
		if err != nil {
			g.deny(w, r, st, err)
			return
		}
		set, err := s.Issue(c)
		if err != nil {
			g.deny(w, r, st, err)
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
// keys and must be a ServerKey whose Client.ID is the merchant id; the ids
// are compared in constant time, and an unknown key takes the same path as
// a key of another merchant. Neither header is ErrMissingKey; one of them
// missing, empty, repeated or malformed, an unknown, expired, revoked or
// publishable key, or a key of another merchant is ErrInvalidKey (88Pay:
// "Invalid API key or merchant ID"); a KeyStore failure is ErrUnavailable.
func MerchantKey(keys KeyStore) Scheme { return &merchantScheme{keys: keys} }

type merchantScheme struct{ keys KeyStore }

func (m *merchantScheme) validate() error {
	if m.keys == nil {
		return errors.New("apiguard: MerchantKey needs a KeyStore")
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
		return nil, ErrInvalidKey
	}
	c, err := m.keys.Lookup(r.Context(), keys[0])
	if err != nil && !errors.Is(err, ErrInvalidKey) {
		return nil, fmt.Errorf("%w: key store: %w", ErrUnavailable, err)
	}
	owner := noMerchant
	if err == nil && c != nil {
		owner = c.ID
	}
	if !equalStrings(owner, ids[0]) || err != nil || c == nil || c.Kind != ServerKey {
		return nil, ErrInvalidKey
	}
	return c, nil
}

// Login returns a user token, a refresh token and an access token for c in
// a new session (the client-system API's login, once the caller's
// credentials are checked), and starts tracking the session for
// refresh-token rotation. It fails as Issue does.
func (s *Sessions) Login(c *Client) (*TokenSet, error) {
	g, err := s.newGrant(c)
	if err != nil {
		return nil, err
	}
	set := &TokenSet{SessionID: g.sid}
	var life time.Duration
	if set.UserToken, life, err = s.sign(g, UserToken, ""); err != nil {
		return nil, err
	}
	g.end = g.iat.Add(life)
	refresh := newTokenID()
	if set.RefreshToken, _, err = s.sign(g, RefreshToken, refresh); err != nil {
		return nil, err
	}
	if set.AccessToken, life, err = s.sign(g, AccessToken, ""); err != nil {
		return nil, err
	}
	set.ExpiresIn = int64(life / time.Second)
	s.famMu.Lock()
	s.families.Add(g.sid, family{refresh: refresh, end: g.end})
	s.famMu.Unlock()
	return set, nil
}

// family is the rotation state of a session issued by Login.
type family struct {
	refresh string    // id of the session's one live refresh token
	end     time.Time // expiry of the user token; nothing of the session outlives it
}

// ExchangeRefreshToken trades the refresh token in r's `Authorization:
// Bearer` header for a new access token and the session's next refresh
// token (TokenSet.AccessToken, RefreshToken, ExpiresIn); the token presented
// is spent. A refresh token that is not its session's latest (used before,
// or replaced by ExchangeUserToken) revokes the session and every token of
// it, and is refused with an error matching ErrInvalidToken and
// ErrRefreshTokenReused. Any other invalid, wrong-kind or revoked token, or
// a session no longer tracked, is ErrInvalidToken.
func (s *Sessions) ExchangeRefreshToken(r *http.Request) (*TokenSet, error) {
	g, next, err := s.rotate(r.Header, RefreshToken)
	if err != nil {
		return nil, err
	}
	set := &TokenSet{SessionID: g.sid}
	if set.RefreshToken, _, err = s.sign(g, RefreshToken, next); err != nil {
		return nil, err
	}
	var life time.Duration
	if set.AccessToken, life, err = s.sign(g, AccessToken, ""); err != nil {
		return nil, err
	}
	set.ExpiresIn = int64(life / time.Second)
	return set, nil
}

// ExchangeUserToken trades the user token in r's `Authorization: Bearer`
// header for a new refresh token of its session (TokenSet.RefreshToken),
// which replaces the session's previous one. An invalid, wrong-kind or
// revoked token, or a session no longer tracked, is ErrInvalidToken.
func (s *Sessions) ExchangeUserToken(r *http.Request) (*TokenSet, error) {
	g, next, err := s.rotate(r.Header, UserToken)
	if err != nil {
		return nil, err
	}
	set := &TokenSet{SessionID: g.sid}
	if set.RefreshToken, _, err = s.sign(g, RefreshToken, next); err != nil {
		return nil, err
	}
	return set, nil
}

// rotate verifies the token of kind in h, makes a new refresh token id the
// live one of its session and returns it, with the grant to sign with.
func (s *Sessions) rotate(h http.Header, kind TokenKind) (*grant, string, error) {
	raw, err := bearerToken(h)
	if err != nil {
		return nil, "", err
	}
	c := s.getClaims()
	defer s.putClaims(c)
	if err := s.verify(raw, kind, c); err != nil {
		return nil, "", err
	}
	now := s.now()
	next := newTokenID()
	s.famMu.Lock()
	f, ok := s.families.Get(c.SessionID)
	switch {
	case !ok || !now.Before(f.end):
		s.famMu.Unlock()
		return nil, "", fmt.Errorf("%w: %w", ErrInvalidToken, errUnknownSession)
	case kind == RefreshToken && !equalStrings(f.refresh, c.ID):
		s.families.Remove(c.SessionID)
		s.famMu.Unlock()
		// The session is forgotten, so nothing of it can mint tokens any
		// more; only its access tokens still verify, so the revocation is
		// held as long as they live, not as long as the user token. That
		// keeps reuse (which any user can provoke) from filling the list
		// that operators' revocations need. Best effort: should the list be
		// full, the access tokens die within their lifetime anyway.
		until := now.Add(s.lifetimes[AccessToken])
		if f.end.Before(until) {
			until = f.end
		}
		s.revs.add(c.SessionID, "", now, until.Add(s.leeway), s.maxRevs)
		return nil, "", fmt.Errorf("%w: %w", ErrInvalidToken, ErrRefreshTokenReused)
	}
	f.refresh = next
	s.families.Add(c.SessionID, f)
	s.famMu.Unlock()
	return &grant{
		iat: *jwt.NewNumericDate(now), end: f.end,
		sub: c.Subject, sid: c.SessionID, env: c.Env, scope: c.Scope, role: c.Role,
	}, next, nil
}

// RevokeSession makes every token of session id (an 88Pay session id, or
// TokenSet.SessionID) invalid at once, and forgets the session's rotation
// state. The revocation is held until the longest token lifetime has
// passed. It fails with ErrRevocationsFull when the revocation list is full.
func (s *Sessions) RevokeSession(id string) error {
	s.famMu.Lock()
	s.families.Remove(id)
	s.famMu.Unlock()
	now := s.now()
	return s.revs.add(id, "", now, now.Add(s.maxLifetime()+s.leeway), s.maxRevs)
}

// RevokeSubject makes every token issued so far to the client with id
// (88Pay's merchant, or a user) invalid at once; tokens issued from the next
// second on are valid. The revocation is held until the longest token
// lifetime has passed. It fails with ErrRevocationsFull when the revocation
// list is full.
func (s *Sessions) RevokeSubject(id string) error {
	now := s.now()
	return s.revs.add("", id, now, now.Add(s.maxLifetime()+s.leeway), s.maxRevs)
}

// revocations holds revoked sessions and subjects until the tokens they
// concern have expired.
type revocations struct {
	n        atomic.Int64 // entries; 0 skips the lock on the hot path
	mu       sync.RWMutex
	sessions map[string]time.Time         // session id -> held until
	subjects map[string]subjectRevocation // subject -> tokens issued up to at
}

type subjectRevocation struct{ at, until time.Time }

// add revokes session sid or subject sub (one of them set).
func (rv *revocations) add(sid, sub string, now, until time.Time, limit int) error {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	_, had := rv.sessions[sid]
	if sub != "" {
		_, had = rv.subjects[sub]
	}
	if !had && len(rv.sessions)+len(rv.subjects) >= limit {
		for k, u := range rv.sessions {
			if !now.Before(u) {
				delete(rv.sessions, k)
			}
		}
		for k, e := range rv.subjects {
			if !now.Before(e.until) {
				delete(rv.subjects, k)
			}
		}
		if len(rv.sessions)+len(rv.subjects) >= limit {
			rv.n.Store(int64(len(rv.sessions) + len(rv.subjects)))
			return ErrRevocationsFull
		}
	}
	if sub != "" {
		rv.subjects[sub] = subjectRevocation{at: now, until: until}
	} else if u, ok := rv.sessions[sid]; !ok || until.After(u) {
		rv.sessions[sid] = until
	}
	rv.n.Store(int64(len(rv.sessions) + len(rv.subjects)))
	return nil
}

// revoked reports whether the token c describes is revoked now.
func (rv *revocations) revoked(c *tokenClaims, clock func() time.Time) bool {
	if rv.n.Load() == 0 {
		return false
	}
	now := clock()
	rv.mu.RLock()
	defer rv.mu.RUnlock()
	if u, ok := rv.sessions[c.SessionID]; ok && now.Before(u) {
		return true
	}
	e, ok := rv.subjects[c.Subject]
	return ok && now.Before(e.until) && !c.IssuedAt.After(e.at)
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
	_ Challenger = (*tokenScheme)(nil)
	_ Scheme     = (*merchantScheme)(nil)
	_ jwt.Claims = (*tokenClaims)(nil)
)
