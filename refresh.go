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
//
// Sessions track at most their capacity of sessions (WithCapacity), each
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
	defer s.famMu.Unlock()
	if err := s.fams.add(g.sid, &family{sub: g.sub, refresh: refresh, end: g.end}, s.now(), s.maxFams, s.userFams, &s.revs); err != nil {
		return nil, err
	}
	return set, nil
}

// family is the rotation state of a session issued by Login.
type family struct {
	sub     string    // the user
	refresh string    // id of the session's one live refresh token
	end     time.Time // expiry of the user token (of the access tokens once burnt); nothing of the session outlives it
	burnt   bool      // revoked for refresh-token reuse, held until end
}

// families are the sessions Login tracks: at most a capacity in all and a
// number per user, each until its end. See Login.
type families struct {
	byID  map[string]*family
	users map[string][]string  // user -> their session ids, oldest first
	q     expiryQueue[famItem] // min-heap by end; may hold items of sessions gone or burnt since
}

type famItem struct {
	sid string
	end int64 // Unix nanoseconds
}

func (it famItem) expiry() int64 { return it.end }

// expire drops the families whose end is past.
func (fs *families) expire(now time.Time, rv *revocations) {
	t := now.UnixNano()
	for fs.q.due(t) {
		it := fs.q.pop()
		if f, ok := fs.byID[it.sid]; ok && f.end.UnixNano() == it.end {
			fs.remove(it.sid, f, rv)
		}
	}
}

// add tracks f as session sid, making room as Login says, or fails with
// ErrStoreFull.
func (fs *families) add(sid string, f *family, now time.Time, limit, perUser int, rv *revocations) error {
	fs.expire(now, rv)
	mine := fs.users[f.sub]
	if len(mine) >= perUser {
		// The user's oldest session that is not burnt makes room; burnt
		// ones hold their revocation until their access tokens expire.
		evicted := false
		for _, old := range mine {
			if o := fs.byID[old]; !o.burnt {
				fs.remove(old, o, rv)
				evicted = true
				break
			}
		}
		if !evicted {
			return ErrStoreFull
		}
	} else if len(fs.byID) >= limit {
		return ErrStoreFull
	}
	fs.byID[sid] = f
	fs.users[f.sub] = append(fs.users[f.sub], sid)
	fs.q.push(famItem{sid, f.end.UnixNano()})
	return nil
}

// burn marks f (session sid) revoked until until, which is not after its
// end.
func (fs *families) burn(sid string, f *family, until time.Time, rv *revocations) {
	f.burnt, f.end, f.refresh = true, until, ""
	fs.q.push(famItem{sid, until.UnixNano()})
	rv.burn(sid, until)
}

// remove forgets session sid, tracked as f.
func (fs *families) remove(sid string, f *family, rv *revocations) {
	delete(fs.byID, sid)
	mine := fs.users[f.sub]
	for i, x := range mine {
		if x == sid {
			mine = append(mine[:i], mine[i+1:]...)
			break
		}
	}
	if len(mine) == 0 {
		delete(fs.users, f.sub)
	} else {
		fs.users[f.sub] = mine
	}
	if f.burnt {
		rv.unburn(sid)
	}
	// Items of sessions gone stay in the heap until their time; rebuild it
	// when they are as many as the live ones, so that it holds at most
	// about twice the capacity.
	if len(fs.q) > 2*len(fs.byID)+64 {
		fs.q = fs.q[:0]
		for id, f := range fs.byID {
			fs.q.push(famItem{id, f.end.UnixNano()})
		}
	}
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
	s.fams.expire(now, &s.revs)
	f, ok := s.fams.byID[c.SessionID]
	switch {
	case !ok || f.burnt || !now.Before(f.end):
		s.famMu.Unlock()
		return nil, "", fmt.Errorf("%w: %w", ErrInvalidToken, errUnknownSession)
	case kind == RefreshToken && !equalStrings(f.refresh, c.ID):
		// Nothing of the session can mint tokens any more; only its access
		// tokens still verify, so the revocation is held as long as they
		// live, with the session: it keeps its place among the user's
		// sessions until then, and takes none of the operators' list.
		until := now.Add(s.lifetimes[AccessToken])
		if f.end.Before(until) {
			until = f.end
		}
		s.fams.burn(c.SessionID, f, until.Add(s.leeway), &s.revs)
		s.famMu.Unlock()
		return nil, "", fmt.Errorf("%w: %w", ErrInvalidToken, ErrRefreshTokenReused)
	}
	f.refresh = next
	end := f.end
	s.famMu.Unlock()
	return &grant{
		iat: *jwt.NewNumericDate(now), end: end,
		sub: c.Subject, sid: c.SessionID, env: c.Env, scope: c.Scope, role: c.Role,
	}, next, nil
}
