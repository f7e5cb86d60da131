package apiguard

import (
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestVerificationCacheNeverAcceptsWhatTheFullCheckRefuses walks a clock
// back and forth across tokens' iat, exp and the leeway, revokes sessions
// and subjects, and removes, adds and rotates keys, and after every step
// verifies each token twice: with the Sessions that remember verified
// tokens, and with the full check (the same Sessions, the cache emptied
// first). The two must agree every time; the cached one must also have
// been hit, or the test would prove nothing.
func TestVerificationCacheNeverAcceptsWhatTheFullCheckRefuses(t *testing.T) {
	f := newSessFixture(t, WithLeeway(time.Second), WithTokenLifetime(AccessToken, 60*time.Second))
	ctx := context.Background()
	k2, err := GenerateSigningKey("k2")
	if err != nil {
		t.Fatal(err)
	}
	type tok struct{ raw, sid, sub string }
	var toks []tok
	mint := func() {
		sub := []string{"m1", "m2", "m3"}[len(toks)%3]
		set, err := f.s.Issue(&Client{ID: sub, Env: Sandbox})
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok{set.AccessToken, set.SessionID, sub})
	}
	scheme := f.s.AccessScheme()
	check := func(step int, what string) (hits int) {
		for i, tk := range toks {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+tk.raw)
			_, cached := scheme.Authenticate(r)
			f.s.verified.Remove(sha256Of(tk.raw))
			_, full := scheme.Authenticate(r)
			if (cached == nil) != (full == nil) || (full != nil && !errors.Is(cached, ErrInvalidToken)) {
				t.Fatalf("step %d (%s), token %d: remembered %v, full check %v", step, what, i, cached, full)
			}
			if cached == nil {
				hits++
			}
		}
		return hits
	}
	rng := rand.New(rand.NewPCG(1, 2))
	accepted := 0
	for step := range 400 {
		var what string
		switch n := rng.IntN(20); {
		case n < 3:
			what = "mint"
			mint()
		case n < 11:
			// Around the dates: small steps, back and forth, with exact
			// boundaries (whole seconds, plus or minus a nanosecond).
			d := time.Duration(rng.IntN(7)-3)*time.Second + time.Duration(rng.IntN(3)-1)
			what = "clock " + d.String()
			f.clock.Advance(d)
		case n < 13:
			what = "clock +30s"
			f.clock.Advance(30 * time.Second)
		case n == 13 && len(toks) > 0:
			what = "revoke a session"
			f.s.RevokeSession(ctx, toks[rng.IntN(len(toks))].sid)
		case n == 14:
			what = "revoke a subject"
			f.s.RevokeSubject(ctx, []string{"m1", "m2", "m3"}[rng.IntN(3)])
		case n == 15:
			what = "remove k1"
			f.ring.Remove("k1")
		case n == 16:
			what = "add k1 back"
			f.ring.Add(f.key)
		case n == 17:
			what = "rotate to k2"
			f.ring.Rotate(k2)
		case n == 18:
			what = "rotate to k1"
			f.ring.Rotate(f.key)
		default:
			what = "nothing"
		}
		accepted += check(step, what)
	}
	if accepted < 100 {
		t.Errorf("only %d acceptances over the walk: it hardly tested the remembered path", accepted)
	}
	t.Logf("%d tokens, %d acceptances in agreement", len(toks), accepted)
}

// TestVerificationCacheIsUsed: a token verified once is not verified
// again; a ring change forgets it.
func TestVerificationCacheIsUsed(t *testing.T) {
	f := newSessFixture(t)
	set, err := f.s.Issue(&Client{ID: "m1", Env: Sandbox})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+set.AccessToken)
	calls := 0
	keyfunc := f.s.keyfunc
	f.s.keyfunc = func(tk *jwtToken) (any, error) { calls++; return keyfunc(tk) }
	for range 3 {
		if _, err := f.s.AccessScheme().Authenticate(r); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Errorf("3 verifications of one token made %d full ones, want 1", calls)
	}
	// A remembered token costs the Client (and its scopes), nothing more
	// (it was a copy of the token too). Not under the race detector, whose
	// sync.Pool drops the pooled claims at random.
	if !rateLimitRace {
		scheme := f.s.AccessScheme()
		if n := testing.AllocsPerRun(100, func() { scheme.Authenticate(r) }); n > 1 {
			t.Errorf("a remembered token: %v allocations, want 1 (the Client; it has no scopes)", n)
		}
	}
	k2, _ := GenerateSigningKey("k2")
	f.ring.Add(k2)
	if _, err := f.s.AccessScheme().Authenticate(r); err != nil || calls != 2 {
		t.Errorf("after a ring change: %v, %d full verifications, want 2", err, calls)
	}
}

func sha256Of(s string) [32]byte { return sha256.Sum256([]byte(s)) }

type jwtToken = jwt.Token
