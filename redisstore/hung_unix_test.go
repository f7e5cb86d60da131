//go:build unix

package redisstore

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
)

// TestRedisHung stops the server process (SIGSTOP): connections are
// accepted by the kernel but nothing answers. Calls fail within their
// timeout, and work again once the server continues.
func TestRedisHung(t *testing.T) {
	srv, err := startRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	rdb := srv.client(t)
	one := mustLimiter(t, rdb, []apiguard.Window{apiguard.PerMinute(5)})
	two := mustLimiter(t, rdb, []apiguard.Window{apiguard.PerMinute(5), apiguard.PerHour(50)})
	ids, err := NewIDStore(rdb)
	if err != nil {
		t.Fatal(err)
	}
	take(t, one, "k", 1)

	if err := srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for name, l := range map[string]*Limiter{"one window": one, "two windows": two} {
		within(t, name, func() {
			if _, err := l.Take(context.Background(), "k", 1); err == nil {
				t.Error("no error from a hung Redis")
			}
		})
	}
	within(t, "Seen", func() {
		if _, err := ids.Seen(context.Background(), "ns", "id", time.Minute); err == nil {
			t.Error("no error from a hung Redis")
		}
	})
	if err := srv.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// The commands that timed out may still run now: count on a new key.
	if res := take(t, two, "k2", 1); !res.Allowed || res.Remaining != 4 {
		t.Errorf("after the server continued: %+v", res)
	}
}
