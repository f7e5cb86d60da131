package apiguard

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestOptionErrorsNameTheOption: every constructor that takes Options
// refuses one with a bad value, and one meant for another constructor,
// with an error that names the option; it accepts the options that apply
// to it.
func TestOptionErrorsNameTheOption(t *testing.T) {
	key, _ := GenerateSigningKey("")
	ring, _ := NewKeyRing(key)
	keys := mustStore(t)
	owner := SignerFromOwner(keys, func(*http.Request, []string) (string, error) { return "", nil })
	fields := []Field{BodyField("trx_id", nil)}
	ctors := map[string]func(...Option) error{
		"NewMemoryKeyStore": func(o ...Option) error { _, err := NewMemoryKeyStore(o...); return err },
		"NewCachedKeyStore": func(o ...Option) error { _, err := NewCachedKeyStore(keys, o...); return err },
		"NewMemoryLimiter":  func(o ...Option) error { _, err := NewMemoryLimiter([]Window{PerMinute(1)}, o...); return err },
		"NewMemoryReplayStore": func(o ...Option) error {
			_, err := NewMemoryReplayStore(o...)
			return err
		},
		"NewSessions":   func(o ...Option) error { _, err := NewSessions("test-api", ring, o...); return err },
		"HashSignature": func(o ...Option) error { _, err := New(HashSignature(owner, fields, o...)); return err },
		"HMACSignature": func(o ...Option) error { _, err := New(HMACSignature(owner, fields, o...)); return err },
	}
	clock := func() time.Time { return time.Unix(0, 0) }
	for _, tc := range []struct {
		ctor       string
		good       []Option
		bad, other Option // out of range; for another constructor
	}{
		{"NewMemoryKeyStore", []Option{WithCapacity(1), WithClock(clock)}, WithCapacity(0), WithLeeway(0)},
		{"NewCachedKeyStore", []Option{WithCapacity(1), WithClock(clock), WithCacheTTL(time.Second, 0)}, WithCacheTTL(0, 0), WithBodyLimit(1)},
		{"NewMemoryLimiter", []Option{WithCapacity(1), WithClock(clock)}, WithClock(nil), WithCacheTTL(time.Second, 0)},
		{"NewMemoryReplayStore", []Option{WithCapacity(1), WithClock(clock)}, WithCapacity(-1), WithEnvironment(Sandbox)},
		{"NewSessions", []Option{WithCapacity(1), WithClock(clock), WithLeeway(0), WithTokenLifetime(AccessToken, time.Minute), WithEnvironment(Live)},
			WithTokenLifetime(TokenKind(9), time.Minute), WithRequiredHeaders("X-A")},
		{"HashSignature", []Option{WithBodyLimit(1), WithRequiredHeaders("X-Request-Time")}, WithBodyLimit(0), WithCapacity(1)},
		{"HMACSignature", []Option{WithBodyLimit(1), WithRequiredHeaders("X-Request-Time")}, WithRequiredHeaders("X A"), WithClock(clock)},
	} {
		t.Run(tc.ctor, func(t *testing.T) {
			ctor := ctors[tc.ctor]
			if err := ctor(tc.good...); err != nil {
				t.Errorf("options that apply: %v", err)
			}
			if err := ctor(tc.bad); err == nil || !strings.Contains(err.Error(), tc.bad.name) {
				t.Errorf("%s out of range: %v", tc.bad.name, err)
			}
			if err := ctor(tc.other); err == nil || !strings.Contains(err.Error(), tc.other.name) || !strings.Contains(err.Error(), "does not apply") {
				t.Errorf("%s, which does not apply: %v", tc.other.name, err)
			}
			if err := ctor(Option{}); err == nil {
				t.Error("the zero Option accepted")
			}
		})
	}
}
