package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/internal/sessionstoretest"
	"github.com/redis/go-redis/v9"
)

func TestSessionStore(t *testing.T) {
	sessionstoretest.Run(t, func(t *testing.T, capacity int) apiguard.SessionStore {
		s, err := NewSessionStore(shared.client(t), prefix(t), WithCapacity(capacity), WithTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// replica is one server's Sessions, on a Redis shared with the others.
func replica(t *testing.T, rdb redis.UniversalClient, opts ...Option) *apiguard.Sessions {
	t.Helper()
	ring, sync, err := NewKeyRing(context.Background(), rdb, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sync.Close() })
	store, err := NewSessionStore(rdb, opts...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := apiguard.NewSessions("https://api.example.com", ring, apiguard.WithSessionStore(store))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tokenRequest(tok string) *http.Request {
	r := httptest.NewRequest("POST", "/client/auth/refresh", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func accepted(s *apiguard.Sessions, access string) error {
	_, err := s.AccessScheme().Authenticate(tokenRequest(access))
	return err
}

// TestSessionsAcrossReplicas is the two-replica failure list of issue 12,
// on one Redis: each used to work on one replica only.
func TestSessionsAcrossReplicas(t *testing.T) {
	rdb := shared.client(t)
	p, slow := prefix(t), WithTimeout(10*time.Second) // a busy machine is not a failure
	a, b := replica(t, rdb, p, slow), replica(t, rdb, p, slow)
	ctx := context.Background()
	user := &apiguard.Client{ID: "demo", Scopes: []string{"profile:read"}}

	// A refresh token minted on A is exchanged on B, and the access
	// token B mints verifies on A.
	set, err := a.Login(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	next, err := b.Exchange(tokenRequest(set.RefreshToken), apiguard.RefreshToken)
	if err != nil {
		t.Fatalf("refresh token of A exchanged on B: %v", err)
	}
	if err := accepted(a, next.AccessToken); err != nil {
		t.Fatalf("access token of B on A: %v", err)
	}
	// Reuse of the spent token on A revokes the session on both.
	if _, err := a.Exchange(tokenRequest(set.RefreshToken), apiguard.RefreshToken); !errors.Is(err, apiguard.ErrRefreshTokenReused) {
		t.Fatalf("reuse on A: %v, want ErrRefreshTokenReused", err)
	}
	for name, s := range map[string]*apiguard.Sessions{"A": a, "B": b} {
		if err := accepted(s, next.AccessToken); !errors.Is(err, apiguard.ErrInvalidToken) {
			t.Errorf("access token of a session burnt on A, on %s: %v", name, err)
		}
	}
	if _, err := b.Exchange(tokenRequest(next.RefreshToken), apiguard.RefreshToken); !errors.Is(err, apiguard.ErrInvalidToken) {
		t.Errorf("latest refresh token of a burnt session on B: %v", err)
	}

	// An operator's revocations on one replica hold on the other.
	set, _ = a.Login(ctx, user)
	if err := b.RevokeSession(ctx, set.SessionID); err != nil {
		t.Fatal(err)
	}
	if err := accepted(a, set.AccessToken); !errors.Is(err, apiguard.ErrInvalidToken) {
		t.Errorf("access token of a session revoked on B, on A: %v", err)
	}
	other, _ := b.Login(ctx, &apiguard.Client{ID: "someone"})
	if err := a.RevokeSubject(ctx, "someone"); err != nil {
		t.Fatal(err)
	}
	if err := accepted(b, other.AccessToken); !errors.Is(err, apiguard.ErrInvalidToken) {
		t.Errorf("access token of a subject revoked on A, on B: %v", err)
	}
}

// TestConcurrentRefreshAcrossReplicas races the two replicas on one
// refresh token: one successor, and the session burnt.
func TestConcurrentRefreshAcrossReplicas(t *testing.T) {
	rdb := shared.client(t)
	p := prefix(t)
	slow := WithTimeout(10 * time.Second) // a busy machine is not a failure
	reps := []*apiguard.Sessions{replica(t, rdb, p, slow), replica(t, rdb, p, slow)}
	ctx := context.Background()
	for round := range 25 {
		set, err := reps[round%2].Login(ctx, &apiguard.Client{ID: fmt.Sprint("user", round)})
		if err != nil {
			t.Fatal(err)
		}
		var minted, reused atomic.Int32
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := reps[i%2].Exchange(tokenRequest(set.RefreshToken), apiguard.RefreshToken)
				switch {
				case err == nil:
					minted.Add(1)
				case errors.Is(err, apiguard.ErrInvalidToken):
					reused.Add(1)
				default:
					t.Errorf("exchange: %v", err)
				}
			}()
		}
		wg.Wait()
		if minted.Load() != 1 || reused.Load() != 5 {
			t.Fatalf("round %d: %d minted, %d refused; want 1 and 5", round, minted.Load(), reused.Load())
		}
	}
}
