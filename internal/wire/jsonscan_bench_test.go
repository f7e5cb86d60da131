package wire

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// orderBody returns an order body of n bytes, as in apiguard's
// BenchmarkHashAuth: the documented fields, then a note that pads it.
func orderBody(n int) []byte {
	b := `{"user_id":"123456","zone":"1234","produk_id":"1","ref_id":"REF_123456789","note":"`
	return []byte(b + strings.Repeat("x", n-len(b)-2) + `"}`)
}

// benchBody is a 200-byte order body.
var benchBody = orderBody(200)

// BenchmarkJSONFieldsSize measures the reader on order bodies of 200
// bytes, 10 KiB and 1 MiB (most of it one long string), against
// bytes.Index for the member's name, the hash floor's search, in the same
// run.
func BenchmarkJSONFieldsSize(b *testing.B) {
	for _, n := range []int{200, 10 << 10, 1 << 20} {
		body := orderBody(n)
		name := map[int]string{200: "200B", 10 << 10: "10KiB", 1 << 20: "1MiB"}[n]
		b.Run("case="+name+"/scan", func(b *testing.B) {
			b.SetBytes(int64(n))
			vals := make([]JSONValue, 1)
			for b.Loop() {
				if err := JSONFields(body, []string{"ref_id"}, vals); err != nil || !vals[0].IsString {
					b.Fatal(err)
				}
			}
		})
		b.Run("case="+name+"/bytes.Index", func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				if !bytes.Contains(body, []byte(`"ref_id":"`)) {
					b.Fatal("not found")
				}
			}
		})
	}
}

// BenchmarkJSONFields measures the reader alone on the 200-byte body,
// against json.Valid (which only validates) in the same run.
func BenchmarkJSONFields(b *testing.B) {
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		vals := make([]JSONValue, 1)
		for b.Loop() {
			if err := JSONFields(benchBody, []string{"ref_id"}, vals); err != nil || !vals[0].IsString {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !json.Valid(benchBody) {
				b.Fatal("invalid")
			}
		}
	})
}
