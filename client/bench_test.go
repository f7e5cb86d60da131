package client_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apiguard/apiguard/client"
)

// nopTransport answers every request at once, so that benchmarks measure
// the signing alone.
type nopTransport struct{}

var okResponse = &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}

func (nopTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return okResponse, nil
}

var benchBody = []byte(`{"user_id":"123456","zone":"1234","produk_id":"1","ref_id":"REF_123456789","note":"` + strings.Repeat("x", 110) + `"}`) // 200 bytes

func benchRequest(b *testing.B, ctx context.Context, body []byte) *http.Request {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequestWithContext(ctx, "POST", "https://api.example/v1/order", rd)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkBearer compares a Bearer Transport with its baseline: the
// caller cloning the request and setting the header by hand.
func BenchmarkBearer(b *testing.B) {
	s, _ := client.Bearer("sandbox_sk_test_xxxxxxxxxxxxxxxxxxxxxxxx")
	rt := client.Transport(s, nopTransport{})
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := benchRequest(b, context.Background(), nil)
			r2 := r.Clone(r.Context())
			r2.Header.Set("Authorization", "Bearer sandbox_sk_test_xxxxxxxxxxxxxxxxxxxxxxxx")
			nopTransport{}.RoundTrip(r2)
		}
	})
	b.Run("Transport", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rt.RoundTrip(benchRequest(b, context.Background(), nil))
		}
	})
}

// BenchmarkOrderHash compares the order signature of a 200-byte body with
// its floor: clone, read the body into a buffer, SHA-256 of key + ref_id +
// price, hex, the three headers.
func BenchmarkOrderHash(b *testing.B) {
	const key = "topup_demo_key_gold"
	s, _ := client.OrderHash(key, client.WithClock(func() time.Time { return time.Unix(1764000000, 0) }))
	rt := client.Transport(s, nopTransport{})
	ctx := client.WithPrice(context.Background(), 14500)
	b.Run("floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := benchRequest(b, ctx, benchBody)
			r2 := r.Clone(r.Context())
			var buf bytes.Buffer
			buf.ReadFrom(r2.Body)
			r2.Body = io.NopCloser(bytes.NewReader(buf.Bytes()))
			sum := sha256.Sum256([]byte(key + "REF_123456789" + "14500"))
			r2.Header.Set("Authorization", "Bearer "+hex.EncodeToString(sum[:]))
			r2.Header.Set("X-Api-Key", key)
			r2.Header.Set("X-Request-Time", "1764000000")
			nopTransport{}.RoundTrip(r2)
		}
	})
	b.Run("Transport", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rt.RoundTrip(benchRequest(b, ctx, benchBody))
		}
	})
}

// BenchmarkHMAC compares an HMAC signature of a 200-byte body (the time
// and ref_id signed, the client named in a header) with its floor: clone,
// read the body into a buffer, HMAC-SHA256 of the joined fields, hex, the
// three headers.
func BenchmarkHMAC(b *testing.B) {
	const secret = "whsec_demo_0123456789"
	s, _ := client.NewHMAC(secret, []client.Field{client.HeaderField("X-Request-Time"), client.JSONField("ref_id")},
		client.SendTime("X-Request-Time"), client.SendHeader("X-Client-Id", "acme"),
		client.WithClock(func() time.Time { return time.Unix(1764000000, 0) }))
	rt := client.Transport(s, nopTransport{})
	b.Run("floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := benchRequest(b, context.Background(), benchBody)
			r2 := r.Clone(r.Context())
			var buf bytes.Buffer
			buf.ReadFrom(r2.Body)
			r2.Body = io.NopCloser(bytes.NewReader(buf.Bytes()))
			m := hmac.New(sha256.New, []byte(secret))
			m.Write([]byte("1764000000\nREF_123456789"))
			r2.Header.Set("Authorization", "Bearer "+hex.EncodeToString(m.Sum(nil)))
			r2.Header.Set("X-Client-Id", "acme")
			r2.Header.Set("X-Request-Time", "1764000000")
			nopTransport{}.RoundTrip(r2)
		}
	})
	b.Run("Transport", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rt.RoundTrip(benchRequest(b, context.Background(), benchBody))
		}
	})
}

// BenchmarkPay88Cached measures a request sent with a cached token against
// a Bearer Transport, its baseline.
func BenchmarkPay88Cached(b *testing.B) {
	tokenBody := `{"status":"Success","code":200,"message":"Token generated successfully","data":{"access_token":"eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.e30.sig","expires_in":60,"session_id":"sess_53a2cfc4-441e-4554-b560-4e008784d98e"}}`
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == "/api/auth/token" {
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tokenBody))}, nil
		}
		return nopTransport{}.RoundTrip(r)
	})
	now := time.Now()
	p, err := client.NewSession("https://api.example/api/auth/token", "sk_test_a1b2c3d4e5f6g7h8", "MCH-COL-29ZTP4", base,
		client.WithClock(func() time.Time { return now }))
	if err != nil {
		b.Fatal(err)
	}
	s, _ := client.Bearer("eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.e30.sig")
	bearer := client.Transport(s, base)
	b.Run("Bearer", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bearer.RoundTrip(benchRequest(b, context.Background(), nil))
		}
	})
	b.Run("Session", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.RoundTrip(benchRequest(b, context.Background(), nil))
		}
	})
	b.Run("Pay88Parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p.RoundTrip(benchRequest(b, context.Background(), nil))
			}
		})
	})
}
