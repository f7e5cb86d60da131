package sqlstore

import (
	"context"
	"errors"
	"testing"

	"github.com/apiguard/apiguard"
)

// BenchmarkLookup compares Lookup through apiguard.CachedKeyStore over each
// database with apiguard.MemoryKeyStore, for a known key (hit) and an
// unknown one (miss, cached as such after the first lookup), and the
// stores' own Lookup without a cache ("direct").
//
//	go test -run '^$' -bench Lookup -benchtime 200ms
func BenchmarkLookup(b *testing.B) {
	const key = "sk_test_benchmarkbenchmarkbenchmarkbenchmark0"
	const unknown = "sk_test_unknownunknownunknownunknownunknown00"
	spec := apiguard.KeySpec{Key: key, Client: apiguard.Client{ID: "m", Scopes: []string{"payment:create"}}}
	mem, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		b.Fatal(err)
	}
	if err := mem.Add(spec); err != nil {
		b.Fatal(err)
	}
	stores := []struct {
		name  string
		store apiguard.KeyStore
	}{{"memory", mem}}
	for _, bk := range backends {
		s := open(b, bk.url(b))
		if _, err := s.Add(context.Background(), "bench", spec); err != nil {
			b.Fatal(err)
		}
		stores = append(stores, struct {
			name  string
			store apiguard.KeyStore
		}{bk.name, s})
	}
	for _, st := range stores {
		cached, err := apiguard.NewCachedKeyStore(st.store, apiguard.WithCapacity(1000))
		if err != nil {
			b.Fatal(err)
		}
		for _, mode := range []struct {
			name  string
			store apiguard.KeyStore
		}{{"cached", cached}, {"direct", st.store}} {
			b.Run(st.name+"/"+mode.name+"/hit", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := mode.store.Lookup(context.Background(), key); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(st.name+"/"+mode.name+"/miss", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := mode.store.Lookup(context.Background(), unknown); !errors.Is(err, apiguard.ErrInvalidKey) {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
