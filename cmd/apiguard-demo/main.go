// Command apiguard-demo serves the five APIs apiguard was first written for
// (MockPay, the Reseller API, Midtrans, the client-system API and 88Pay)
// with in-memory stores, so that every scheme of apiguard can be tried with
// curl in a minute:
//
//	go run ./cmd/apiguard-demo
//
// It listens on -addr (plain HTTP, default 127.0.0.1:8080) and -tls-addr
// (HTTPS with a self-signed certificate made in memory at start, default
// 127.0.0.1:8443; empty disables it), and prints the demo credentials and a
// ready curl line per API. Loopback peers are trusted as proxies: their
// X-Forwarded-For gives the client IP and their X-Forwarded-Proto: https
// counts as HTTPS. SIGINT or SIGTERM shuts it down cleanly.
//
// With -redis host:port, every limit, request id, session, signing key and
// API key lives in that Redis, so that several demos started on it behave
// as one gateway behind a load balancer (see shared.go). With -db URL the
// API keys come from a database (see db.go).
//
// A separate admin listener on -admin-addr (default 127.0.0.1:9090; empty
// disables it) serves Prometheus metrics at GET /metrics: decisions by
// outcome and reason, store latencies, store fill (see otelapiguard).
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// config is what the flags set.
type config struct {
	addr     string
	tlsAddr  string
	tokenTTL time.Duration
	db       string           // -db: the URL of a key database (see db.go); empty: keys in memory
	redis    string           // -redis: the address of the fleet's Redis (see shared.go); empty: state in memory
	now      func() time.Time // the clock; time.Now outside tests

	keys       *keyDB         // the key database run opened for -db, or nil
	fleet      *fleet         // the Redis run opened for -redis, or nil
	adminAddr  string         // the admin listener's address; "" disables it
	adminReady func(net.Addr) // called with its bound address, if not nil
	admin      *admin         // set by run when adminAddr is set
}

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "plain HTTP listen address")
	flag.StringVar(&cfg.tlsAddr, "tls-addr", "127.0.0.1:8443", "HTTPS listen address (self-signed certificate); empty disables HTTPS")
	flag.DurationVar(&cfg.tokenTTL, "token-ttl", 60*time.Second, "lifetime of 88Pay access tokens")
	flag.StringVar(&cfg.db, "db", "", "take the API keys from this database (an SQLite file or a postgres:// URL), managed with the apiguard command; empty keeps them in memory")
	flag.StringVar(&cfg.redis, "redis", "", "keep every limit, request id, session, signing key and API key in the Redis at this host:port, shared by every demo started on it; empty keeps them in memory")
	flag.StringVar(&cfg.adminAddr, "admin-addr", "127.0.0.1:9090", "admin listen address: Prometheus metrics at GET /metrics; empty disables it")
	flag.Parse()
	cfg.now = time.Now

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, nil); err != nil {
		log.Fatal(err)
	}
}

// run serves until ctx is done, then shuts down. ready, if not nil, is
// called with the bound addresses once the listeners are open.
func run(ctx context.Context, cfg config, out io.Writer, ready func(plain, secure net.Addr)) error {
	if cfg.now == nil {
		cfg.now = time.Now
	}
	keys, err := openKeyDB(ctx, cfg, out)
	if err != nil {
		return err
	}
	defer keys.Close()
	cfg.keys = keys
	f, err := openFleet(ctx, cfg)
	if err != nil {
		return err
	}
	defer f.Close()
	cfg.fleet = f
	if cfg.adminAddr != "" {
		a, err := newAdmin()
		if err != nil {
			return err
		}
		defer a.close()
		cfg.admin = a
	}
	h, err := newGateway(cfg)
	if err != nil {
		return err
	}
	plainLn, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	servers := []*http.Server{newServer(h)}
	listeners := []net.Listener{plainLn}
	var secureAddr net.Addr
	if cfg.tlsAddr != "" {
		cert, err := selfSigned()
		if err != nil {
			plainLn.Close()
			return err
		}
		ln, err := net.Listen("tcp", cfg.tlsAddr)
		if err != nil {
			plainLn.Close()
			return err
		}
		srv := newServer(h)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		servers = append(servers, srv)
		listeners = append(listeners, tls.NewListener(ln, srv.TLSConfig))
		secureAddr = ln.Addr()
	}
	if cfg.admin != nil {
		ln, err := net.Listen("tcp", cfg.adminAddr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		servers = append(servers, newServer(cfg.admin.handler))
		listeners = append(listeners, ln)
		if cfg.adminReady != nil {
			cfg.adminReady(ln.Addr())
		}
	}
	printBanner(out, plainLn.Addr(), secureAddr)
	if ready != nil {
		ready(plainLn.Addr(), secureAddr)
	}

	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			for _, srv := range servers {
				srv.Close()
			}
			return err
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var firstErr error
	for _, srv := range servers {
		if err := srv.Shutdown(shutdown); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// selfSigned makes a certificate for localhost and the loopback addresses,
// valid for a day, held only in memory.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "apiguard-demo"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func printBanner(out io.Writer, plain, secure net.Addr) {
	base := "http://" + plain.String()
	fmt.Fprintf(out, "apiguard demo gateway\n  http:  %s\n", base)
	sbase := ""
	if secure != nil {
		sbase = "https://" + secure.String()
		fmt.Fprintf(out, "  https: %s (self-signed: curl -k)\n", sbase)
	}
	fmt.Fprintln(out, "\nCredentials and one curl line per API:")
	for _, api := range apis {
		fmt.Fprintf(out, "\n%s\n", api.title)
		for _, c := range api.credentials {
			fmt.Fprintf(out, "  %s\n", c)
		}
		if api.curl != nil {
			fmt.Fprintf(out, "  $ %s\n", api.curl(base, sbase))
		}
	}
	fmt.Fprintln(out)
}
