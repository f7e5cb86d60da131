package apiguard

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// A SessionStore keeps what Sessions remember between requests: the
// sessions Login starts, each with its one live refresh token, and the
// revocations of sessions and subjects. NewSessions keeps them in the
// memory of the process unless WithSessionStore gives another store; the
// redisstore module has one that every replica of a server shares.
//
// Times are those of the Sessions' clock (WithClock). Each method is
// atomic: of two calls racing on one session, on any replicas, each sees
// the other's effect entirely or not at all, so two replicas presented
// the same refresh token mint one successor and see the other as reuse.
// A method that cannot answer (its backend is down or slow) returns an
// error: Sessions then refuse the request with 503 (ErrUnavailable) and
// mint nothing; they never take a failed check for a pass.
//
// A store only ever receives ids from tokens whose signature Sessions
// verified, or that Sessions made.
type SessionStore interface {
	// Start tracks session sid of user sub, whose live refresh token has
	// id refresh, until end (when its user token expires). When the
	// store holds its share of sessions for sub, it makes room by
	// forgetting the user's oldest session that is not revoked; when it
	// cannot (all are revoked for reuse, or the store is full), it fails
	// with ErrStoreFull. One user's Start never forgets another user's
	// session.
	Start(ctx context.Context, sid, sub, refresh string, now, end time.Time) error

	// Rotate makes next the live refresh token of session sid, and
	// returns when the session ends. presented is the id of the refresh
	// token presented, or "" when the session's user token is (it
	// replaces whatever refresh token is live). When presented is not
	// the live refresh token, Rotate revokes every token of the session
	// until burnUntil, forgets its rotation state and returns
	// ErrRefreshTokenReused. A session not tracked, ended by now, or
	// revoked, gives the zero time and a nil error.
	Rotate(ctx context.Context, sid, presented, next string, now, burnUntil time.Time) (end time.Time, err error)

	// RevokeSession revokes every token of session sid until until, and
	// forgets its rotation state. It is an operator's revocation:
	// ErrStoreFull if the store holds its share of them still in force.
	RevokeSession(ctx context.Context, sid string, now, until time.Time) error

	// RevokeSubject revokes, until until, every token of subject sub
	// issued at or before at (to the second, as tokens are dated). It
	// fails with ErrStoreFull as RevokeSession does.
	RevokeSubject(ctx context.Context, sub string, at, until time.Time) error

	// Revoked reports whether a token of session sid and subject sub,
	// issued at iat, is revoked at now.
	Revoked(ctx context.Context, sid, sub string, iat, now time.Time) (bool, error)
}

// memorySessions is the SessionStore NewSessions makes unless given one:
// at most max sessions, perUser of them per user, and maxRevs operators'
// revocations, each dropped once past. See Login and RevokeSession.
type memorySessions struct {
	mu      sync.Mutex
	fams    families
	max     int
	perUser int

	revs    revocations
	maxRevs int
}

func newMemorySessions(capacity int) *memorySessions {
	m := &memorySessions{max: capacity, perUser: min(maxUserSessions, capacity), maxRevs: max(capacity/10, 1)}
	m.fams.byID = make(map[string]*family)
	m.fams.users = make(map[string][]string)
	m.revs.sessions = make(map[string]time.Time)
	m.revs.burnt = make(map[string]time.Time)
	m.revs.subjects = make(map[string]subjectRevocation)
	return m
}

func (m *memorySessions) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.fams.byID)
}

func (m *memorySessions) Start(_ context.Context, sid, sub, refresh string, now, end time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fams.add(sid, &family{sub: sub, refresh: refresh, end: end}, now, m.max, m.perUser, &m.revs)
}

func (m *memorySessions) Rotate(_ context.Context, sid, presented, next string, now, burnUntil time.Time) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fams.expire(now, &m.revs)
	f, ok := m.fams.byID[sid]
	switch {
	case !ok || f.burnt || !now.Before(f.end):
		return time.Time{}, nil
	case presented != "" && !equalStrings(f.refresh, presented):
		// Nothing of the session can mint tokens any more; only its access
		// tokens still verify, so the revocation is held as long as they
		// live, with the session: it keeps its place among the user's
		// sessions until then, and takes none of the operators' list.
		m.fams.burn(sid, f, burnUntil, &m.revs)
		return time.Time{}, ErrRefreshTokenReused
	}
	f.refresh = next
	return f.end, nil
}

func (m *memorySessions) RevokeSession(_ context.Context, sid string, now, until time.Time) error {
	m.mu.Lock()
	if f, ok := m.fams.byID[sid]; ok && !f.burnt {
		m.fams.remove(sid, f, &m.revs)
	}
	m.mu.Unlock()
	return m.revs.add(sid, "", now, now, until, m.maxRevs)
}

func (m *memorySessions) RevokeSubject(_ context.Context, sub string, at, until time.Time) error {
	return m.revs.add("", sub, at, at, until, m.maxRevs)
}

func (m *memorySessions) Revoked(_ context.Context, sid, sub string, iat, now time.Time) (bool, error) {
	return m.revs.revoked(sid, sub, iat, now), nil
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

// burn marks f (session sid) revoked until until.
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

// revocations holds revoked sessions and subjects until the tokens they
// concern have expired.
type revocations struct {
	n        atomic.Int64 // entries; 0 skips the lock on the hot path
	mu       sync.RWMutex
	sessions map[string]time.Time         // operators': session id -> held until
	subjects map[string]subjectRevocation // operators': subject -> tokens issued up to at
	burnt    map[string]time.Time         // reuse: session id -> held until; one per burnt family
}

type subjectRevocation struct{ at, until time.Time }

func (rv *revocations) count() {
	rv.n.Store(int64(len(rv.sessions) + len(rv.subjects) + len(rv.burnt)))
}

// add revokes session sid or subject sub (one of them set; a subject's
// tokens issued up to at), for an operator: at most limit such
// revocations are held; those past at now are dropped to make room.
func (rv *revocations) add(sid, sub string, at, now, until time.Time, limit int) error {
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
			rv.count()
			return ErrStoreFull
		}
	}
	if sub != "" {
		rv.subjects[sub] = subjectRevocation{at: at, until: until}
	} else if u, ok := rv.sessions[sid]; !ok || until.After(u) {
		rv.sessions[sid] = until
	}
	rv.count()
	return nil
}

// burn revokes session sid until then, for refresh-token reuse; unburn
// drops it once then has passed. The session's family holds the place.
func (rv *revocations) burn(sid string, until time.Time) {
	rv.mu.Lock()
	rv.burnt[sid] = until
	rv.count()
	rv.mu.Unlock()
}

func (rv *revocations) unburn(sid string) {
	rv.mu.Lock()
	delete(rv.burnt, sid)
	rv.count()
	rv.mu.Unlock()
}

// revoked reports whether a token of session sid and subject sub issued at
// iat is revoked at now.
func (rv *revocations) revoked(sid, sub string, iat, now time.Time) bool {
	if rv.n.Load() == 0 {
		return false
	}
	rv.mu.RLock()
	defer rv.mu.RUnlock()
	if u, ok := rv.sessions[sid]; ok && now.Before(u) {
		return true
	}
	if u, ok := rv.burnt[sid]; ok && now.Before(u) {
		return true
	}
	e, ok := rv.subjects[sub]
	return ok && now.Before(e.until) && !iat.After(e.at)
}

var _ SessionStore = (*memorySessions)(nil)
