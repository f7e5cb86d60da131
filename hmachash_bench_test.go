package apiguard

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/apiguard/apiguard/internal/wire"
)

// benchBody is a 200-byte order body.
var benchBody = func() []byte {
	b := `{"user_id":"123456","zone":"1234","produk_id":"1","ref_id":"REF_123456789","note":"`
	return []byte(b + strings.Repeat("x", 200-len(b)-2) + `"}`)
}()

// BenchmarkHashAuth measures hash signatures on a 200-byte JSON body
// against the floor of any such check: SHA-256 over key and fields, hex
// decoding of the presented digest, a constant-time comparison and a copy
// of the body. The sub-benchmarks:
//
//   - floor: that, by hand; floor+lookup adds the KeyStore's lookup of
//     the X-API-Key (MemoryKeyStore hashes the key: a second SHA-256);
//   - scheme/*: the Scheme's Authenticate alone, on a request whose
//     state exists (the body read and parsed, the key looked up, the
//     digest computed and compared);
//   - identify/*: the same through g.Identify on a fresh request, which
//     adds the Guard's per-request state (two allocations);
//   - wrapper/*: the whole g.Authenticate() wrapper up to a handler that
//     reads the body it is handed.
//
// Variants: key (X-API-Key, the digest over ref_id), order (the same and a
// computed price) and status (the key of the client an owner function
// names, tried through KeyStore.Secrets).
func BenchmarkHashAuth(b *testing.B) {
	keys := resellerStore(b)
	flat := func(*http.Request, *Client) (string, error) { return "14500", nil }
	owner := func(*http.Request, []string) (string, error) { return "123", nil }
	guards := []struct {
		name   string
		g      *Guard
		digest string
	}{
		{"key", MustNew(HashSignature(SignerFromHeader(keys, "X-API-Key"), []Field{BodyField("ref_id", nil)})), seedHash(goldKey, "REF_123456789")},
		{"order", MustNew(HashSignature(SignerFromHeader(keys, "X-API-Key"), []Field{BodyField("ref_id", nil), ComputedField(flat)},
			WithRequiredHeaders("X-Request-Time"))), seedHash(goldKey, "REF_123456789", "14500")},
		{"status", MustNew(HashSignature(SignerFromOwner(keys, owner), []Field{BodyField("ref_id", nil)})), seedHash(goldKey, "REF_123456789")},
	}
	b.Run("floor", func(b *testing.B) { benchHashFloor(b, nil) })
	b.Run("floor+lookup", func(b *testing.B) { benchHashFloor(b, keys) })
	for _, tc := range guards {
		b.Run("scheme/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			r, rd := newBenchReq(tc.digest)
			s, r := begin(r)
			for b.Loop() {
				rd.Reset(benchBody)
				*s = state{Context: s.Context, carried: s.carried} // a new request's state, without allocating it
				if _, err := tc.g.scheme.Authenticate(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, tc := range guards {
		b.Run("identify/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			r, rd := newBenchReq(tc.digest)
			for b.Loop() {
				rd.Reset(benchBody)
				if _, err := tc.g.Identify(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, tc := range guards {
		b.Run("wrapper/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			var buf [512]byte
			h := tc.g.Authenticate()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n, _ := io.ReadFull(r.Body, buf[:len(benchBody)]); n != len(benchBody) {
					b.Fatal("short body")
				}
			}))
			w := &discard{h: http.Header{}}
			r, rd := newBenchReq(tc.digest)
			for b.Loop() {
				rd.Reset(benchBody)
				h.ServeHTTP(w, r)
			}
		})
	}
}

// benchHashFloor is the floor of hash auth written by hand: the body copy,
// SHA-256 over key, ref_id and price, hex decoding and a constant-time
// compare; with keys, also the KeyStore lookup the order route makes.
func benchHashFloor(b *testing.B, keys KeyStore) {
	b.ReportAllocs()
	r, rd := newBenchReq(seedHash(goldKey, "REF_123456789", "14500"))
	for b.Loop() {
		rd.Reset(benchBody)
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			b.Fatal(err)
		}
		if keys != nil {
			c, err := keys.Lookup(r.Context(), r.Header.Get("X-API-Key"))
			if err != nil || c.ID != "123" {
				b.Fatal(err)
			}
		}
		var m [128]byte
		msg := append(m[:0], goldKey...)
		msg = append(msg, "REF_123456789"...)
		msg = append(msg, "14500"...)
		d := sha256.Sum256(msg)
		var p [sha256.Size]byte
		hex.Decode(p[:], []byte(r.Header.Get("Authorization")[len("Bearer "):]))
		if subtle.ConstantTimeCompare(d[:], p[:]) != 1 {
			b.Fatal("mismatch")
		}
	}
}

// newBenchReq returns an order request signed with digest, and the reader
// of its body, to rewind between iterations.
func newBenchReq(digest string) (*http.Request, *bytes.Reader) {
	rd := bytes.NewReader(benchBody)
	r, _ := http.NewRequest("POST", "http://example.com/topup/order", rd)
	r.Header.Set("Authorization", "Bearer "+digest)
	r.Header.Set("X-API-Key", goldKey)
	r.Header.Set("X-Request-Time", "1763805600")
	return r, rd
}

// sizedBody returns a JSON order body of n bytes (at least 64), its note
// padded with x.
func sizedBody(n int) []byte {
	b := `{"ref_id":"REF_123456789","note":"`
	return []byte(b + strings.Repeat("x", n-len(b)-2) + `"}`)
}

// BenchmarkHashAuthBody measures the hash scheme through its wrapper on
// bodies of 200 bytes, 10 KiB and 1 MiB (the default limit), whose length
// the request announces (known) or does not (unknown, as a chunked body),
// against two floors that read the body into a buffer of its size:
//
//   - floor: the body copy, the KeyStore's lookup of the X-API-Key, SHA-256
//     over key and ref_id, hex decoding and a constant-time compare;
//   - floor+json: the same and the strict JSON reader every hash request
//     passes (wire.JSONFields), as lean a floor as the job allows.
//
// The handler does not read the body, so that what is measured is the
// check.
func BenchmarkHashAuthBody(b *testing.B) {
	keys := resellerStore(b)
	g := MustNew(HashSignature(SignerFromHeader(keys, "X-API-Key"), []Field{BodyField("ref_id", nil)}))
	digest := seedHash(goldKey, "REF_123456789")
	for _, size := range []int{200, 10 << 10, 1 << 20} {
		body := sizedBody(size)
		name := "size=" + strconv.Itoa(size)
		for _, json := range []bool{false, true} {
			fname := "/floor"
			if json {
				fname += "+json"
			}
			b.Run(name+fname, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(size))
				defer reportCPU(b)()
				names := []string{"ref_id"}
				var jv [1]wire.JSONValue
				r, rd := newSizedReq(digest, body)
				for b.Loop() {
					rd.Reset(body)
					buf := make([]byte, r.ContentLength)
					if _, err := io.ReadFull(r.Body, buf); err != nil {
						b.Fatal(err)
					}
					c, err := keys.Lookup(r.Context(), r.Header.Get("X-API-Key"))
					if err != nil || c.ID != "123" {
						b.Fatal(err)
					}
					ref := "REF_123456789"
					if json {
						if err := wire.JSONFields(buf, names, jv[:]); err != nil {
							b.Fatal(err)
						}
						ref = string(jv[0].Str.Decode(nil))
					}
					var m [128]byte
					msg := append(m[:0], goldKey...)
					msg = append(msg, ref...)
					d := sha256.Sum256(msg)
					var p [sha256.Size]byte
					hex.Decode(p[:], []byte(r.Header.Get("Authorization")[len("Bearer "):]))
					if subtle.ConstantTimeCompare(d[:], p[:]) != 1 {
						b.Fatal("mismatch")
					}
				}
			})
		}
		for _, known := range []bool{true, false} {
			cl := "/apiguard/cl=known"
			if !known {
				cl = "/apiguard/cl=unknown"
			}
			b.Run(name+cl, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(size))
				defer reportCPU(b)()
				ok := false
				h := g.Authenticate()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ok = true }))
				w := &discard{h: http.Header{}}
				r, rd := newSizedReq(digest, body)
				for b.Loop() {
					rd.Reset(body)
					if !known {
						r.ContentLength = -1
					}
					ok = false
					h.ServeHTTP(w, r)
					if !ok {
						b.Fatal("refused")
					}
				}
			})
		}
	}
}

// newSizedReq returns an order request for body signed with digest, and
// the reader of its body, to rewind between iterations.
func newSizedReq(digest string, body []byte) (*http.Request, *bytes.Reader) {
	rd := bytes.NewReader(body)
	r, _ := http.NewRequest("POST", "http://example.com/topup/order", rd)
	r.Header.Set("Authorization", "Bearer "+digest)
	r.Header.Set("X-API-Key", goldKey)
	return r, rd
}
