// Package redistest starts redis-server processes for the tests of the
// repository's modules (redisstore, the demo gateway): on a free loopback
// port, in a directory of their own, stopped and removed after. Without
// the redis-server binary, Start fails: install Debian's redis-server
// package (scripts/test.sh does).
package redistest

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
	"time"
)

// Server is a redis-server process.
type Server struct {
	Cmd  *exec.Cmd // the process; tests may signal it (SIGSTOP, SIGCONT)
	Addr string    // host:port on loopback
	Dir  string    // its working directory: the AOF and RDB files

	exited chan struct{}
}

// An Option adds arguments to redis-server's command line.
type Option []string

// AppendOnly makes the server log every write to an append-only file in
// its directory (fsync every second), so that a restart (Restart) keeps
// its data.
var AppendOnly = Option{"--appendonly", "yes", "--appendfsync", "everysec"}

// Start starts redis-server on a free loopback port, without persistence
// unless an option asks for it, and returns once it accepts connections.
func Start(opts ...Option) (*Server, error) {
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, err
	}
	var errs []error
	for range 5 { // another process may take the free port before redis-server does
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := start(dir, port, opts)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
	}
	os.RemoveAll(dir)
	return nil, errors.Join(errs...)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func start(dir string, port int, opts []Option) (*Server, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("%w (apt-get install redis-server)", err)
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
		"--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "notice"}
	for _, o := range opts {
		args = append(args, o...)
	}
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = procAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Cmd: cmd, Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir, exited: make(chan struct{})}
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
		return nil, fmt.Errorf("redis-server exited: %s", log.String())
	case <-time.After(30 * time.Second):
		s.kill()
		return nil, errors.New("redis-server not ready after 30s")
	}
}

// kill ends the process, gracefully first (a shutdown writes the AOF).
func (s *Server) kill() {
	s.Cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.Cmd.Process.Kill()
		<-s.exited
	}
}

// Restart stops the server and starts it again on the same port and
// directory, with opts (give the options it was started with): it keeps
// its data only with AppendOnly.
func (s *Server) Restart(opts ...Option) error {
	s.kill()
	port, _ := strconv.Atoi(s.Addr[strings.LastIndexByte(s.Addr, ':')+1:])
	n, err := start(s.Dir, port, opts)
	if err != nil {
		return err
	}
	*s = *n
	return nil
}

// Stop ends the server and removes its directory.
func (s *Server) Stop() {
	s.kill()
	os.RemoveAll(s.Dir)
}
