package redisstore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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
	cmd    *exec.Cmd
	addr   string
	dir    string
	exited chan struct{}
}

// startRedis starts redis-server on a free loopback port, without
// persistence, and returns once it accepts connections.
func startRedis() (*redisServer, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("%w (apt-get install redis-server)", err)
	}
	var errs []error
	for range 5 { // another process may take the free port before redis-server does
		s, err := tryRedis(path)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func tryRedis(path string) (*redisServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "redisstore-test-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
		"--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "notice")
	cmd.SysProcAttr = procAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &redisServer{cmd: cmd, addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir, exited: make(chan struct{})}
	ready := make(chan bool, 1)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			if !signalled {
				log.WriteString(sc.Text() + "\n")
				if strings.Contains(sc.Text(), "Ready to accept connections") {
					ready <- true
					signalled = true
				}
			}
		}
		io.Copy(io.Discard, out)
		if !signalled {
			ready <- false
		}
		cmd.Wait()
		close(s.exited)
	}()
	select {
	case ok := <-ready:
		if ok {
			return s, nil
		}
		<-s.exited
		os.RemoveAll(dir)
		return nil, fmt.Errorf("redis-server exited: %s", log.String())
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, errors.New("redis-server not ready after 30s")
	}
}

// stop ends the server and removes its directory.
func (s *redisServer) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	os.RemoveAll(s.dir)
}

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
