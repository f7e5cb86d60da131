package apiguard

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// TestMisconfigurationFailsAtConstruction lists every misconfiguration of
// issue 16 that once built and then failed at each request (a panic, an EOF
// for the client, a 500, or a whitelist refusing everyone). Each must now
// fail where it is written: a constructor returns an error, a wrapper
// panics with one, and the error names the option or argument at fault. No
// handler is built, so none can reach a request.
func TestMisconfigurationFailsAtConstruction(t *testing.T) {
	var (
		nilKeys    *MemoryKeyStore
		nilLimiter *MemoryLimiter
		nilReplay  *MemoryReplayStore
		nilDialect *JSONDialect
	)
	g := MustNew(nil)
	signing, err := GenerateSigningKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := signing.PublicPEM()
	if err != nil {
		t.Fatal(err)
	}
	verifyKey, err := ParseSigningKey(pub, "k1")
	if err != nil {
		t.Fatal(err)
	}

	// guard builds a Guard around s and a handler behind it.
	guard := func(s Scheme, opts ...Option) func() (http.Handler, error) {
		return func() (http.Handler, error) {
			g, err := New(s, opts...)
			if err != nil {
				return nil, err
			}
			return g.Authenticate()(okHandler), nil
		}
	}
	// wrapper builds a handler behind the wrapper mw returns.
	wrapper := func(mw func() Middleware) func() (http.Handler, error) {
		return func() (http.Handler, error) { return mw()(okHandler), nil }
	}

	tests := []struct {
		name  string
		build func() (http.Handler, error)
		want  []string // what the error must name
	}{
		{"Bearer of a nil *MemoryKeyStore", guard(Bearer(nilKeys)), []string{"Bearer", "KeyStore", "*apiguard.MemoryKeyStore"}},
		{"Basic of a nil *MemoryKeyStore", guard(Basic(nilKeys)), []string{"Basic", "KeyStore"}},
		{"ClientKey of a nil *MemoryKeyStore", guard(ClientKey(nilKeys)), []string{"ClientKey", "KeyStore"}},
		{"AppKey of a nil *MemoryKeyStore", guard(AppKey(nilKeys)), []string{"AppKey", "KeyStore"}},
		{"MerchantKey of a nil *MemoryKeyStore", guard(MerchantKey(nilKeys)), []string{"MerchantKey", "KeyStore"}},
		{"HashSignature of a nil *MemoryKeyStore", guard(HashSignature(SignerFromHeader(nilKeys, "X-Key"), []Field{HeaderField("X-A", nil)})), []string{"HashSignature", "KeyStore"}},
		{"HMACSignature of a nil *MemoryKeyStore", guard(HMACSignature(SignerFromOwner(nilKeys, func(*http.Request, []string) (string, error) { return "", nil }), []Field{HeaderField("X-A", nil)})), []string{"HMACSignature", "KeyStore"}},
		{"Bearer of a zero CachedKeyStore", guard(Bearer(&CachedKeyStore{})), []string{"Bearer", "zero CachedKeyStore"}},
		{"NewCachedKeyStore of a nil *MemoryKeyStore", func() (http.Handler, error) { _, err := NewCachedKeyStore(nilKeys); return nil, err }, []string{"NewCachedKeyStore", "KeyStore"}},
		{"WithDialect of a nil *JSONDialect", guard(nil, WithDialect(nilDialect)), []string{"WithDialect", "*apiguard.JSONDialect"}},
		{"WithDialect of a JSONDialect without Body", guard(nil, WithDialect(&JSONDialect{})), []string{"WithDialect", "Body"}},
		{"RateLimit of a nil *MemoryLimiter", wrapper(func() Middleware { return g.RateLimit(nilLimiter, ByIP()) }), []string{"RateLimit", "Limiter", "*apiguard.MemoryLimiter"}},
		{"RateLimit of a zero MemoryLimiter", wrapper(func() Middleware { return g.RateLimit(&MemoryLimiter{}, ByIP()) }), []string{"RateLimit", "zero MemoryLimiter"}},
		{"RateLimit of a nil Limiter", wrapper(func() Middleware { return g.RateLimit(nil, ByIP()) }), []string{"RateLimit", "Limiter"}},
		{"RequestID of a nil *MemoryReplayStore", wrapper(func() Middleware { return g.RequestID(nilReplay, 0) }), []string{"RequestID", "ReplayStore", "*apiguard.MemoryReplayStore"}},
		{"IPAllow of no prefix", wrapper(func() Middleware { return g.IPAllow() }), []string{"IPAllow", "empty"}},
		{"IPAllow of an invalid prefix", wrapper(func() Middleware {
			return g.IPAllow(netip.MustParsePrefix("10.0.0.0/8"), netip.Prefix{})
		}), []string{"IPAllow", "prefix 1"}},
		{"NewKeyRing of no key", func() (http.Handler, error) { _, err := NewKeyRing(nil); return nil, err }, []string{"NewKeyRing", "nil signing key"}},
		{"NewKeyRing signing with a verification key", func() (http.Handler, error) { _, err := NewKeyRing(verifyKey); return nil, err }, []string{"signing key", "k1"}},
		{"NewSessions of a zero KeyRing", func() (http.Handler, error) { _, err := NewSessions("test-api", &KeyRing{}); return nil, err }, []string{"NewSessions", "KeyRing"}},
		{"Issuer on a verify-only ring", func() (http.Handler, error) {
			ring, err := NewKeyRing(nil, verifyKey)
			if err != nil {
				return nil, err
			}
			s, err := NewSessions("test-api", ring)
			if err != nil {
				return nil, err
			}
			keys := mustStore(t, KeySpec{Key: "key-m", Client: Client{ID: "m"}})
			return s.Issuer(MustNew(MerchantKey(keys)))
		}, []string{"Issuer", "signing key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := construct(tc.build)
			if err == nil {
				// It built: show what a request would have met.
				t.Fatalf("built a handler (%T); want an error at construction", h)
			}
			if h != nil {
				t.Errorf("built a handler beside the error %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// construct runs build, turning a panic with an error into that error.
func construct(build func() (http.Handler, error)) (h http.Handler, err error) {
	defer func() {
		if v := recover(); v != nil {
			e, ok := v.(error)
			if !ok {
				panic(v)
			}
			h, err = nil, e
		}
	}()
	return build()
}
