package bench

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apiguard/apiguard"
)

// The Reseller order route of the hash benchmarks: a reseller's key, its
// client, and the price every order of the benchmark costs.
const (
	resellerKey   = "rsl_live_4f9a1c7e2b8d6035a1e4c9b7d2f08a6e"
	resellerID    = "123"
	resellerPrice = "14500"
	resellerRef   = "REF_123456789"
)

// orderBody returns a Reseller order of exactly n bytes: the documented
// fields, then a note that pads it.
func orderBody(n int) []byte {
	head := `{"user_id":"123456","zone":"1234","produk_id":"1","ref_id":"` + resellerRef + `","note":"`
	return []byte(head + strings.Repeat("x", n-len(head)-2) + `"}`)
}

// orderRequest returns an order request with body, signed as the Reseller
// API documents (SHA256(api_key + ref_id + price) in hex), and the Vary
// that rewinds its body before each use.
func orderRequest(body []byte) (*http.Request, Vary) {
	d := sha256.Sum256([]byte(resellerKey + resellerRef + resellerPrice))
	rd := bytes.NewReader(body)
	rc := io.NopCloser(rd)
	r := httptest.NewRequest("POST", "/api/order", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+hex.EncodeToString(d[:]))
	r.Header.Set("X-API-Key", resellerKey)
	r.Header.Set("X-Request-Time", "1763805600")
	return r, func(r *http.Request, _ int) {
		rd.Reset(body)
		r.Body = rc
	}
}

// readingOK is the handler of the hash benchmarks: it reads the body it is
// handed and counts the request as OK does when the body is whole.
func readingOK(size int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n, err := io.Copy(io.Discard, r.Body); err != nil || n != int64(size) {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		OK.ServeHTTP(w, r)
	})
}

var hashLibs = []struct {
	name string
	make func(tb testing.TB, size int) http.Handler
}{
	// apiguard: the Reseller order route, HashSignature with the key in
	// X-API-Key, ref_id from the body and the price computed, X-Request-Time
	// required, the body limit raised to the largest body.
	{"apiguard", func(tb testing.TB, size int) http.Handler {
		keys, err := apiguard.NewMemoryKeyStore()
		if err != nil {
			tb.Fatal(err)
		}
		if err := keys.Add(apiguard.KeySpec{Key: resellerKey, Client: apiguard.Client{ID: resellerID, KeyID: "k-gold", Role: "gold"}, KeepSecret: true}); err != nil {
			tb.Fatal(err)
		}
		price := func(*http.Request, *apiguard.Client) (string, error) { return resellerPrice, nil }
		scheme := apiguard.HashSignature(apiguard.SignerFromHeader(keys, "X-API-Key"),
			[]apiguard.Field{apiguard.BodyField("ref_id", nil), apiguard.ComputedField(price)},
			apiguard.WithRequiredHeaders("X-Request-Time"), apiguard.WithBodyLimit(1<<20))
		return apiguard.MustNew(scheme, apiguard.WithDialect(apiguard.Reseller())).Authenticate()(readingOK(size))
	}},
	{"floor", func(_ testing.TB, size int) http.Handler {
		return HashFloor(map[string]string{resellerKey: resellerID}, resellerPrice, readingOK(size))
	}},
	// floor-strict: the floor with the key found by its digest and the
	// body read through by strictRefID, the two checks of apiguard's that
	// HashFloor leaves out.
	{"floor-strict", func(_ testing.TB, size int) http.Handler {
		return HashFloorStrict(map[string]string{resellerKey: resellerID}, resellerPrice, readingOK(size))
	}},
}

// BenchmarkHashAuth compares the Reseller order route's hash signature
// (apiguard's HashSignature) with its floors (HashFloor, and
// HashFloorStrict with apiguard's two safety checks) on bodies of 200
// bytes, 10 KiB and 1 MiB; the handler reads the body it is handed. No
// peer library has such a scheme.
func BenchmarkHashAuth(b *testing.B) {
	for _, size := range []int{200, 10 << 10, 1 << 20} {
		body := orderBody(size)
		name := map[int]string{200: "200B", 10 << 10: "10KiB", 1 << 20: "1MiB"}[size]
		for _, lib := range hashLibs {
			b.Run("case="+name+"/lib="+lib.name, func(b *testing.B) {
				h := lib.make(b, size)
				r, vary := orderRequest(body)
				b.SetBytes(int64(size))
				Run(b, h, r, vary)
			})
		}
	}
}
