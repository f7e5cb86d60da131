package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
)

// bound is how long a call may take, at most, when Redis is down or hung,
// with a timeout of 100ms: a liveness bound, far above the timeout, not a
// performance target.
const bound = 5 * time.Second

// within runs f and fails t if it takes longer than bound.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); f() }()
	select {
	case <-done:
		t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
	case <-time.After(bound):
		t.Fatalf("%s: no answer after %v", what, bound)
	}
}

// TestRedisDown stops the server under a limiter and an id store: calls
// fail within their timeout, and the wrapper fails closed (503) or open as
// configured.
func TestRedisDown(t *testing.T) {
	srv, err := startRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	rdb := srv.client(t)
	for _, ws := range [][]apiguard.Window{{apiguard.PerMinute(5)}, {apiguard.PerMinute(5), apiguard.PerHour(50)}} {
		l := mustLimiter(t, rdb, ws, WithTimeout(10*time.Second)) // a warm-up: a busy machine is no failure
		take(t, l, "k", 1)
	}
	ids, err := NewIDStore(rdb)
	if err != nil {
		t.Fatal(err)
	}

	var denials []error
	g := apiguard.MustNew(nil, apiguard.WithDialect(apiguard.Reseller()),
		apiguard.WithObserver(func(d apiguard.Decision) {
			if d.Allowed {
				return
			}
			denials = append(denials, d.Err)
		}))
	l := mustLimiter(t, rdb, []apiguard.Window{apiguard.PerMinute(5)})
	closed := g.RateLimit(l, apiguard.ByIP())
	open := g.RateLimit(l, apiguard.ByIP(), apiguard.WithFailOpen())
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})

	srv.stop()

	for _, ws := range [][]apiguard.Window{{apiguard.PerMinute(5)}, {apiguard.PerMinute(5), apiguard.PerHour(50)}} {
		l := mustLimiter(t, rdb, ws)
		within(t, "Take, "+fmt.Sprint(ws[0].Limit, "/", ws[0].Period)+"+"+itoa(len(ws)-1), func() {
			if _, err := l.Take(context.Background(), "k", 1); err == nil {
				t.Error("no error with Redis down")
			}
		})
	}
	within(t, "Seen", func() {
		if _, err := ids.Seen(context.Background(), "ns", "id", time.Minute); err == nil {
			t.Error("no error with Redis down")
		}
	})
	within(t, "fail closed", func() {
		w := httptest.NewRecorder()
		closed(ok).ServeHTTP(w, httptest.NewRequest("GET", "/product", nil))
		if w.Code != 503 {
			t.Errorf("fail closed: %d", w.Code)
		}
		wantJSON(t, w.Body.Bytes(), `{"status":"error","message":"Service unavailable","code":503}`)
		if len(denials) != 1 || !errors.Is(denials[0], apiguard.ErrUnavailable) {
			t.Errorf("hook saw %v", denials)
		}
	})
	within(t, "fail open", func() {
		w := httptest.NewRecorder()
		open(ok).ServeHTTP(w, httptest.NewRequest("GET", "/product", nil))
		if w.Code != 200 {
			t.Errorf("fail open: %d", w.Code)
		}
	})
}
