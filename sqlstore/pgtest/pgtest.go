// Package pgtest runs a PostgreSQL server of its own for tests: on a free
// loopback port, in a temporary folder, as the postgres OS user when run as
// root (the server refuses to run as root). When no PostgreSQL binaries are
// found it installs Debian's postgresql package with apt-get, if it runs as
// root; otherwise it fails, naming the package to install.
//
// It serves the tests of sqlstore, of its command and of the demo gateway
// (cmd/apiguard-demo), and any test of a program that keeps its keys in
// PostgreSQL with sqlstore: a test that needs a real server starts one.
// It is for tests only: the server trusts every local connection.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a PostgreSQL server started by Start.
type Server struct {
	bin  string // the folder of initdb and postgres
	dir  string // the temporary folder: data/ and the socket
	port int
	cred *syscall.Credential

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *syncBuffer
}

// Start installs PostgreSQL if needed, creates a cluster in a new
// temporary folder and starts a server on a free loopback port. It returns
// once the server accepts connections. Stop it with Stop.
func Start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cleanStale()
	s := &Server{bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgtest: running as root needs the postgres OS user (the postgresql package makes it): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if s.dir, err = os.MkdirTemp("", "sqlstore-pg-"); err != nil {
		return nil, err
	}
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			os.RemoveAll(s.dir)
			return nil, err
		}
	}
	initdb := s.command(filepath.Join(bin, "initdb"), "-D", filepath.Join(s.dir, "data"),
		"-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(s.dir)
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	var errs []error
	for range 5 { // another process may take the free port first
		if s.port, err = freePort(); err != nil {
			return nil, err
		}
		if err = s.Resume(); err == nil {
			return s, nil
		}
		errs = append(errs, err)
	}
	os.RemoveAll(s.dir)
	return nil, errors.Join(errs...)
}

// command returns a command run as the server's user, with no standard
// input.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = os.TempDir()
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "LANG=C", "TZ=UTC"}
	cmd.SysProcAttr = procAttr()
	cmd.SysProcAttr.Credential = s.cred
	return cmd
}

// Port returns the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// URL returns the URL of database db on the server.
func (s *Server) URL(db string) string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(s.port) + "/" + db + "?sslmode=disable&connect_timeout=5"
}

var dbs atomic.Int64

// NewDatabase creates an empty database on the server and returns its URL.
func (s *Server) NewDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbs.Add(1))
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	return s.URL(name), nil
}

// Resume starts the server process (again, after Halt) and returns once it
// accepts connections.
func (s *Server) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := s.command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.dir, "data"),
		"-p", strconv.Itoa(s.port), "-h", "127.0.0.1", "-k", s.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=32MB", "-c", "logging_collector=off")
	s.log = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			c.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		select {
		case <-exited:
			return fmt.Errorf("pgtest: postgres exited: %s", s.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.halt()
			return fmt.Errorf("pgtest: postgres not ready after 60s: %v\n%s", err, s.log.String())
		}
	}
}

// Halt stops the server process, keeping its data, so that a test can see
// what a client does while the database is down. Resume starts it again.
func (s *Server) Halt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.halt()
}

func (s *Server) halt() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Stop stops the server and removes its folder.
func (s *Server) Stop() {
	s.Halt()
	os.RemoveAll(s.dir)
}

// binDir finds the folder of PostgreSQL's server binaries, installing
// Debian's postgresql package when there is none and the process runs as
// root.
func binDir() (string, error) {
	if dir := findBin(); dir != "" {
		return dir, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("pgtest: no PostgreSQL server binaries (initdb); install the postgresql package (apt-get install postgresql)")
	}
	if err := install(); err != nil {
		return "", err
	}
	if dir := findBin(); dir != "" {
		return dir, nil
	}
	return "", errors.New("pgtest: installed postgresql but found no initdb in /usr/lib/postgresql/*/bin")
}

// findBin returns the bin folder of the newest PostgreSQL in
// /usr/lib/postgresql (Debian's layout), or of initdb on PATH, or "".
func findBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if p, err = filepath.EvalSymlinks(p); err == nil && isExec(filepath.Join(filepath.Dir(p), "postgres")) {
			return filepath.Dir(p)
		}
	}
	return ""
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// install installs Debian's postgresql package, one process at a time (the
// test binaries of several packages may start at once).
func install() error {
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "sqlstore-pgtest-install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if findBin() != "" {
		return nil
	}
	fmt.Fprintln(os.Stderr, "pgtest: installing postgresql with apt-get")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"-o", "DPkg::Lock::Timeout=600", "update", "-qq"},
		{"-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", "--no-install-recommends", "postgresql"},
	} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("pgtest: apt-get %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// cleanStale removes the folders of servers that a test binary killed
// before it could stop them (their server died with it): folders older than
// an hour whose server is not running.
func cleanStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "sqlstore-pg-*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || time.Since(fi.ModTime()) < time.Hour {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			line, _, _ := strings.Cut(string(b), "\n")
			if pid, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && pid > 0 && syscall.Kill(pid, 0) == nil {
				continue // running
			}
		}
		os.RemoveAll(d)
	}
}

// freePort returns a TCP port free on 127.0.0.1 at the time of asking.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer is a bytes.Buffer safe for the server's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 {
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
