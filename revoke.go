package apiguard

import (
	"sync"
	"sync/atomic"
	"time"
)

// RevokeSession makes every token of session id (an 88Pay session id, or
// TokenSet.SessionID) invalid at once, and forgets the session's rotation
// state. The revocation is held until the longest token lifetime has
// passed.
//
// Operators' revocations (RevokeSession, RevokeSubject) have a list of
// their own, a tenth of the capacity (WithCapacity): nothing a user does
// takes room in it (revocations made by refresh-token reuse are held with
// the session, see Login). It fails with ErrStoreFull only when that list
// is full of operators' revocations still in force: the revocation did not
// take effect.
func (s *Sessions) RevokeSession(id string) error {
	now := s.now()
	s.famMu.Lock()
	if f, ok := s.fams.byID[id]; ok && !f.burnt {
		s.fams.remove(id, f, &s.revs)
	}
	s.famMu.Unlock()
	return s.revs.add(id, "", now, now.Add(s.maxLifetime()+s.leeway), s.maxRevs)
}

// RevokeSubject makes every token issued so far to the client with id
// (88Pay's merchant, or a user) invalid at once; tokens issued from the next
// second on are valid. The revocation is held until the longest token
// lifetime has passed. It fails with ErrStoreFull as RevokeSession does.
func (s *Sessions) RevokeSubject(id string) error {
	now := s.now()
	return s.revs.add("", id, now, now.Add(s.maxLifetime()+s.leeway), s.maxRevs)
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

// add revokes session sid or subject sub (one of them set), for an
// operator: at most limit such revocations are held.
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
			rv.count()
			return ErrStoreFull
		}
	}
	if sub != "" {
		rv.subjects[sub] = subjectRevocation{at: now, until: until}
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
	if u, ok := rv.burnt[c.SessionID]; ok && now.Before(u) {
		return true
	}
	e, ok := rv.subjects[c.Subject]
	return ok && now.Before(e.until) && !c.IssuedAt.After(e.at)
}
