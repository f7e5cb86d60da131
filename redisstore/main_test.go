package redisstore

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/apiguard/apiguard/internal/redistest"
)

// shared is the redis-server the tests share; tests that stop a server
// start their own.
var shared *redisServer

// TestMain runs the tests against a redis-server of their own, on a free
// loopback port, and stops it after. Without redis-server the tests fail:
// install the Debian package redis-server (scripts/test.sh does).
func TestMain(m *testing.M) {
	var err error
	shared, err = startRedis()
	if err != nil {
		fmt.Fprintln(os.Stderr, "redisstore: cannot start redis-server for the tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	shared.stop()
	os.Exit(code)
}

// redisServer is a redis-server process started by the tests.
type redisServer struct {
	cmd  *exec.Cmd
	addr string
	srv  *redistest.Server
}

// startRedis starts redis-server on a free loopback port, without
// persistence, and returns once it accepts connections.
func startRedis() (*redisServer, error) {
	srv, err := redistest.Start()
	if err != nil {
		return nil, err
	}
	return &redisServer{cmd: srv.Cmd, addr: srv.Addr, srv: srv}, nil
}

// stop ends the server and removes its directory.
func (s *redisServer) stop() { s.srv.Stop() }

// client returns a client of s with the options the package requires,
// closed when t ends.
func (s *redisServer) client(t testing.TB) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: s.addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

var prefixes atomic.Int64

// prefix returns a key prefix no other test uses.
func prefix(t testing.TB) Option {
	return WithPrefix("test" + strconv.FormatInt(prefixes.Add(1), 10) + ":")
}
