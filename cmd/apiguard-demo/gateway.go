package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/apiguard/apiguard"
)

// api is one seed API: how to mount it, and what the start-up banner says
// of it.
type api struct {
	title       string
	credentials []string
	curl        func(base, secureBase string) string
	mount       func(mux *http.ServeMux, cfg config) error
	keys        *demoKeys // its fixed API keys, if any (see db.go)
}

// apis lists the seed APIs in seed order.
var apis = []api{mockPayAPI, topupAPI, midtransAPI, clientAPI, pay88API}

// loopback is the demo's trusted proxies: X-Forwarded-For and
// X-Forwarded-Proto count only when the peer is on loopback.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// common returns the options every Guard of the demo shares.
func (cfg config) common() []apiguard.Option {
	opts := []apiguard.Option{apiguard.WithClock(cfg.now), apiguard.WithTrustedProxies(loopback...)}
	return append(opts, cfg.admin.observer()...)
}

// newGateway wires the five seed APIs on one mux.
func newGateway(cfg config) (http.Handler, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	})
	for _, a := range apis {
		if err := a.mount(mux, cfg); err != nil {
			return nil, err
		}
	}
	return mux, nil
}

// writeJSON writes v as a JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// decodeJSON decodes a JSON object of at most 64 KiB from r's body into v,
// refusing unknown trailing data.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// randomID returns prefix followed by n random bytes in upper-case hex.
func randomID(prefix string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return prefix + strings.ToUpper(hex.EncodeToString(b))
}

// uuid4 returns a random (version 4) UUID.
func uuid4() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// boundedMap is a map with a capacity, safe for concurrent use: the demo's
// stores never grow without bound.
type boundedMap[K comparable, V any] struct {
	mu  sync.Mutex
	m   map[K]V
	max int
}

func newBoundedMap[K comparable, V any](max int) *boundedMap[K, V] {
	return &boundedMap[K, V]{m: make(map[K]V), max: max}
}

var errFull = errors.New("demo store full")

// add stores v under k unless k is present (false) or the map is full.
func (b *boundedMap[K, V]) add(k K, v V) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[k]; ok {
		return false, nil
	}
	if len(b.m) >= b.max {
		return false, errFull
	}
	b.m[k] = v
	return true, nil
}

func (b *boundedMap[K, V]) get(k K) (V, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[k]
	return v, ok
}
