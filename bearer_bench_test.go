package apiguard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

var bareHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })

func benchServe(b *testing.B, h http.Handler, r *http.Request) {
	b.Helper()
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

func bearerRequest() *http.Request {
	r := httptest.NewRequest("GET", "/api/v1/payment/ORDER-1", nil)
	r.Header.Set("Authorization", "Bearer "+keyA)
	return r
}

// BenchmarkBearer compares, in one run: a bare handler; the floor of the
// job written by hand (SHA-256 of the presented key, a map lookup, a
// constant-time compare); and the Bearer scheme through Authenticate.
func BenchmarkBearer(b *testing.B) {
	b.Run("bare", func(b *testing.B) { benchServe(b, bareHandler, bearerRequest()) })

	b.Run("floor", func(b *testing.B) { benchServe(b, bearerFloor(false), bearerRequest()) })
	// The floor plus what any net/http middleware pays to hand the client to
	// the handler: a context value and the request copy WithContext makes.
	b.Run("floor+ctx", func(b *testing.B) { benchServe(b, bearerFloor(true), bearerRequest()) })

	b.Run("apiguard", func(b *testing.B) {
		g := MustNew(Bearer(mockPayStore(b)), WithDialect(MockPay()), WithEnvironment(Sandbox))
		benchServe(b, g.Authenticate()(bareHandler), bearerRequest())
	})

	b.Run("apiguard+scope", func(b *testing.B) {
		g := MustNew(Bearer(mockPayStore(b)), WithDialect(MockPay()), WithEnvironment(Sandbox))
		benchServe(b, Chain(g.Authenticate(), g.RequireScope("payment:read"))(bareHandler), bearerRequest())
	})
}

// bearerFloor is the floor of Bearer's job written by hand: SHA-256 of the
// presented key (from a copy on the stack, as the store hashes it), a map
// lookup and a constant-time compare; with handoff, the client is also put
// in the context for the handler, in one allocation (floorHandOn).
func bearerFloor(handoff bool) http.Handler {
	digest := sha256.Sum256([]byte(keyA))
	m := map[[sha256.Size]byte]*Client{digest: {ID: "client-a"}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get("Authorization")
		if !strings.HasPrefix(v, "Bearer ") {
			w.WriteHeader(401)
			return
		}
		d := digestKey(v[7:])
		c, ok := m[d]
		if !ok || subtle.ConstantTimeCompare(d[:], digest[:]) != 1 || c == nil {
			w.WriteHeader(401)
			return
		}
		if handoff {
			r = floorHandOn(r, c)
		}
		bareHandler.ServeHTTP(w, r)
	})
}

// floorKey is the context key under which the floors hand on the client.
type floorKey struct{}

// floorCtx is the context a floor hands on: r's, with the client under
// floorKey.
type floorCtx struct {
	context.Context
	c *Client
}

func (f *floorCtx) Value(key any) any {
	if key == (floorKey{}) {
		return f.c
	}
	return f.Context.Value(key)
}

// floorCarrier is a request and its context in one allocation, as begin
// allocates a request and its state.
type floorCarrier struct {
	ctx floorCtx
	req http.Request
}

// floorHandOn returns a copy of r whose context carries c, in the one
// allocation a floor as lean as the wrapper makes.
func floorHandOn(r *http.Request, c *Client) *http.Request {
	fc := &floorCarrier{ctx: floorCtx{Context: r.Context(), c: c}}
	fc.req = *r.WithContext(&fc.ctx)
	return &fc.req
}

// BenchmarkBearerStore compares Bearer through Authenticate with its floor
// at 1, 100,000 and 1,000,000 keys in the store: what a store of that size
// costs a request, garbage collection included. Each side runs with only
// its own store alive (built anew for each count), so that neither pays
// for the other's heap.
//
// The floor is the job written by hand as lean as it goes: SHA-256 of the
// presented key, a lookup in a map from digest to index (no pointers, so
// the collector never scans it), a constant-time compare with the stored
// digest, and the hand-off of one client in the request's context.
func BenchmarkBearerStore(b *testing.B) {
	for _, n := range []int{1, 100_000, 1_000_000} {
		name := "keys=" + strconv.Itoa(n)
		b.Run(name+"/floor+ctx", func(b *testing.B) {
			h := bearerFloorN(n)
			runtime.GC()
			benchServe(b, h, bearerRequest())
		})
		b.Run(name+"/apiguard", func(b *testing.B) {
			g := MustNew(Bearer(bearerStoreN(b, n)), WithDialect(MockPay()), WithEnvironment(Sandbox))
			runtime.GC()
			benchServe(b, g.Authenticate()(bareHandler), bearerRequest())
		})
	}
}

// fillerKey returns the i-th key that fills a benchmark's store.
func fillerKey(i int) string { return "sandbox_sk_test_filler_" + strconv.Itoa(i) }

// bearerStoreN returns a MemoryKeyStore of n keys, keyA among them.
func bearerStoreN(b *testing.B, n int) *MemoryKeyStore {
	s, err := NewMemoryKeyStore(WithCapacity(n))
	if err != nil {
		b.Fatal(err)
	}
	add := func(k KeySpec) {
		if err := s.Add(k); err != nil {
			b.Fatal(err)
		}
	}
	add(KeySpec{Key: keyA, Client: Client{ID: "client-a", KeyID: "ka", Scopes: []string{"payment:create", "payment:read"}}})
	for i := 1; i < n; i++ {
		add(KeySpec{Key: fillerKey(i), Client: Client{ID: "client-" + strconv.Itoa(i), KeyID: "k-" + strconv.Itoa(i), Scopes: []string{"payment:read"}}})
	}
	return s
}

// bearerFloorN is bearerFloor with the hand-off, over n digests.
func bearerFloorN(n int) http.Handler {
	digests := make([][sha256.Size]byte, n)
	index := make(map[[sha256.Size]byte]uint32, n)
	digests[0] = sha256.Sum256([]byte(keyA))
	for i := 1; i < n; i++ {
		digests[i] = sha256.Sum256([]byte(fillerKey(i)))
	}
	for i, d := range digests {
		index[d] = uint32(i)
	}
	client := &Client{ID: "client-a"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get("Authorization")
		if !strings.HasPrefix(v, "Bearer ") {
			w.WriteHeader(401)
			return
		}
		d := digestKey(v[7:])
		i, ok := index[d]
		if !ok || subtle.ConstantTimeCompare(d[:], digests[i][:]) != 1 {
			w.WriteHeader(401)
			return
		}
		bareHandler.ServeHTTP(w, floorHandOn(r, client))
	})
}
