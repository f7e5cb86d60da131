// Command loopback serves the two routes of the loopback throughput test
// (scripts/bench.sh loopback) in one process:
//
//	GET /bare          the handler alone
//	GET /bare-headers  the handler alone, writing the three RateLimit-*
//	                   headers a guarded response carries (fixed values of
//	                   the same widths): the guarded route's response,
//	                   byte for byte in size, without the guard's work
//	GET /guarded       the same handler behind apiguard: Authenticate with
//	                   Bearer (a MemoryKeyStore holding -key), then
//	                   RateLimit by client (a MemoryLimiter, RateLimit-*
//	                   headers on)
//
// The handler writes {"status":"success"} as application/json. The limit,
// 1,000 requests per 10 ms per client (100,000 a second), refuses nothing
// a load generator on one machine can send, with headers of ordinary
// widths (as in the Go benchmarks: a limit of millions would write
// numbers of seven digits, which no API's limits have). Once listening, loopback prints
// "listening on <address>" on standard output; it stops on SIGINT or
// SIGTERM.
//
//	loopback [-addr 127.0.0.1:8089] [-key sk_test_...]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/apiguard/apiguard"
)

// DefaultKey is the key the guarded route accepts unless -key says
// otherwise.
const DefaultKey = "sk_test_loopback0123456789abcdef"

func main() {
	addr := flag.String("addr", "127.0.0.1:8089", "the `address` to listen on (port 0: any free port)")
	key := flag.String("key", DefaultKey, "the Bearer `key` the guarded route accepts")
	flag.Parse()
	h, err := handler(*key)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

var okBody = []byte(`{"status":"success"}`)

func ok(w http.ResponseWriter, _ *http.Request) {
	w.Header()["Content-Type"] = []string{"application/json"}
	w.Write(okBody)
}

// handler returns the mux of the two routes, the guarded one accepting
// key.
func handler(key string) (http.Handler, error) {
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		return nil, err
	}
	if err := keys.Add(apiguard.KeySpec{Key: key, Client: apiguard.Client{ID: "loopback", KeyID: "key-loopback"}}); err != nil {
		return nil, err
	}
	limiter, err := apiguard.NewMemoryLimiter([]apiguard.Window{{Limit: 1000, Period: 10 * time.Millisecond}})
	if err != nil {
		return nil, err
	}
	g, err := apiguard.New(apiguard.Bearer(keys))
	if err != nil {
		return nil, err
	}
	guard := apiguard.Chain(g.Authenticate(), g.RateLimit(limiter, apiguard.ByClient()))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bare", ok)
	mux.HandleFunc("GET /bare-headers", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Ratelimit-Limit"], h["Ratelimit-Remaining"], h["Ratelimit-Reset"] = []string{"1000"}, []string{"999"}, []string{"1"}
		ok(w, r)
	})
	mux.Handle("GET /guarded", guard(http.HandlerFunc(ok)))
	return mux, nil
}
