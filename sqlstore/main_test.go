package sqlstore

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apiguard/apiguard/sqlstore/pgtest"
)

// TestMain stops the PostgreSQL server the tests started, if any, and
// removes its folder (see package pgtest, which installs Debian's
// postgresql package first if the machine has none).
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// backend is a kind of database the tests run against.
type backend struct {
	name string
	url  func(t testing.TB) string // a new, empty database
}

var backends = []backend{
	{"postgres", func(t testing.TB) string {
		u, err := pgtest.Shared(t).NewDatabase(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return u
	}},
	{"sqlite", func(t testing.TB) string {
		return "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	}},
}

// eachBackend runs f as a subtest for each backend.
func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// open opens a Store on url, closed when t ends.
func open(t testing.TB, url string, opts ...Option) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// clock is a settable clock for the tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// startServer starts a PostgreSQL server for a test that stops it.
func startServer() (*pgtest.Server, error) { return pgtest.Start() }
