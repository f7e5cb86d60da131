package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

// benchBody is a 200-byte order body, as in apiguard's BenchmarkHashAuth.
var benchBody = func() []byte {
	b := `{"user_id":"123456","zone":"1234","produk_id":"1","ref_id":"REF_123456789","note":"`
	return []byte(b + strings.Repeat("x", 200-len(b)-2) + `"}`)
}()

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
