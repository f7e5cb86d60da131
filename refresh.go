package apiguard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Login returns a user token, a refresh token and an access token for c in
// a new session (the client-system API's login, once the caller's
// credentials are checked), and starts tracking the session for
// refresh-token rotation. It fails as Issue does.
//
// Login fails with ErrUnavailable (503) when the SessionStore fails. In
// memory, Sessions track at most their capacity of sessions (WithCapacity), each
// until its user token expires, and at most 16 sessions of one user (c.ID;
// fewer if the capacity is smaller). A user's new login makes room by
// forgetting that user's oldest session, which can then no longer mint
// tokens (its tokens verify until they expire): one user's logins never
// touch another user's sessions. A session revoked for refresh-token
// reuse (see Exchange) keeps its place, and its revocation, until its
// access tokens have expired (61 seconds by default); should all of a
// user's 16 places be so held, their login fails with ErrStoreFull until
// the first is free. When the capacity is reached, a login of a user with
// fewer than 16 sessions fails with ErrStoreFull rather than forget
// another user's session, until one expires or is revoked: answer it with
// 503 (ErrUnavailable). A tracked session takes about 400 bytes.
func (s *Sessions) Login(ctx context.Context, c *Client) (*TokenSet, error) {
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
	if err := s.store.Start(ctx, g.sid, g.sub, refresh, s.now(), g.end); err != nil {
		return nil, storeError(err)
	}
	return set, nil
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
// tracked, is ErrInvalidToken; a failure of the SessionStore is
// ErrUnavailable, and mints nothing. Any other kind is an error of the caller,
// matching no sentinel.
func (s *Sessions) Exchange(r *http.Request, kind TokenKind) (*TokenSet, error) {
	if kind != RefreshToken && kind != UserToken {
		return nil, fmt.Errorf("apiguard: Exchange takes a refresh or a user token, not a %v token", kind)
	}
	g, next, err := s.rotate(r.Context(), r.Header, kind)
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
func (s *Sessions) rotate(ctx context.Context, h http.Header, kind TokenKind) (*grant, string, error) {
	raw, err := bearerToken(h)
	if err != nil {
		return nil, "", err
	}
	c := s.getClaims()
	defer s.putClaims(c)
	if err := s.verify(ctx, raw, kind, c); err != nil {
		return nil, "", err
	}
	now := s.now()
	next := newTokenID()
	presented := ""
	if kind == RefreshToken {
		presented = c.ID
	}
	// On reuse, the session's access tokens are the only ones still
	// verifying: its revocation is held as long as they live.
	end, err := s.store.Rotate(ctx, c.SessionID, presented, next, now, now.Add(s.lifetimes[AccessToken]+s.leeway))
	switch {
	case errors.Is(err, ErrRefreshTokenReused):
		return nil, "", fmt.Errorf("%w: %w", ErrInvalidToken, ErrRefreshTokenReused)
	case err != nil:
		return nil, "", storeError(err)
	case end.IsZero():
		return nil, "", fmt.Errorf("%w: %w", ErrInvalidToken, errUnknownSession)
	}
	return &grant{
		iat: *jwt.NewNumericDate(now), end: end,
		sub: c.Subject, sid: c.SessionID, env: c.Env, scope: c.Scope, role: c.Role,
	}, next, nil
}

// storeError is the refusal of a request whose SessionStore failed with
// err: ErrStoreFull as it is, anything else 503 (ErrUnavailable) with the
// cause "session_store_failed".
func storeError(err error) error {
	if errors.Is(err, ErrStoreFull) {
		return err
	}
	return fmt.Errorf("%w: session store: %w", errSessionStoreFailed, err)
}
