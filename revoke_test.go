package apiguard

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRevocation(t *testing.T) {
	f := newSessFixture(t)
	tok1, sid1 := f.issue(t, payKey, payMerchant)
	tok2, sid2 := f.issue(t, payKey, payMerchant)
	tokO, sidO := f.issue(t, otherKey, otherMerch)
	h := f.callG.Authenticate()(okHandler)
	status := func(tok, sid string) int { return serve(h, call(tok, sid)).Code }

	if err := f.s.RevokeSession(context.Background(), sid1); err != nil {
		t.Fatal(err)
	}
	if status(tok1, sid1) != 401 || status(tok2, sid2) != 200 || status(tokO, sidO) != 200 {
		t.Error("session revocation: wrong tokens refused")
	}
	if err := f.s.RevokeSubject(context.Background(), payMerchant); err != nil {
		t.Fatal(err)
	}
	if status(tok2, sid2) != 401 || status(tokO, sidO) != 200 {
		t.Error("merchant revocation: wrong tokens refused")
	}
	// A token issued in the same second is refused too; from the next
	// second on, the merchant's new tokens work.
	if tok, sid := f.issue(t, payKey, payMerchant); status(tok, sid) != 401 {
		t.Error("token of the revocation's second accepted")
	}
	f.clock.Advance(time.Second)
	if tok, sid := f.issue(t, payKey, payMerchant); status(tok, sid) != 200 {
		t.Error("token issued after the revocation refused")
	}
}

func TestRevocationBound(t *testing.T) {
	f := newSessFixture(t, WithCapacity(20))
	if err := f.s.RevokeSession(context.Background(), "sess_a"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RevokeSubject(context.Background(), "m1"); err != nil {
		t.Fatal(err)
	}
	// Revoking again what is revoked takes no room.
	if err := f.s.RevokeSession(context.Background(), "sess_a"); err != nil {
		t.Errorf("revoking again: %v", err)
	}
	if err := f.s.RevokeSession(context.Background(), "sess_b"); !errors.Is(err, ErrStoreFull) {
		t.Errorf("full list: %v", err)
	}
	// Once every token they concern has expired, revocations make room.
	f.clock.Advance(f.s.maxLifetime() + f.s.leeway)
	if err := f.s.RevokeSession(context.Background(), "sess_b"); err != nil {
		t.Errorf("after expiry: %v", err)
	}
	if n := len(f.s.mem.revs.sessions) + len(f.s.mem.revs.subjects); n != 1 {
		t.Errorf("%d revocations held, want 1", n)
	}
}

func TestRevokeLoginSession(t *testing.T) {
	f := newSessFixture(t)
	set := login(t, f, "demo")
	if err := f.s.RevokeSession(context.Background(), set.SessionID); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.s.mem.fams.byID[set.SessionID]; ok {
		t.Error("revoked session still tracked")
	}
	if w := serve(MustNew(f.s.AccessScheme()).Authenticate()(okHandler), bearer(set.AccessToken)); w.Code != 401 {
		t.Errorf("access token of a revoked session: %d", w.Code)
	}
	if _, err := f.s.Exchange(bearer(set.UserToken), UserToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("user token of a revoked session: %v", err)
	}
}
