// Package sessionstoretest holds the behaviour every apiguard.SessionStore
// must have, as one test suite: the memory store of the root package and
// redisstore's SessionStore both run it, so the two cannot drift apart.
package sessionstoretest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
)

// PerUser is the number of sessions of one user a store tracks.
const PerUser = 16

// New makes an empty store tracking at most capacity sessions. Each call
// must return a store that shares nothing with the stores of earlier calls.
type New func(t *testing.T, capacity int) apiguard.SessionStore

// Run runs the suite against the stores newStore makes. Times are near the
// wall clock (a store may hand them to a server that expires keys by its own
// clock) and move forward only.
func Run(t *testing.T, newStore New) {
	ctx := context.Background()
	base := time.Now().Truncate(time.Millisecond)
	day := base.Add(24 * time.Hour)

	t.Run("Rotation", func(t *testing.T) {
		s := newStore(t, 100)
		must(t, s.Start(ctx, "s1", "alice", "r1", base, day))
		end, err := s.Rotate(ctx, "s1", "r1", "r2", base.Add(time.Second), base.Add(time.Minute))
		if err != nil || !end.Equal(day) {
			t.Fatalf("Rotate of the live token: %v, %v; want the session's end %v", end, err, day)
		}
		end, err = s.Rotate(ctx, "s1", "r2", "r3", base.Add(2*time.Second), base.Add(time.Minute))
		if err != nil || !end.Equal(day) {
			t.Fatalf("Rotate of the next token: %v, %v", end, err)
		}
		// The user token replaces whatever refresh token is live.
		if end, err = s.Rotate(ctx, "s1", "", "r4", base.Add(3*time.Second), base.Add(time.Minute)); err != nil || end.IsZero() {
			t.Fatalf("Rotate with the user token: %v, %v", end, err)
		}
		if end, err = s.Rotate(ctx, "nobody", "r1", "x", base, base.Add(time.Minute)); err != nil || !end.IsZero() {
			t.Fatalf("Rotate of an unknown session: %v, %v; want the zero time", end, err)
		}
		revoked(t, s, "s1", "alice", base, base.Add(3*time.Second), false)
	})

	t.Run("Reuse", func(t *testing.T) {
		s := newStore(t, 100)
		must(t, s.Start(ctx, "s1", "alice", "r1", base, day))
		must(t, s.Start(ctx, "s2", "alice", "q1", base, day))
		if _, err := s.Rotate(ctx, "s1", "r1", "r2", base, base.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		burn := base.Add(61 * time.Second)
		end, err := s.Rotate(ctx, "s1", "r1", "r3", base.Add(time.Second), burn)
		if !errors.Is(err, apiguard.ErrRefreshTokenReused) || !end.IsZero() {
			t.Fatalf("Rotate of a spent token: %v, %v; want ErrRefreshTokenReused", end, err)
		}
		// Every token of the session is revoked until burn, and nothing
		// of it mints again, not even its latest refresh token.
		revoked(t, s, "s1", "alice", base, base.Add(time.Second), true)
		revoked(t, s, "s1", "alice", base, burn.Add(-time.Millisecond), true)
		revoked(t, s, "s1", "alice", base, burn, false)
		if end, err := s.Rotate(ctx, "s1", "r2", "r4", base.Add(2*time.Second), burn); err != nil || !end.IsZero() {
			t.Fatalf("Rotate of a burnt session: %v, %v; want the zero time", end, err)
		}
		// The user's other session is untouched.
		revoked(t, s, "s2", "alice", base, base.Add(time.Second), false)
		if end, err := s.Rotate(ctx, "s2", "q1", "q2", base.Add(2*time.Second), burn); err != nil || end.IsZero() {
			t.Fatalf("Rotate of another session of the user: %v, %v", end, err)
		}
	})

	t.Run("End", func(t *testing.T) {
		s := newStore(t, 100)
		end := base.Add(time.Hour)
		must(t, s.Start(ctx, "s1", "alice", "r1", base, end))
		if got, err := s.Rotate(ctx, "s1", "r1", "r2", end.Add(-time.Millisecond), end.Add(time.Minute)); err != nil || !got.Equal(end) {
			t.Fatalf("Rotate just before the session's end: %v, %v", got, err)
		}
		if got, err := s.Rotate(ctx, "s1", "r2", "r3", end, end.Add(time.Minute)); err != nil || !got.IsZero() {
			t.Fatalf("Rotate at the session's end: %v, %v; want the zero time", got, err)
		}
	})

	t.Run("RevokeSession", func(t *testing.T) {
		s := newStore(t, 100)
		must(t, s.Start(ctx, "s1", "alice", "r1", base, day))
		until := base.Add(time.Hour)
		must(t, s.RevokeSession(ctx, "s1", base, until))
		revoked(t, s, "s1", "alice", base, base, true)
		revoked(t, s, "s1", "alice", base, until.Add(-time.Millisecond), true)
		revoked(t, s, "s1", "alice", base, until, false)
		revoked(t, s, "s2", "alice", base, base, false)
		if end, err := s.Rotate(ctx, "s1", "r1", "r2", base.Add(time.Second), until); err != nil || !end.IsZero() {
			t.Fatalf("Rotate of a revoked session: %v, %v; want the zero time", end, err)
		}
		// Revoking a session no store knows holds too (88Pay's sessions
		// are not tracked), and a later, longer revocation extends it.
		must(t, s.RevokeSession(ctx, "sess_x", base, base.Add(time.Minute)))
		must(t, s.RevokeSession(ctx, "sess_x", base, base.Add(2*time.Minute)))
		must(t, s.RevokeSession(ctx, "sess_x", base, base.Add(30*time.Second)))
		revoked(t, s, "sess_x", "m", base, base.Add(90*time.Second), true)
		revoked(t, s, "sess_x", "m", base, base.Add(2*time.Minute), false)
	})

	t.Run("RevokeSubject", func(t *testing.T) {
		s := newStore(t, 100)
		at := base.Add(10 * time.Second).Truncate(time.Second).Add(500 * time.Millisecond)
		until := at.Add(time.Hour)
		must(t, s.RevokeSubject(ctx, "alice", at, until))
		issuedBefore := at.Truncate(time.Second)
		revoked(t, s, "s1", "alice", issuedBefore, at, true)
		revoked(t, s, "s1", "alice", issuedBefore.Add(-time.Hour), at, true)
		revoked(t, s, "s1", "alice", issuedBefore.Add(time.Second), at.Add(time.Second), false)
		revoked(t, s, "s1", "alice", issuedBefore, until, false)
		revoked(t, s, "s1", "bob", issuedBefore, at, false)
	})

	t.Run("OneUserCannotShutOutAnother", func(t *testing.T) {
		s := newStore(t, PerUser+2)
		for i := range 3 * PerUser {
			must(t, s.Start(ctx, fmt.Sprint("a", i), "alice", "r", base, day))
		}
		// Alice's logins made room among her own sessions only: her
		// oldest are forgotten, her latest 16 live, and bob logs in.
		for i := range 3 * PerUser {
			end, err := s.Rotate(ctx, fmt.Sprint("a", i), "", "n", base, base.Add(time.Minute))
			if live := i >= 2*PerUser; err != nil || end.IsZero() == live {
				t.Fatalf("alice's session %d: %v, %v; want it tracked: %v", i, end, err, live)
			}
		}
		must(t, s.Start(ctx, "b0", "bob", "r", base, day))
		must(t, s.Start(ctx, "b1", "bob", "r", base, day))
		if err := s.Start(ctx, "c0", "carol", "r", base, day); !errors.Is(err, apiguard.ErrStoreFull) {
			t.Fatalf("Start past the capacity: %v, want ErrStoreFull", err)
		}
		// A user at their share still logs in when the store is full:
		// the room is made among their own sessions.
		must(t, s.Start(ctx, "a-last", "alice", "r", base, day))
		if end, err := s.Rotate(ctx, "b0", "", "n", base, base.Add(time.Minute)); err != nil || end.IsZero() {
			t.Fatalf("bob's session after alice's login: %v, %v; want it tracked", end, err)
		}
		// Once sessions end, there is room again.
		if err := s.Start(ctx, "c0", "carol", "r", day, day.Add(time.Hour)); err != nil {
			t.Fatalf("Start once every session ended: %v", err)
		}
	})

	t.Run("BurntSessionsHoldTheirPlace", func(t *testing.T) {
		s := newStore(t, 100)
		burn := base.Add(time.Minute)
		for i := range PerUser {
			sid := fmt.Sprint("a", i)
			must(t, s.Start(ctx, sid, "alice", "r1", base, day))
			if _, err := s.Rotate(ctx, sid, "spent", "r2", base, burn); !errors.Is(err, apiguard.ErrRefreshTokenReused) {
				t.Fatalf("reuse: %v", err)
			}
		}
		if err := s.Start(ctx, "a-new", "alice", "r", base.Add(time.Second), day); !errors.Is(err, apiguard.ErrStoreFull) {
			t.Fatalf("Start with every place burnt: %v, want ErrStoreFull", err)
		}
		revoked(t, s, "a0", "alice", base, base.Add(time.Second), true)
		if err := s.Start(ctx, "a-new", "alice", "r", burn, day); err != nil {
			t.Fatalf("Start once the burnt sessions' revocations ended: %v", err)
		}
		must(t, s.Start(ctx, "b0", "bob", "r", base.Add(time.Second), day))
	})

	t.Run("ConcurrentRotation", func(t *testing.T) {
		s := newStore(t, 100)
		for round := range 20 {
			sid := fmt.Sprint("s", round)
			user := fmt.Sprint("user", round)
			must(t, s.Start(ctx, sid, user, "r1", base, day))
			var (
				wg          sync.WaitGroup
				mu          sync.Mutex
				won, reused int
			)
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					end, err := s.Rotate(ctx, sid, "r1", fmt.Sprint("n", i), base.Add(time.Second), base.Add(time.Minute))
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil && !end.IsZero():
						won++
					case errors.Is(err, apiguard.ErrRefreshTokenReused), err == nil && end.IsZero():
						reused++
					default:
						t.Errorf("Rotate: %v, %v", end, err)
					}
				}()
			}
			wg.Wait()
			if won != 1 || reused != 7 {
				t.Fatalf("8 racing rotations of one token: %d minted, %d refused; want 1 and 7", won, reused)
			}
			revoked(t, s, sid, user, base, base.Add(2*time.Second), true)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func revoked(t *testing.T, s apiguard.SessionStore, sid, sub string, iat, now time.Time, want bool) {
	t.Helper()
	got, err := s.Revoked(context.Background(), sid, sub, iat, now)
	if err != nil || got != want {
		t.Fatalf("Revoked(%s, %s, iat %v) at %v: %v, %v; want %v", sid, sub, iat.Format(time.StampMilli), now.Format(time.StampMilli), got, err, want)
	}
}
