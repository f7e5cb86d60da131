package apiguard

import (
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

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

// Exchange trades the token of kind in r's `Authorization: Bearer` header
// for new tokens of its session; the token presented is spent:
//
//   - Exchange(r, RefreshToken) takes a refresh token and gives a new
//     access token and the session's next refresh token
//     (TokenSet.AccessToken, RefreshToken, ExpiresIn). A refresh token that
//     is not its session's latest (used before, or replaced through the
//     user token) revokes the session and every token of it, and is
//     refused with an error matching ErrInvalidToken and
//     ErrRefreshTokenReused.
//   - Exchange(r, UserToken) takes the user token and gives a new refresh
//     token of its session (TokenSet.RefreshToken), which replaces the
//     session's previous one.
//
// Any other invalid, wrong-kind or revoked token, or a session no longer
// tracked, is ErrInvalidToken. Any other kind is an error of the caller,
// matching no sentinel.
func (s *Sessions) Exchange(r *http.Request, kind TokenKind) (*TokenSet, error) {
	if kind != RefreshToken && kind != UserToken {
		return nil, fmt.Errorf("apiguard: Exchange takes a refresh or a user token, not a %v token", kind)
	}
	g, next, err := s.rotate(r.Header, kind)
	if err != nil {
		return nil, err
	}
	set := &TokenSet{SessionID: g.sid}
	if set.RefreshToken, _, err = s.sign(g, RefreshToken, next); err != nil {
		return nil, err
	}
	if kind == RefreshToken {
		var life time.Duration
		if set.AccessToken, life, err = s.sign(g, AccessToken, ""); err != nil {
			return nil, err
		}
		set.ExpiresIn = int64(life / time.Second)
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
