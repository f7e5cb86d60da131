package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/internal/redistest"
)

// TestRestart restarts the server under every store: with an append-only
// file (appendonly yes) a limit, a request id, a session's rotation state
// and a revocation survive it; without persistence every one of them is
// lost: the limit admits its whole burst again, the id is fresh again, the
// revoked session verifies again and the refresh token is refused. The
// README's "Running several replicas" states both; this test holds it.
func TestRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []redistest.Option
		kept bool
	}{{"appendonly", []redistest.Option{redistest.AppendOnly}, true}, {"no persistence", nil, false}} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := redistest.Start(tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Stop()
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
			defer rdb.Close()
			ctx := context.Background()
			l := mustLimiter(t, rdb, []apiguard.Window{apiguard.PerMinute(3)})
			ids, err := NewIDStore(rdb)
			if err != nil {
				t.Fatal(err)
			}
			sessions, err := NewSessionStore(rdb)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			take(t, l, "k", 3)
			if fresh, err := ids.Seen(ctx, "ns", "id-1", time.Hour); err != nil || !fresh {
				t.Fatal(fresh, err)
			}
			if err := sessions.Start(ctx, "s1", "alice", "r1", now, now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := sessions.RevokeSession(ctx, "s2", now, now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}

			if err := srv.Restart(tc.opts...); err != nil {
				t.Fatal(err)
			}
			for i := 0; rdb.Ping(ctx).Err() != nil; i++ {
				if i == 50 {
					t.Fatal("no answer after the restart")
				}
				time.Sleep(100 * time.Millisecond)
			}

			if res := take(t, l, "k", 1); res.Allowed == tc.kept {
				t.Errorf("the limit after a restart: allowed %v, want %v", res.Allowed, !tc.kept)
			}
			if fresh, err := ids.Seen(ctx, "ns", "id-1", time.Hour); err != nil || fresh == tc.kept {
				t.Errorf("the request id after a restart: fresh %v (%v), want %v", fresh, err, !tc.kept)
			}
			if revoked, err := sessions.Revoked(ctx, "s2", "bob", now, now); err != nil || revoked != tc.kept {
				t.Errorf("the revocation after a restart: %v (%v), want %v", revoked, err, tc.kept)
			}
			if end, err := sessions.Rotate(ctx, "s1", "r1", "r2", now, now.Add(time.Minute)); err != nil || end.IsZero() == tc.kept {
				t.Errorf("the session after a restart: end %v (%v), want it tracked: %v", end, err, tc.kept)
			}
		})
	}
}
