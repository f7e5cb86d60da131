//go:build unix

package redisstore

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
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

// TestTimedOutRequestDoesNotBurnItsID: requests refused with 503 because
// Redis did not answer in time (stopped with SIGSTOP: their SET may already
// sit in its sockets and run when it continues) leave no id recorded, so
// the retry of each is accepted, not refused with 409.
func TestTimedOutRequestDoesNotBurnItsID(t *testing.T) {
	srv, err := startRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	rdb := srv.client(t)
	ids, err := NewIDStore(rdb, WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		t.Fatal(err)
	}
	keys.Add(apiguard.KeySpec{Key: "app-key", Client: apiguard.Client{ID: "app", Publishable: true}})
	g := apiguard.MustNew(apiguard.AppKey(keys))
	h := g.RequestID(ids, time.Minute)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	send := func(id string) int {
		r := httptest.NewRequest("POST", "/", nil)
		r.Header.Set("x-app-key", "app-key")
		r.Header.Set("x-request-id", id)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	// Fill the client's pool with live connections, so that requests
	// write their SET to the stopped server rather than wait for a
	// connection.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { rdb.Ping(context.Background()) })
	}
	wg.Wait()

	if err := srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	const n = 200
	codes := make([]int, n)
	within(t, "requests to a stopped Redis", func() {
		for i := range n {
			wg.Go(func() { codes[i] = send("r-" + strconv.Itoa(i)) })
		}
		wg.Wait()
	})
	if err := srv.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for i, c := range codes {
		if c != 503 {
			t.Fatalf("request %d while Redis was stopped: %d, want 503", i, c)
		}
	}
	burned := 0
	for i := range n {
		c := send("r-" + strconv.Itoa(i))
		for try := 0; c == 503 && try < 5; try++ { // a busy machine: retry, as a client would
			c = send("r-" + strconv.Itoa(i))
		}
		switch c {
		case 200:
		case 409:
			burned++
		default:
			t.Errorf("retry %d: %d", i, c)
		}
	}
	if burned > 0 {
		t.Errorf("%d of %d ids refused with 409 on retry after a 503, want 0", burned, n)
	}
	// The retries used their ids: a replay is refused.
	if c := send("r-0"); c != 409 {
		t.Errorf("replay of a retried id: %d, want 409", c)
	}
}
