package apiguard

import (
	"sync"
	"sync/atomic"
	"time"
)

// RevokeSession makes every token of session id (an 88Pay session id, or
// TokenSet.SessionID) invalid at once, and forgets the session's rotation
// state. The revocation is held until the longest token lifetime has
// passed. It fails with ErrStoreFull when the revocation list is full.
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
// lifetime has passed. It fails with ErrStoreFull when the revocation
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
			return ErrStoreFull
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
