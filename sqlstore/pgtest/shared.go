package pgtest

import (
	"sync"
	"testing"
)

// shared is the one server of a test binary, started by the first test
// that asks for it (so that fuzz workers, processes of their own, start
// none).
var shared struct {
	once sync.Once
	s    *Server
	err  error
}

// Shared returns the test binary's shared server, starting it with the
// first test that asks; each test takes a database of its own on it
// (NewDatabase). A server that cannot start fails the test. Call
// StopShared from TestMain once the tests have run.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() { shared.s, shared.err = Start() })
	if shared.err != nil {
		t.Fatal("cannot start PostgreSQL for the tests:", shared.err)
	}
	return shared.s
}

// StopShared stops the shared server and removes its folder, if a test
// started it.
func StopShared() {
	if shared.s != nil {
		shared.s.Stop()
	}
}
