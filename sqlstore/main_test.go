package sqlstore

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apiguard/apiguard/sqlstore/pgtest"
)

// pg is the PostgreSQL server the tests share; each test gets a database
// of its own on it. It starts with the first test that needs it, so that
// fuzz workers (processes of their own) start none.
var (
	pgOnce sync.Once
	pg     *pgtest.Server
	pgErr  error
)

// pgServer returns the shared server, starting it if need be; a server
// that cannot be started fails the test.
func pgServer(t testing.TB) *pgtest.Server {
	t.Helper()
	pgOnce.Do(func() {
		start := time.Now()
		pg, pgErr = pgtest.Start()
		if pgErr == nil && testing.Verbose() {
			fmt.Fprintf(os.Stderr, "sqlstore: PostgreSQL on port %d ready in %v\n", pg.Port(), time.Since(start).Round(time.Millisecond))
		}
	})
	if pgErr != nil {
		t.Fatal("cannot start PostgreSQL for the tests:", pgErr)
	}
	return pg
}

// TestMain stops the PostgreSQL server the tests started, if any, and
// removes its folder (see package pgtest, which installs Debian's
// postgresql package first if the machine has none).
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if pg != nil {
		pg.Stop()
	}
	os.Exit(code)
}

// backend is a kind of database the tests run against.
type backend struct {
	name string
	url  func(t testing.TB) string // a new, empty database
}

var backends = []backend{
	{"postgres", func(t testing.TB) string {
		u, err := pgServer(t).NewDatabase(context.Background())
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
