//go:build unix

package redisstore

import (
	"context"
	"errors"
	"syscall"
	"testing"

	"github.com/apiguard/apiguard"
)

// TestSessionsRedisHung stops the server (SIGSTOP) under two replicas'
// Sessions: verification, refresh and login fail closed within the
// timeout, with 503 (ErrUnavailable), never as a pass; once the server
// continues, the session goes on.
func TestSessionsRedisHung(t *testing.T) {
	srv, err := startRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	rdb := srv.client(t)
	a, b := replica(t, rdb), replica(t, rdb)
	ctx := context.Background()
	set, err := a.Login(ctx, &apiguard.Client{ID: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	within(t, "verify", func() {
		if err := accepted(b, set.AccessToken); !errors.Is(err, apiguard.ErrUnavailable) {
			t.Errorf("verify with Redis stopped: %v, want ErrUnavailable", err)
		}
	})
	within(t, "exchange", func() {
		if got, err := b.Exchange(tokenRequest(set.RefreshToken), apiguard.RefreshToken); !errors.Is(err, apiguard.ErrUnavailable) || got != nil {
			t.Errorf("exchange with Redis stopped: %v, %v; want ErrUnavailable and no tokens", got, err)
		}
	})
	within(t, "login", func() {
		if _, err := a.Login(ctx, &apiguard.Client{ID: "demo"}); !errors.Is(err, apiguard.ErrUnavailable) {
			t.Errorf("login with Redis stopped: %v, want ErrUnavailable", err)
		}
	})
	if err := srv.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := accepted(b, set.AccessToken); err != nil {
		t.Errorf("verify once Redis continued: %v", err)
	}
}
