package apiguard

import "context"

// RevokeSession makes every token of session id (an 88Pay session id, or
// TokenSet.SessionID) invalid at once, and forgets the session's rotation
// state. The revocation is held until the longest token lifetime has
// passed.
//
// In memory, operators' revocations (RevokeSession, RevokeSubject) have a
// list of their own, a tenth of the capacity (WithCapacity): nothing a user
// does takes room in it (revocations made by refresh-token reuse are held
// with the session, see Login). It fails with ErrStoreFull only when that
// list is full of operators' revocations still in force, and with the
// SessionStore's error when it fails: either way the revocation did not
// take effect.
func (s *Sessions) RevokeSession(ctx context.Context, id string) error {
	now := s.now()
	return s.store.RevokeSession(ctx, id, now, now.Add(s.maxLifetime()+s.leeway))
}

// RevokeSubject makes every token issued so far to the client with id
// (88Pay's merchant, or a user) invalid at once; tokens issued from the next
// second on are valid. The revocation is held until the longest token
// lifetime has passed. It fails with ErrStoreFull as RevokeSession does.
func (s *Sessions) RevokeSubject(ctx context.Context, id string) error {
	now := s.now()
	return s.store.RevokeSubject(ctx, id, now, now.Add(s.maxLifetime()+s.leeway))
}
